"""Type aliases shared by every layer: the ASGI interface and what a view may return."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from werkzeug.datastructures import Headers

    from ._response import Response

Scope: TypeAlias = MutableMapping[str, Any]
Message: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]
ASGIApp: TypeAlias = Callable[[Scope, Receive, Send], Awaitable[None]]

HeadersValue: TypeAlias = "Headers | Mapping[str, str] | list[tuple[str, str]]"
StatusValue: TypeAlias = "int | str"
ResponseBody: TypeAlias = "Response | str | bytes | dict[str, Any] | list[Any]"
ResponseReturnValue: TypeAlias = (
    "ResponseBody"
    " | tuple[ResponseBody, HeadersValue]"
    " | tuple[ResponseBody, StatusValue]"
    " | tuple[ResponseBody, StatusValue, HeadersValue]"
)

#: A view: an async function taking the URL's variables as keyword arguments.
ViewFunc: TypeAlias = Callable[..., Awaitable[Any]]
#: ``before_*`` hooks may return a response value to short-circuit the view.
BeforeHook: TypeAlias = Callable[[], Awaitable[Any]]
AfterHook: TypeAlias = Callable[["Response"], Awaitable["Response"]]
TeardownHook: TypeAlias = Callable[[BaseException | None], Awaitable[None]]
ErrorHandler: TypeAlias = Callable[[Any], Awaitable[Any]]
LifespanHook: TypeAlias = Callable[[], Awaitable[None]]
