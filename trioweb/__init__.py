"""trioweb: a Trio-native web framework with Quart's API and first-class WebSockets."""

from ._app import TrioWeb as TrioWeb
from ._blueprints import Blueprint as Blueprint
from ._config import Config as Config
from ._ctx import copy_current_app_context as copy_current_app_context
from ._ctx import copy_current_request_context as copy_current_request_context
from ._ctx import copy_current_websocket_context as copy_current_websocket_context
from ._ctx import current_app as current_app
from ._ctx import g as g
from ._ctx import has_app_context as has_app_context
from ._ctx import has_request_context as has_request_context
from ._ctx import has_websocket_context as has_websocket_context
from ._ctx import request as request
from ._ctx import websocket as websocket
from ._errors import InvalidPayload as InvalidPayload
from ._errors import LifespanError as LifespanError
from ._errors import WebsocketClosed as WebsocketClosed
from ._errors import WebsocketException as WebsocketException
from ._guard import Stats as Stats
from ._helpers import abort as abort
from ._helpers import jsonify as jsonify
from ._helpers import make_response as make_response
from ._helpers import redirect as redirect
from ._helpers import send_file as send_file
from ._helpers import send_from_directory as send_from_directory
from ._helpers import url_for as url_for
from ._request import Request as Request
from ._response import Response as Response
from ._serving import serve as serve
from ._sessions import SecureCookieSessionInterface as SecureCookieSessionInterface
from ._sessions import Session as Session
from ._sessions import SessionInterface as SessionInterface
from ._sessions import flash as flash
from ._sessions import get_flashed_messages as get_flashed_messages
from ._sessions import session as session
from ._templating import render_template as render_template
from ._templating import render_template_string as render_template_string
from ._websocket import Websocket as Websocket
from ._websocket import WebsocketState as WebsocketState

__version__ = "0.1.0.dev0"

__all__ = [
    "Blueprint",
    "Config",
    "InvalidPayload",
    "LifespanError",
    "Request",
    "Response",
    "SecureCookieSessionInterface",
    "Session",
    "SessionInterface",
    "Stats",
    "TrioWeb",
    "Websocket",
    "WebsocketClosed",
    "WebsocketException",
    "WebsocketState",
    "abort",
    "copy_current_app_context",
    "copy_current_request_context",
    "copy_current_websocket_context",
    "current_app",
    "flash",
    "g",
    "get_flashed_messages",
    "has_app_context",
    "has_request_context",
    "has_websocket_context",
    "jsonify",
    "make_response",
    "redirect",
    "render_template",
    "render_template_string",
    "request",
    "send_file",
    "send_from_directory",
    "serve",
    "session",
    "url_for",
    "websocket",
]
