"""JSON responses: `jsonify` and dict/list return values, with the extra types they encode."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import uuid
from typing import Any

import pytest
from markupsafe import Markup

from trioweb import Response, TrioWeb, _json, jsonify


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Snippet:
    """An object that renders itself as HTML (as template helpers do)."""

    def __html__(self) -> str:
        return "<em>snippet</em>"


@pytest.mark.parametrize(
    ("args", "kwargs", "expected"),
    [
        (({"a": 1},), {}, {"a": 1}),
        (([1, 2],), {}, [1, 2]),
        (("text",), {}, "text"),
        ((1, "two", None), {}, [1, "two", None]),
        ((), {"name": "Ada", "admin": True}, {"name": "Ada", "admin": True}),
        ((), {}, {}),
    ],
)
async def test_jsonify(args: tuple[Any, ...], kwargs: dict[str, Any], expected: Any) -> None:
    """`jsonify` encodes one argument as is, several as a list, keyword arguments as an object,
    as an `application/json` response."""
    app = TrioWeb(__name__)

    @app.route("/")
    async def index() -> Response:
        return jsonify(*args, **kwargs)

    async with app.test_client() as client:
        response = await client.get("/")
    assert response.mimetype == "application/json"
    assert await response.get_json() == expected


async def test_jsonify_with_args_and_kwargs_is_type_error() -> None:
    """Mixing positional and keyword arguments in `jsonify` is a TypeError."""
    with pytest.raises(TypeError, match="not both"):
        jsonify(1, a=2)


async def test_json_output_is_compact_and_keeps_unicode() -> None:
    """JSON bodies have no spaces after separators and keep non-ASCII characters as UTF-8."""
    response = jsonify({"name": "Zo\u00eb", "list": [1, 2]})
    assert await response.get_data() == '{"name":"Zo\u00eb","list":[1,2]}'.encode()


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (
            datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
            "Tue, 02 Jan 2024 03:04:05 GMT",
        ),
        (datetime.date(2024, 1, 2), "Tue, 02 Jan 2024 00:00:00 GMT"),
        (decimal.Decimal("1.10"), "1.10"),
        (uuid.UUID("12345678-1234-5678-1234-567812345678"), "12345678-1234-5678-1234-567812345678"),
        (Point(1, 2), {"x": 1, "y": 2}),
        (Markup("<b>safe</b>"), "<b>safe</b>"),
        (Snippet(), "<em>snippet</em>"),
    ],
)
async def test_extra_types_are_encoded(value: Any, encoded: Any) -> None:
    """Dates (as HTTP dates), Decimal, UUID, dataclasses and `__html__` objects are encoded, in
    `jsonify` and in returned dicts alike."""
    app = TrioWeb(__name__)

    @app.route("/jsonify")
    async def with_jsonify() -> Response:
        return jsonify(value=value)

    @app.route("/dict")
    async def with_dict() -> dict[str, Any]:
        return {"value": value}

    async with app.test_client() as client:
        for path in ("/jsonify", "/dict"):
            assert await (await client.get(path)).get_json() == {"value": encoded}


async def test_unencodable_value_is_a_500_naming_the_type(caplog: pytest.LogCaptureFixture) -> None:
    """A value JSON cannot encode is a TypeError naming its type (a logged 500 in a view)."""
    app = TrioWeb(__name__)

    @app.route("/")
    async def index() -> dict[str, Any]:
        return {"s": {1, 2}}

    async with app.test_client() as client:
        assert (await client.get("/")).status_code == 500
    (error,) = [r.exc_info[1] for r in caplog.records if r.exc_info is not None]
    assert isinstance(error, TypeError)
    assert str(error) == "Object of type set is not JSON serializable"
    with pytest.raises(TypeError, match="Object of type type is not"):
        jsonify(Point)  # the class itself, not an instance


async def test_a_lone_surrogate_is_a_clear_error_before_anything_is_sent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A str holding a lone surrogate (what a client's JSON "\\ud800" decodes to) cannot be
    encoded as UTF-8: jsonify and dict return values raise a ValueError saying so and how to
    fix it (a logged 500 in a view; the next request is served)."""
    app = TrioWeb(__name__)

    @app.route("/")
    async def index() -> dict[str, Any]:
        return {"name": "ada\ud800"}

    @app.route("/ok")
    async def ok() -> dict[str, Any]:
        return {"name": "adé"}

    async with app.test_client() as client:
        assert (await client.get("/")).status_code == 500
        assert await (await client.get("/ok")).get_json() == {"name": "adé"}
    (error,) = [r.exc_info[1] for r in caplog.records if r.exc_info is not None]
    assert isinstance(error, ValueError)
    assert "lone surrogate ('\\ud800' at index 12)" in str(error)
    with pytest.raises(ValueError, match="replace it first"):
        jsonify(["\udfff"])


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
async def test_nan_follows_json_allow_nan(value: float) -> None:
    """By default NaN and the infinities are written as Python writes them; with
    JSON_ALLOW_NAN=False jsonify and dict return values refuse them with a ValueError naming
    the key."""
    app = TrioWeb(__name__)

    @app.route("/jsonify")
    async def with_jsonify() -> Response:
        return jsonify(value)

    @app.route("/dict")
    async def with_dict() -> dict[str, Any]:
        return {"v": value}

    async with app.test_client() as client:
        assert (await client.get("/jsonify")).status_code == 200
        app.config["JSON_ALLOW_NAN"] = False
        for path in ("/jsonify", "/dict"):
            assert (await client.get(path)).status_code == 500
    with pytest.raises(ValueError, match="NaN and Infinity are not JSON"), app.app_context():
        jsonify(value)


def test_dumps_with_options_still_checks() -> None:
    """Options (indent, sort_keys) go to json.dumps; the checks still apply; a ValueError
    that is not about NaN passes through as it is."""
    assert _json.dumps({"b": 1, "a": [1]}, sort_keys=True) == '{"a":[1],"b":1}'
    with pytest.raises(ValueError, match="lone surrogate"):
        _json.dumps(["\ud800"], indent=1)
    with pytest.raises(ValueError, match="JSON_ALLOW_NAN"):
        _json.dumps([float("nan")], allow_nan=False, indent=1)
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular reference"):
        _json.dumps(loop, allow_nan=False)
