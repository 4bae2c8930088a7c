"""The test client: an in-memory ASGI peer for an app, with no back door into it.

It runs the app's lifespan in its own nursery (``before_serving`` on entry, ``after_serving`` and
cancellation of background tasks on exit), builds request bodies and scopes with werkzeug's
:class:`~werkzeug.test.EnvironBuilder`, and runs each request as its own task, as a server does.
Every wait is bounded by the client's ``timeout`` and fails with ``trio.TooSlowError``; every
async method is a checkpoint, also when it raises.

The lifespan scope carries the ``trioweb.task_errors`` extension (:mod:`trioweb._tasks`), a list
into which a trioweb app appends the exceptions that ended tasks of its app nursery. Under a server
they are only logged; the client raises them when it exits (one as itself, several as an
``ExceptionGroup``), or notes them on the exception that is already leaving the block.
"""

from __future__ import annotations

import traceback
from contextlib import AsyncExitStack
from types import TracebackType
from typing import TYPE_CHECKING, Any, final
from urllib.parse import unquote

import trio
from werkzeug.datastructures import Headers
from werkzeug.test import EnvironBuilder

from .._errors import LifespanError
from .._response import Response
from .._servedby import TEST_CLIENT
from .._tasks import TASK_ERRORS
from .._types import ASGIApp, Message
from ._util import close_unwrapped, lone_exception_unwrapped
from ._websocket import TestWebsocket, websocket_scope

if TYPE_CHECKING:
    from collections.abc import Mapping

_ASGI = {"version": "3.0", "spec_version": "2.4"}
CLIENT_ADDR = ("127.0.0.1", 50000)


class TestResponse(Response):
    """What the app sent: ``status_code``, ``headers``, ``await get_data()``, ``await
    get_json()`` and everything else of :class:`trioweb.Response`."""

    __test__ = False

    def __init__(self, status: int, headers: Headers, body: bytes) -> None:
        super().__init__(None, status, headers)
        self._data = body


@final
class TestClient:
    """Requests to ``app`` in the test's own process: ``async with app.test_client() as c:``."""

    __test__ = False

    def __init__(self, app: ASGIApp, *, timeout: float = 5.0) -> None:
        self.app = app
        self.timeout = timeout
        self._stack: AsyncExitStack | None = None
        self._nursery: trio.Nursery | None = None
        self._to_app: trio.MemorySendChannel[Message] | None = None
        self._from_app: trio.MemoryReceiveChannel[Message] | None = None
        #: The ``trioweb.task_errors`` extension of the lifespan: what the app's tasks raised.
        self._task_errors: list[Exception] = []

    async def __aenter__(self) -> TestClient:
        """Start the app's lifespan; raises :exc:`~trioweb.LifespanError` if it fails to start.
        A checkpoint, also when it raises."""
        if self._stack is not None:
            await trio.lowlevel.checkpoint()
            raise RuntimeError("this test client is already open; use a new one")
        stack = AsyncExitStack()
        self._nursery = await stack.enter_async_context(trio.open_nursery())
        to_app, app_inbox = trio.open_memory_channel[Message](1)
        app_outbox, from_app = trio.open_memory_channel[Message](1)
        self._to_app, self._from_app = to_app, from_app
        self._task_errors = []
        scope = {
            "type": "lifespan",
            "asgi": _ASGI,
            "state": {},
            "extensions": {TASK_ERRORS: self._task_errors, TEST_CLIENT: {}},
        }
        self._nursery.start_soon(self.app, scope, app_inbox.receive, app_outbox.send)
        try:
            await self._lifespan("startup")
        except BaseException:
            await self._close(stack)
            raise
        self._stack = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        """Shut the app's lifespan down, then raise what its tasks raised, if anything."""
        stack, self._stack = self._stack, None
        assert stack is not None
        if exc is not None:
            await self._close(stack)
            self._note_task_errors(exc)
            return None
        try:
            await self._lifespan("shutdown")
        except BaseException as error:
            await self._close(stack)
            self._note_task_errors(error)
            raise
        await close_unwrapped(stack)
        errors, self._task_errors = self._task_errors, []
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise ExceptionGroup("tasks in the app nursery raised", errors)
        return None

    def _note_task_errors(self, raised: BaseException) -> None:
        for error in self._task_errors:
            summary = "".join(traceback.format_exception(error)).rstrip()
            raised.add_note(f"A task in the app nursery also raised:\n{summary}")
        self._task_errors = []

    async def _close(self, stack: AsyncExitStack) -> None:
        """Cancel the app's lifespan and close the nursery without handing it the error being
        raised, so that error reaches the caller as it is, not wrapped in an exception group."""
        assert self._nursery is not None
        self._nursery.cancel_scope.cancel()
        await close_unwrapped(stack)

    async def _lifespan(self, phase: str) -> None:
        assert self._to_app is not None
        assert self._from_app is not None
        with trio.fail_after(self.timeout):
            await self._to_app.send({"type": f"lifespan.{phase}"})
            reply = await self._from_app.receive()
        if reply["type"] == f"lifespan.{phase}.failed":
            assert self._nursery is not None
            self._nursery.cancel_scope.cancel()
            raise LifespanError(phase, reply.get("message", ""))
        if reply["type"] != f"lifespan.{phase}.complete":
            raise RuntimeError(f"the app answered lifespan.{phase} with {reply['type']!r}")

    # Websockets -----------------------------------------------------------------------------------

    def websocket(
        self,
        path: str,
        *,
        headers: Mapping[str, str] | Headers | list[tuple[str, str]] | None = None,
        subprotocols: list[str] | None = None,
        query_string: Mapping[str, Any] | str | bytes | None = None,
        scheme: str = "ws",
        root_path: str = "",
    ) -> TestWebsocket:
        """A websocket to ``path``: ``async with client.websocket("/ws") as ws:``.

        Entering returns once the app accepts; a rejection raises
        :class:`WebsocketResponseError` (close before accept: status 403).
        """
        scope = websocket_scope(
            path,
            headers=headers,
            subprotocols=subprotocols,
            query_string=query_string,
            scheme=scheme,
            root_path=root_path,
            client=CLIENT_ADDR,
            asgi=_ASGI,
        )
        return TestWebsocket(self.app, scope, self.timeout)

    # HTTP ---------------------------------------------------------------------------------------

    async def open(
        self,
        path: str = "/",
        *,
        method: str = "GET",
        headers: Mapping[str, str] | Headers | list[tuple[str, str]] | None = None,
        query_string: Mapping[str, Any] | str | bytes | None = None,
        data: Any = None,
        json: Any = None,
        scheme: str = "http",
        root_path: str = "",
        http_version: str = "1.1",
    ) -> TestResponse:
        """Send one request and return the complete response.

        ``path`` may carry a query string; ``query_string`` (a dict, ``str`` or ``bytes``)
        replaces it. ``root_path`` is where the app is mounted: the scope's ``path`` is
        ``root_path + path``, as Hypercorn sends it. ``data`` is ``bytes``/``str`` (sent as is)
        or a dict (form-encoded; values that are ``(file, filename)`` tuples make it multipart);
        ``json`` is encoded as JSON with ``Content-Type: application/json``. The app sees
        exactly one ``http.request`` message and, once the response is complete,
        ``http.disconnect``. Raises what the app raised, unwrapped from its exception group, and
        ``trio.TooSlowError`` after the client's ``timeout``. A checkpoint, also when it raises.
        """
        try:
            scope, body = self._http_scope(
                path, method, headers, query_string, data, json, scheme, root_path, http_version
            )
        except Exception:
            await trio.lowlevel.checkpoint()
            raise
        return await self._exchange(scope, body)

    async def get(self, path: str = "/", **kwargs: Any) -> TestResponse:
        """``open(path, method="GET", ...)``."""
        return await self.open(path, method="GET", **kwargs)

    async def head(self, path: str = "/", **kwargs: Any) -> TestResponse:
        """``open(path, method="HEAD", ...)``."""
        return await self.open(path, method="HEAD", **kwargs)

    async def options(self, path: str = "/", **kwargs: Any) -> TestResponse:
        """``open(path, method="OPTIONS", ...)``."""
        return await self.open(path, method="OPTIONS", **kwargs)

    async def post(self, path: str = "/", **kwargs: Any) -> TestResponse:
        """``open(path, method="POST", ...)``."""
        return await self.open(path, method="POST", **kwargs)

    async def put(self, path: str = "/", **kwargs: Any) -> TestResponse:
        """``open(path, method="PUT", ...)``."""
        return await self.open(path, method="PUT", **kwargs)

    async def patch(self, path: str = "/", **kwargs: Any) -> TestResponse:
        """``open(path, method="PATCH", ...)``."""
        return await self.open(path, method="PATCH", **kwargs)

    async def delete(self, path: str = "/", **kwargs: Any) -> TestResponse:
        """``open(path, method="DELETE", ...)``."""
        return await self.open(path, method="DELETE", **kwargs)

    def _http_scope(
        self,
        path: str,
        method: str,
        headers: Any,
        query_string: Any,
        data: Any,
        json: Any,
        scheme: str,
        root_path: str,
        http_version: str,
    ) -> tuple[dict[str, Any], bytes]:
        path, _, query_in_path = path.partition("?")
        if isinstance(query_string, bytes):
            query_string = query_string.decode("latin-1")
        builder = EnvironBuilder(
            path=path,
            base_url=f"{scheme}://localhost{root_path}",
            method=method,
            headers=headers,
            query_string=query_string if query_string is not None else query_in_path or None,
            data=data,
            json=json,
        )
        try:
            environ = builder.get_environ()
            body = environ["wsgi.input"].read()
        finally:
            builder.close()
        raw_headers = [(b"host", b"localhost")]
        for name, value in builder.headers.items():
            if name.lower() not in ("host", "content-type", "content-length"):
                raw_headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
        if environ.get("CONTENT_TYPE"):
            raw_headers.append((b"content-type", environ["CONTENT_TYPE"].encode("latin-1")))
        if body or method not in ("GET", "HEAD", "OPTIONS", "DELETE"):
            raw_headers.append((b"content-length", str(len(body)).encode()))
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": _ASGI,
            "http_version": http_version,
            "method": method.upper(),
            "scheme": scheme,
            # ASGI's path includes root_path and is percent-decoded; raw_path is as sent.
            "path": unquote(root_path + builder.path),
            "raw_path": (root_path + builder.path).encode(),
            "query_string": environ.get("QUERY_STRING", "").encode("latin-1"),
            "root_path": root_path,
            "headers": raw_headers,
            "client": CLIENT_ADDR,
            "server": ("localhost", 80),
            "extensions": {},
        }
        return scope, body

    async def _exchange(self, scope: dict[str, Any], body: bytes) -> TestResponse:
        inbox = [{"type": "http.request", "body": body, "more_body": False}]
        complete = trio.Event()
        start: Message | None = None
        chunks: list[bytes] = []

        async def receive() -> Message:
            if inbox:
                return inbox.pop()
            await complete.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            nonlocal start
            if complete.is_set():
                raise RuntimeError(f"the app sent {message['type']!r} after the response ended")
            if message["type"] == "http.response.start" and start is None:
                start = message
            elif message["type"] == "http.response.body" and start is not None:
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    complete.set()
            else:
                raise RuntimeError(f"the app sent {message['type']!r} out of order")

        where = f"{scope['method']} {scope['path']}"
        # The nursery below yields, but is no cancel point if the app raises before its first.
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            with trio.fail_after(self.timeout):
                await _run_as_task(self.app, scope, receive, send)
        except trio.TooSlowError:
            raise trio.TooSlowError(
                f"{where}: no complete response within {self.timeout} s (raise the test client's"
                " timeout if the view is meant to be slow)"
            ) from None
        if start is None or not complete.is_set():
            raise RuntimeError(f"{where}: the app returned without sending a complete response")
        headers = Headers(
            [(k.decode("latin-1"), v.decode("latin-1")) for k, v in start.get("headers", [])]
        )
        return TestResponse(start["status"], headers, b"".join(chunks))


async def _run_as_task(app: ASGIApp, *args: Any) -> None:
    """Run ``app(*args)`` in a task of its own (as a server does, so the context it sets stays in
    that task) and re-raise what it raises, unwrapped from the nursery's group."""
    with lone_exception_unwrapped():
        async with trio.open_nursery() as nursery:
            nursery.start_soon(app, *args)
