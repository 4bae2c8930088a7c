"""The session: a dict kept in a signed cookie, and the flashed messages kept in it.

Rules:

* Lazy. :data:`session` is a proxy; the connection's session is opened (the cookie read and its
  signature checked) on first access only, and saved only if it was opened. A connection that
  never touches it pays one failed attribute lookup when its response is finished, and a
  websocket nothing at all.
* Replaceable. :attr:`TrioWeb.session_interface <trioweb.TrioWeb.session_interface>` opens and
  saves it; the default, :class:`SecureCookieSessionInterface`, signs a JSON payload with
  itsdangerous under ``SECRET_KEY``. Both methods are synchronous: opening happens inside a
  plain attribute access (``session["user"]``), which cannot ``await``.
* Never a 500 for a bad cookie. A tampered, expired, malformed or foreign cookie opens an empty
  session. Without ``SECRET_KEY`` the session reads as empty and a write raises
  ``RuntimeError`` saying to set it.
* Saved after the ``after_request`` hooks, on the HTTP response (``Vary: Cookie`` whenever it
  was opened). A websocket reads the session from its handshake's ``Cookie`` header, but its
  writes could never reach the browser, so a write raises ``RuntimeError`` at the line that
  tried: a write silently lost (or a warning in a log) would surface as a bug far away, on the
  next page load.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from itsdangerous import BadData, URLSafeTimedSerializer
from werkzeug.local import LocalProxy

from ._ctx import _get_app, current_connection, has_request_context

if TYPE_CHECKING:
    from ._app import TrioWeb
    from ._request import BaseRequest
    from ._response import Response

_NO_SECRET_KEY = (
    "The session is unavailable because no secret key was set: set app.secret_key (that is,"
    " config['SECRET_KEY']) to a long random string, for example secrets.token_hex(32), and keep"
    " it out of your source code."
)
_WEBSOCKET_READ_ONLY = (
    "The session is read-only in a websocket: its cookie was sent with the handshake, and a"
    " websocket cannot set cookies. Change the session in an HTTP view instead (for example the"
    " login view the page calls before it opens the websocket)."
)
_FLASHES = "_flashes"


class Session(dict[str, Any]):
    """A session: a ``dict`` (keys are strings, values JSON-serialisable for the cookie
    interface) that records whether it was changed.

    Changing a mutable value in place (``session["cart"].append(item)``) is not seen: assign the
    key again, or set :attr:`modified`.
    """

    __slots__ = ("accessed", "modified", "new", "read_only_reason")

    def __init__(self, initial: dict[str, Any] | None = None, *, new: bool = False) -> None:
        super().__init__(initial or {})
        #: Whether the session was changed (then it is saved).
        self.modified = False
        #: Whether the session was opened for this connection (then ``Vary: Cookie`` is sent).
        self.accessed = False
        #: Whether the client sent no (valid) session.
        self.new = new
        #: Why the session cannot be changed (a websocket, no ``SECRET_KEY``), else ``None``.
        self.read_only_reason: str | None = None

    @property
    def permanent(self) -> bool:
        """Whether the cookie outlives the browser session, for ``PERMANENT_SESSION_LIFETIME``
        (``False``: it ends when the browser closes). Setting it changes the session."""
        return bool(self.get("_permanent", False))

    @permanent.setter
    def permanent(self, value: bool) -> None:
        self["_permanent"] = bool(value)

    def _will_change(self) -> None:
        if self.read_only_reason is not None:
            raise RuntimeError(self.read_only_reason)
        self.modified = True

    def __setitem__(self, key: str, value: Any) -> None:
        self._will_change()
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self._will_change()
        super().__delitem__(key)

    def clear(self) -> None:
        if self:
            self._will_change()
        super().clear()

    def pop(self, key: str, *default: Any) -> Any:
        if key in self:
            self._will_change()
        return super().pop(key, *default)

    def popitem(self) -> tuple[str, Any]:
        self._will_change()
        return super().popitem()

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self._will_change()
        return super().setdefault(key, default)

    def update(self, *args: Any, **kwargs: Any) -> None:
        self._will_change()
        super().update(*args, **kwargs)

    def __ior__(self, other: Any) -> Session:  # type: ignore[override,misc]
        self.update(other)
        return self


class SessionInterface:
    """How sessions are opened and saved; subclass it and set ``app.session_interface`` to keep
    sessions elsewhere (a server-side store keyed by a cookie, say).

    Both methods are called synchronously and must not block: :meth:`open_session` on the first
    access to :data:`session`, :meth:`save_session` once the ``after_request`` hooks have run.
    A store that needs network I/O can load in a ``before_request`` hook and write in an
    ``after_request`` hook, and use this interface for the cookie only.
    """

    def open_session(self, app: TrioWeb, conn: BaseRequest) -> Session | None:
        """The session of ``conn`` (a :class:`~trioweb.Request` or a
        :class:`~trioweb.Websocket`); ``None`` when sessions are unavailable (then
        :data:`session` reads as empty and refuses writes). Must not raise for bad input from
        the client."""
        raise NotImplementedError

    def save_session(self, app: TrioWeb, session: Session, response: Response) -> None:
        """Store ``session`` (opened for this request, writable) on ``response``."""
        raise NotImplementedError

    def get_expiration_time(self, app: TrioWeb, session: Session) -> datetime | None:
        """When a permanent session's cookie expires (now plus ``PERMANENT_SESSION_LIFETIME``);
        ``None`` (when the browser closes) for one that is not permanent."""
        if not session.permanent:
            return None
        return datetime.now(UTC) + _lifetime(app)

    def should_set_cookie(self, app: TrioWeb, session: Session) -> bool:
        """Whether to send the cookie: the session changed, or it is permanent and
        ``SESSION_REFRESH_EACH_REQUEST`` pushes its expiry back on every request."""
        return session.modified or (
            session.permanent and bool(app.config["SESSION_REFRESH_EACH_REQUEST"])
        )


class SecureCookieSessionInterface(SessionInterface):
    """The default: the whole session in one cookie, as JSON signed (not encrypted: the client
    can read it) with ``SECRET_KEY`` by itsdangerous, and timestamped so that a cookie older
    than ``PERMANENT_SESSION_LIFETIME`` is refused. Browsers keep about 4 KB per cookie."""

    #: Separates these signatures from other uses of ``SECRET_KEY``.
    salt = "trioweb.session"

    def get_signing_serializer(self, app: TrioWeb) -> URLSafeTimedSerializer | None:
        """The serializer that signs and checks the cookie; ``None`` without ``SECRET_KEY``."""
        if not app.secret_key:
            return None
        return URLSafeTimedSerializer(
            app.secret_key,
            salt=self.salt,
            signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha256},
        )

    def open_session(self, app: TrioWeb, conn: BaseRequest) -> Session | None:
        serializer = self.get_signing_serializer(app)
        if serializer is None:
            return None
        cookie = conn.cookies.get(app.config["SESSION_COOKIE_NAME"])
        if not cookie:
            return Session(new=True)
        try:
            data = serializer.loads(cookie, max_age=int(_lifetime(app).total_seconds()))
        except BadData:  # tampered, expired, or not ours: start afresh
            return Session(new=True)
        if not isinstance(data, dict):
            return Session(new=True)
        return Session(data)

    def save_session(self, app: TrioWeb, session: Session, response: Response) -> None:
        config = app.config
        name = config["SESSION_COOKIE_NAME"]
        domain = config["SESSION_COOKIE_DOMAIN"]
        path = config["SESSION_COOKIE_PATH"] or config["APPLICATION_ROOT"]
        secure = bool(config["SESSION_COOKIE_SECURE"])
        samesite = config["SESSION_COOKIE_SAMESITE"]
        httponly = bool(config["SESSION_COOKIE_HTTPONLY"])
        if session.accessed:
            response.vary.add("Cookie")
        if not session:
            if session.modified:  # emptied: remove the cookie
                response.delete_cookie(
                    name,
                    path=path,
                    domain=domain,
                    secure=secure,
                    httponly=httponly,
                    samesite=samesite,
                )
            return
        if not self.should_set_cookie(app, session):
            return
        serializer = self.get_signing_serializer(app)
        assert serializer is not None  # the session was opened, so the key was set
        response.set_cookie(
            name,
            serializer.dumps(dict(session)),
            expires=self.get_expiration_time(app, session),
            path=path,
            domain=domain,
            secure=secure,
            httponly=httponly,
            samesite=samesite,
        )


def _lifetime(app: TrioWeb) -> timedelta:
    value = app.config["PERMANENT_SESSION_LIFETIME"]
    return value if isinstance(value, timedelta) else timedelta(seconds=value)


def _open(conn: BaseRequest) -> Session:
    app = _get_app()
    opened = app.session_interface.open_session(app, conn)
    if opened is None:
        opened = Session()
        opened.read_only_reason = (
            _NO_SECRET_KEY
            if not app.secret_key
            else f"The session is unavailable: {app.session_interface!r} opened none."
        )
    elif not has_request_context():
        opened.read_only_reason = _WEBSOCKET_READ_ONLY
    opened.accessed = True
    return opened


def _get_session() -> Session:
    conn = current_connection()
    if conn is None:
        raise RuntimeError(
            "Working outside of request or websocket context: session is only available while"
            " handling a request or a websocket."
        )
    opened: Session | None = getattr(conn, "_session", None)
    if opened is None:
        opened = conn._session = _open(conn)
    return opened


session: Session = cast(Session, LocalProxy(_get_session))


def save_session(app: TrioWeb, request: BaseRequest, response: Response) -> None:
    """Save the request's session on ``response`` if it was opened and can be saved (the
    pipeline calls this after the ``after_request`` hooks). Does not block."""
    opened: Session | None = getattr(request, "_session", None)
    if opened is None or opened.read_only_reason is not None:
        return
    app.session_interface.save_session(app, opened, response)


def flash(message: str, category: str = "message") -> None:
    """Keep ``message`` in the session until a later request shows it with
    :func:`get_flashed_messages`; ``category`` (``"error"``, ``"info"``, ...) lets templates
    style it. Needs a writable session: ``RuntimeError`` without ``SECRET_KEY`` or in a
    websocket."""
    flashes = list(session.get(_FLASHES, ()))
    flashes.append([category, message])
    session[_FLASHES] = flashes


def get_flashed_messages(
    with_categories: bool = False, category_filter: Iterable[str] = ()
) -> list[Any]:
    """The flashed messages, oldest first, removed from the session on the first call of the
    request (later calls in the same request return them again). With ``with_categories`` each
    is a ``(category, message)`` tuple; ``category_filter`` keeps only those categories.

    In a websocket the messages are read but stay in the session (it is read-only there).
    """
    conn = current_connection()
    if conn is None:
        raise RuntimeError(
            "Working outside of request or websocket context: get_flashed_messages() reads the"
            " session of the request or websocket being handled."
        )
    flashes: list[tuple[str, str]] | None = getattr(conn, "_flashes", None)
    if flashes is None:
        opened = _get_session()
        stored = opened.get(_FLASHES, ())
        if stored and opened.read_only_reason is None:
            del opened[_FLASHES]
        flashes = conn._flashes = [(str(category), message) for category, message in stored]
    categories = set(category_filter)
    if categories:
        flashes = [item for item in flashes if item[0] in categories]
    if with_categories:
        return list(flashes)
    return [message for _, message in flashes]
