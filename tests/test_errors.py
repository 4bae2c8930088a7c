"""Error handling: handlers by code and class, the 500 path, logging, DEBUG, exception groups,
and a server that keeps serving after bad requests."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio
import trio.testing
from _docs import load_example
from werkzeug.exceptions import HTTPException, InternalServerError, NotFound

from trioweb import Blueprint, TrioWeb, abort, request


class AppError(Exception):
    """A base class of the app's own errors."""


class PaymentError(AppError):
    """A subclass: caught by a handler for AppError."""


def _logged(caplog: pytest.LogCaptureFixture, kind: type[BaseException]) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.exc_info is not None and isinstance(r.exc_info[1], kind)]


async def test_handler_for_a_code_catches_abort_and_routing_errors() -> None:
    """A handler for 404 answers `abort(404)` and unknown routes alike."""
    app = TrioWeb(__name__)

    @app.errorhandler(404)
    async def not_found(error: NotFound) -> tuple[str, int]:
        return f"custom 404: {error.description is not None}", 404

    @app.route("/gone")
    async def gone() -> str:
        abort(404)

    async with app.test_client() as client:
        for path in ("/gone", "/never-existed"):
            response = await client.get(path)
            assert response.status_code == 404
            assert await response.get_data() == b"custom 404: True"


async def test_handler_for_a_base_class_catches_subclasses() -> None:
    """Handlers are looked up along the exception's MRO: one for AppError catches PaymentError."""
    app = TrioWeb(__name__)

    @app.errorhandler(AppError)
    async def app_error(error: AppError) -> tuple[dict[str, str], int]:
        return {"error": type(error).__name__}, 402

    @app.route("/pay")
    async def pay() -> str:
        raise PaymentError("card declined")

    async with app.test_client() as client:
        response = await client.get("/pay")
    assert response.status_code == 402
    assert await response.get_json() == {"error": "PaymentError"}


async def test_most_specific_handler_wins() -> None:
    """With handlers for a class and its base, the subclass's handler answers."""
    app = TrioWeb(__name__)

    @app.errorhandler(AppError)
    async def base(error: AppError) -> str:
        return "base"

    @app.errorhandler(PaymentError)
    async def specific(error: PaymentError) -> str:
        return "specific"

    @app.route("/")
    async def index() -> str:
        raise PaymentError()

    async with app.test_client() as client:
        assert await (await client.get("/")).get_data() == b"specific"


async def test_handler_for_http_exception_catches_every_http_error() -> None:
    """A handler for werkzeug's HTTPException sees 404s and 405s with their codes."""
    app = TrioWeb(__name__)

    @app.errorhandler(HTTPException)
    async def http_error(error: HTTPException) -> tuple[str, int]:
        return f"http {error.code}", error.code or 500

    @app.route("/post-only", methods=["POST"])
    async def post_only() -> str:
        return "ok"

    async with app.test_client() as client:
        assert await (await client.get("/missing")).get_data() == b"http 404"
        assert await (await client.get("/post-only")).get_data() == b"http 405"


async def test_register_error_handler_is_the_non_decorator_form() -> None:
    """`register_error_handler(code, func)` works like `@errorhandler(code)`."""
    app = TrioWeb(__name__)

    async def teapot(error: HTTPException) -> tuple[str, int]:
        return "short and stout", 418

    app.register_error_handler(418, teapot)

    @app.route("/")
    async def index() -> str:
        abort(418)

    async with app.test_client() as client:
        response = await client.get("/")
    assert (response.status_code, await response.get_data()) == (418, b"short and stout")


@pytest.mark.parametrize(
    ("code_or_exception", "error", "match"),
    [
        (299, ValueError, "not an HTTP error code"),
        ("404", TypeError, "neither an HTTP status code nor an exception class"),
        (int, TypeError, "neither an HTTP status code nor an exception class"),
    ],
)
async def test_errorhandler_refuses_what_it_cannot_register(
    code_or_exception: object, error: type[Exception], match: str
) -> None:
    """An unknown status code is a ValueError; something that is neither a code nor an exception
    class is a TypeError."""
    app = TrioWeb(__name__)

    async def handler(e: Exception) -> str:
        return "never"

    with pytest.raises(error, match=match):
        app.register_error_handler(code_or_exception, handler)  # type: ignore[arg-type]


async def test_sync_error_handler_is_rejected() -> None:
    """A sync error handler is a TypeError mentioning `async def`."""
    app = TrioWeb(__name__)

    def handler(e: Exception) -> str:
        return "sync"

    with pytest.raises(TypeError, match="async def"):
        app.errorhandler(404)(handler)


async def test_unhandled_exception_is_a_logged_500_without_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An exception no handler takes becomes a 500 whose body hides the traceback; the traceback
    is logged on the `trioweb` logger with the method and path."""
    app = TrioWeb(__name__)

    @app.route("/crash")
    async def crash() -> str:
        raise ZeroDivisionError("secret detail")

    async with app.test_client() as client:
        response = await client.get("/crash")
    body = await response.get_data(as_text=True)
    assert response.status_code == 500
    assert "Internal Server Error" in body
    assert "secret detail" not in body
    assert "Traceback" not in body
    (record,) = _logged(caplog, ZeroDivisionError)
    assert record.name == "trioweb"
    assert record.getMessage() == "Exception on GET /crash"


async def test_debug_shows_the_traceback_in_the_500() -> None:
    """With `DEBUG`, the 500 body is the traceback as plain text."""
    app = TrioWeb(__name__)
    app.config["DEBUG"] = True

    @app.route("/crash")
    async def crash() -> str:
        raise ZeroDivisionError("secret detail")

    async with app.test_client() as client:
        response = await client.get("/crash")
    body = await response.get_data(as_text=True)
    assert response.status_code == 500
    assert response.mimetype == "text/plain"
    assert "Traceback (most recent call last)" in body
    assert "ZeroDivisionError: secret detail" in body


async def test_500_handler_gets_original_exception() -> None:
    """A handler for 500 gets an InternalServerError whose `original_exception` is the error."""
    app = TrioWeb(__name__)
    boom = KeyError("boom")

    @app.errorhandler(500)
    async def server_error(error: InternalServerError) -> tuple[str, int]:
        assert error.original_exception is boom
        return "sorry", 500

    @app.route("/")
    async def index() -> str:
        raise boom

    async with app.test_client() as client:
        response = await client.get("/")
    assert (response.status_code, await response.get_data()) == (500, b"sorry")


async def test_500_handler_answers_abort_500() -> None:
    """`abort(500)` goes to the 500 handler like any HTTP error."""
    app = TrioWeb(__name__)

    @app.errorhandler(500)
    async def server_error(error: InternalServerError) -> tuple[str, int]:
        return f"handled, original={error.original_exception}", 500

    @app.route("/")
    async def index() -> str:
        abort(500)

    async with app.test_client() as client:
        assert await (await client.get("/")).get_data() == b"handled, original=None"


async def test_failing_error_handler_is_a_500(caplog: pytest.LogCaptureFixture) -> None:
    """An error handler that raises is logged, and its error goes to the 500 path."""
    app = TrioWeb(__name__)

    @app.errorhandler(AppError)
    async def broken(error: AppError) -> str:
        raise LookupError("handler bug")

    @app.route("/")
    async def index() -> str:
        raise AppError()

    async with app.test_client() as client:
        response = await client.get("/")
    assert response.status_code == 500
    assert b"Internal Server Error" in await response.get_data()
    assert any("error handler failed" in r.getMessage() for r in _logged(caplog, LookupError))


async def test_failing_error_handler_goes_to_the_500_handler() -> None:
    """When a handler raises, the 500 handler answers with the handler's error as original."""
    app = TrioWeb(__name__)

    @app.errorhandler(AppError)
    async def broken(error: AppError) -> str:
        raise LookupError("handler bug")

    @app.errorhandler(500)
    async def server_error(error: InternalServerError) -> tuple[str, int]:
        return type(error.original_exception).__name__, 500

    @app.route("/")
    async def index() -> str:
        raise AppError()

    async with app.test_client() as client:
        assert await (await client.get("/")).get_data() == b"LookupError"


async def test_failing_500_handler_gives_the_default_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A 500 handler that raises is logged and the default 500 page is sent."""
    app = TrioWeb(__name__)

    @app.errorhandler(500)
    async def server_error(error: InternalServerError) -> str:
        raise LookupError("500 handler bug")

    @app.route("/")
    async def index() -> str:
        raise AppError()

    async with app.test_client() as client:
        response = await client.get("/")
    assert response.status_code == 500
    assert b"Internal Server Error" in await response.get_data()
    assert any("500 error handler failed" in r.getMessage() for r in _logged(caplog, LookupError))


async def test_500_handler_that_aborts_500_is_not_called_again() -> None:
    """A 500 handler that itself raises a 500 is not re-entered: the default 500 is sent."""
    app = TrioWeb(__name__)
    calls: list[str] = []

    @app.errorhandler(500)
    async def server_error(error: InternalServerError) -> str:
        calls.append("handler")
        abort(500)

    @app.route("/")
    async def index() -> str:
        abort(500)

    async with app.test_client() as client:
        response = await client.get("/")
    assert response.status_code == 500
    assert calls == ["handler"]


async def test_debug_traceback_is_the_handlers_error_when_it_failed() -> None:
    """With `DEBUG`, a failing handler's own error is the traceback shown."""
    app = TrioWeb(__name__)
    app.debug = True

    @app.errorhandler(AppError)
    async def broken(error: AppError) -> str:
        raise LookupError("handler bug")

    @app.route("/")
    async def index() -> str:
        raise AppError()

    async with app.test_client() as client:
        body = await (await client.get("/")).get_data(as_text=True)
    assert "LookupError: handler bug" in body


async def test_single_leaf_exception_group_is_unwrapped() -> None:
    """An ExceptionGroup (nested too) holding one exception reaches that exception's handler."""
    app = TrioWeb(__name__)

    @app.errorhandler(PaymentError)
    async def payment(error: PaymentError) -> tuple[str, int]:
        return f"payment: {error}", 402

    @app.route("/")
    async def index() -> str:
        raise ExceptionGroup("outer", [ExceptionGroup("inner", [PaymentError("declined")])])

    async with app.test_client() as client:
        response = await client.get("/")
    assert (response.status_code, await response.get_data()) == (402, b"payment: declined")


async def test_group_of_several_goes_to_the_first_leaf_with_a_handler(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """In a group of several exceptions the first leaf, depth first, that has a handler decides
    the response, and the handler gets that leaf; nothing is logged as an error."""
    app = TrioWeb(__name__)
    seen: list[BaseException] = []
    payment_error = PaymentError()

    @app.errorhandler(PaymentError)
    async def payment(error: PaymentError) -> tuple[str, int]:
        seen.append(error)
        return "payment", 402

    @app.route("/")
    async def index() -> str:
        inner = ExceptionGroup("inner", [KeyError("k"), payment_error])
        raise ExceptionGroup("two", [ValueError("v"), inner, PaymentError()])

    async with app.test_client() as client:
        response = await client.get("/")
    assert (response.status_code, await response.get_data()) == (402, b"payment")
    assert seen == [payment_error]
    assert _logged(caplog, ExceptionGroup) == []


async def test_group_of_several_without_a_leaf_handler_is_a_500(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A group none of whose leaves has a handler is a logged 500."""
    app = TrioWeb(__name__)

    @app.errorhandler(PaymentError)
    async def payment(error: PaymentError) -> str:
        return "payment"  # pragma: no cover

    @app.route("/")
    async def index() -> str:
        raise ExceptionGroup("two", [KeyError("k"), ValueError("v")])

    async with app.test_client() as client:
        assert (await client.get("/")).status_code == 500
    assert len(_logged(caplog, ExceptionGroup)) == 1


async def test_a_catch_all_handler_takes_the_first_leaf() -> None:
    """Leaves are looked up along their MRO: a handler for Exception takes the first leaf, and a
    handler for the group's class comes before any leaf."""
    app = TrioWeb(__name__)

    @app.errorhandler(Exception)
    async def anything(error: Exception) -> tuple[str, int]:
        return type(error).__name__, 500

    @app.errorhandler(PaymentError)
    async def payment(error: PaymentError) -> tuple[str, int]:
        return "payment", 402  # pragma: no cover

    @app.route("/")
    async def index() -> str:
        raise ExceptionGroup("two", [ValueError("v"), PaymentError()])

    async with app.test_client() as client:
        assert await (await client.get("/")).get_data() == b"ValueError"


async def test_group_of_several_goes_to_a_group_handler() -> None:
    """A handler registered for ExceptionGroup takes a group of several."""
    app = TrioWeb(__name__)

    @app.errorhandler(ExceptionGroup)
    async def group(error: ExceptionGroup[Exception]) -> tuple[str, int]:
        return f"{len(error.exceptions)} errors", 422

    @app.route("/")
    async def index() -> str:
        raise ExceptionGroup("two", [PaymentError(), ValueError()])

    async with app.test_client() as client:
        response = await client.get("/")
    assert (response.status_code, await response.get_data()) == (422, b"2 errors")


async def test_blueprint_handler_beats_the_apps_for_its_views_only() -> None:
    """A blueprint's handler answers for the blueprint's views; the app's for the others."""
    app = TrioWeb(__name__)
    api = Blueprint("api", __name__, url_prefix="/api")

    @app.errorhandler(AppError)
    async def app_handler(error: AppError) -> str:
        return "app handler"

    @api.errorhandler(AppError)
    async def api_handler(error: AppError) -> str:
        return "api handler"

    @api.route("/fail")
    async def api_fail() -> str:
        raise AppError()

    @app.route("/fail")
    async def app_fail() -> str:
        raise AppError()

    app.register_blueprint(api)
    async with app.test_client() as client:
        assert await (await client.get("/api/fail")).get_data() == b"api handler"
        assert await (await client.get("/fail")).get_data() == b"app handler"


async def test_app_handler_applies_to_blueprint_views_without_their_own() -> None:
    """A blueprint without a matching handler falls back to the app's."""
    app = TrioWeb(__name__)
    bp = Blueprint("bp", __name__)

    @bp.errorhandler(KeyError)
    async def unrelated(error: KeyError) -> str:
        return "not this one"

    @app.errorhandler(AppError)
    async def app_handler(error: AppError) -> str:
        return "app handler"

    @bp.route("/bp")
    async def fail() -> str:
        raise AppError()

    app.register_blueprint(bp)
    async with app.test_client() as client:
        assert await (await client.get("/bp")).get_data() == b"app handler"


async def test_error_in_before_request_is_handled() -> None:
    """An exception from a `before_request` hook goes through the error handlers too."""
    app = TrioWeb(__name__)

    @app.before_request
    async def check() -> None:
        if request.args.get("token") != "ok":
            abort(401)

    @app.route("/")
    async def index() -> str:
        return "in"

    async with app.test_client() as client:
        assert (await client.get("/")).status_code == 401
        assert (await client.get("/?token=ok")).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        (
            "post",
            "/json",
            {"data": b"{not json", "headers": {"Content-Type": "application/json"}},
            400,
        ),
        ("post", "/json", {"data": b"x" * 200}, 413),
        ("get", "/nowhere", {}, 404),
        ("delete", "/json", {}, 405),
        ("get", "/crash", {}, 500),
    ],
)
async def test_server_keeps_serving_after_bad_requests(
    method: str, path: str, kwargs: dict[str, object], status: int
) -> None:
    """After a bad request (malformed JSON, too large, unknown route, wrong method, crashing
    view), the same client still gets 200 from a good route."""
    app = TrioWeb(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 100

    @app.route("/json", methods=["POST"])
    async def json_view() -> object:
        return await request.get_json(force=True)

    @app.route("/crash")
    async def crash() -> str:
        raise RuntimeError("crash")

    @app.route("/ok")
    async def ok() -> str:
        return "ok"

    async with app.test_client() as client:
        assert (await getattr(client, method)(path, **kwargs)).status_code == status
        response = await client.get("/ok")
        assert (response.status_code, await response.get_data()) == (200, b"ok")


# As the docs show (docs/examples/errors.py) -------------------------------------------------------

errors_example = load_example("errors")


@pytest.mark.parametrize(
    ("method", "path", "status", "body"),
    [
        ("GET", "/items/apple", 200, {"name": "apple", "stock": 3}),
        ("GET", "/items/kiwi", 404, {"error": "no such page"}),
        ("GET", "/nowhere", 404, {"error": "no such page"}),
        ("POST", "/basket?item=apple", 200, {"reserved": ["apple"]}),
        (
            "POST",
            "/basket?item=apple&item=pear",
            409,
            {"error": "pear is out of stock", "item": "pear"},
        ),
        # Two tasks fail: the first leaf of the group with a handler decides (either item).
        ("POST", "/basket?item=pear&item=plum", 409, None),
        ("GET", "/broken", 500, {"error": "something went wrong on our side"}),
    ],
)
async def test_errors(method: str, path: str, status: int, body: Any) -> None:
    """abort, error handlers and errors from a nursery give the responses the how-to says."""
    with trio.fail_after(5):
        async with errors_example.app.test_client() as client:
            response = await client.open(path, method=method)
            assert response.status_code == status
            if body is None:
                assert (await response.get_json())["item"] in ("pear", "plum")
            else:
                assert await response.get_json() == body


async def test_errors_group_of_several_goes_to_an_exception_group_handler() -> None:
    """A group of several exceptions from a nursery reaches a handler for ExceptionGroup."""
    app = TrioWeb(__name__)

    async def fail(n: int) -> None:
        raise ValueError(n)

    @app.get("/")
    async def both() -> str:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(fail, 1)
            nursery.start_soon(fail, 2)
        return "unreachable"

    @app.errorhandler(ExceptionGroup)
    async def group(error: ExceptionGroup[Exception]) -> tuple[str, int]:
        return f"{len(error.exceptions)} failures", 502

    with trio.fail_after(5):
        async with app.test_client() as client:
            response = await client.get("/")
            assert response.status_code == 502
            assert await response.get_data() == b"2 failures"


async def test_errors_abort_without_handler_is_werkzeug_page() -> None:
    """abort(403, description) without a 403 handler answers werkzeug's page with the text."""
    with trio.fail_after(5):
        async with errors_example.app.test_client() as client:
            response = await client.get("/members")
            assert response.status_code == 403
            assert "Members only: log in first." in await response.get_data(as_text=True)


async def test_errors_debug_shows_traceback() -> None:
    """With DEBUG and no 500 handler, an exception's traceback is the 500 body."""
    app = TrioWeb(__name__)
    app.debug = True

    @app.get("/")
    async def broken() -> str:
        raise RuntimeError("a bug")

    with trio.fail_after(5):
        async with app.test_client() as client:
            response = await client.get("/")
            assert response.status_code == 500
            assert "RuntimeError: a bug" in await response.get_data(as_text=True)
