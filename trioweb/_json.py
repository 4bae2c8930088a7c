"""JSON for trioweb: encoding shared by ``jsonify``, dict/list return values and
``websocket.send_json``; parsing of what clients send (``request.get_json``,
``websocket.receive_json``).

Encoding: compact output, UTF-8 kept as is, and the extra types Flask users expect: dates and
datetimes (HTTP date format, as Flask), ``decimal.Decimal``, ``uuid.UUID``, dataclasses and
objects with ``__html__``. Anything else is a ``TypeError`` naming the type. A value that cannot
go out as UTF-8 (a ``str`` holding a lone surrogate, which JSON's ``"\\ud800"`` escape yields on
the way in) is a ``ValueError``, and so are NaN and the infinities when ``allow_nan`` is false
(config ``JSON_ALLOW_NAN``): both are raised before anything is sent.

Parsing (:func:`parse`) treats the input as hostile: every way it can fail is a ``ValueError``
whose message can be shown to the client (callers turn it into
:class:`~trioweb.InvalidPayload`): not UTF-8, not JSON, a number longer than Python's integer
digit limit (``sys.get_int_max_str_digits()``, 4,300 by default), NaN when not allowed, a
``\\ud800``-``\\udfff`` escape that is not half of a pair (JSON's grammar allows it, but it is
no Unicode: it could not be stored or sent back as UTF-8), arrays and objects nested deeper
than ``max_depth`` (config ``JSON_MAX_DEPTH``).

The checks cost nothing on a small message. A document shorter than ``2 * max_depth``
characters, or holding at most ``max_depth`` brackets (``str.count``), cannot be too deep; only
others have their parsed value walked, level by level (about as long again as the parse, for a
message of many small objects). Python's own recursion limit (``RecursionError`` out of the C
parser) is the backstop for a ``max_depth`` set above it, or ``None``. Surrogates are looked
for only when the text has a ``\\ud8``-``\\udf`` escape (``"\\u" in data`` first, then a
regular expression), in the value's strings.
"""

from __future__ import annotations

import dataclasses
import decimal
import json
import re
import sys
import uuid
from datetime import date
from typing import Any

from werkzeug.http import http_date


def _default(value: Any) -> Any:
    if isinstance(value, date):
        return http_date(value)
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if hasattr(value, "__html__"):
        return str(value.__html__())
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


_ENCODERS = {
    allow_nan: json.JSONEncoder(
        default=_default, ensure_ascii=False, separators=(",", ":"), allow_nan=allow_nan
    )
    for allow_nan in (True, False)
}


def dumps(value: Any, *, allow_nan: bool = True, **kwargs: Any) -> str:
    """``json.dumps`` with trioweb's defaults; ``kwargs`` override them.

    Raises ``TypeError`` for a value of a type it cannot encode, ``ValueError`` for NaN or an
    infinity unless ``allow_nan``, and for a string that cannot be encoded as UTF-8 (a lone
    surrogate).
    """
    try:
        if kwargs:
            kwargs.setdefault("default", _default)
            kwargs.setdefault("ensure_ascii", False)
            kwargs.setdefault("separators", (",", ":"))
            text = json.dumps(value, allow_nan=allow_nan, **kwargs)
        else:
            text = _ENCODERS[allow_nan].encode(value)
    except ValueError as error:
        if allow_nan or "Out of range float" not in str(error):
            raise
        raise ValueError(
            "NaN and Infinity are not JSON, and JSON_ALLOW_NAN is False: send null or a string"
            " instead, or set JSON_ALLOW_NAN to True to send them as Python's json module does"
            " (JavaScript's JSON.parse rejects them)"
        ) from None
    check_text(text)
    return text


def check_text(text: str) -> None:
    """Raise ``ValueError`` if ``text`` cannot be encoded as UTF-8 (it holds a lone surrogate,
    half of a UTF-16 pair, as ``json.loads('"\\ud800"')`` returns). Costs nothing for ASCII."""
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError as error:
            raise ValueError(
                f"the text holds a lone surrogate ({text[error.start]!r} at index"
                f" {error.start}), which UTF-8 cannot encode; it comes from bytes decoded with"
                ' errors="surrogateescape" (file names, say) or a JSON "\\ud8xx" escape:'
                ' replace it first, e.g. with text.encode(errors="replace").decode()'
            ) from None


def loads(data: str | bytes) -> Any:
    """``json.loads``; raises ``ValueError`` for malformed input (trusted input: for what a
    client sent, use :func:`parse`)."""
    return json.loads(data)


#: The default of ``JSON_MAX_DEPTH``: as serde_json's; real documents rarely pass 20.
MAX_DEPTH = 128


class _NotANumber(ValueError):
    pass


def _refuse_constant(name: str) -> Any:
    raise _NotANumber(name)


_DECODERS = {
    True: json.JSONDecoder(),
    False: json.JSONDecoder(parse_constant=_refuse_constant),
}


def parse(data: str | bytes, *, max_depth: int | None = MAX_DEPTH, allow_nan: bool = True) -> Any:
    """Parse JSON a client sent: ``str``, or ``bytes`` of UTF-8 (a leading BOM is skipped).

    Raises ``ValueError`` whose message says what is wrong, in words for the client: "not
    valid UTF-8 (byte 3)", "not valid JSON: ...", "arrays and objects nested deeper than 128
    levels (JSON_MAX_DEPTH)", "a number of more than 4300 digits", "NaN is not JSON
    (JSON_ALLOW_NAN is False)", "a \\ud800-\\udfff escape that is not half of a surrogate
    pair". See the module's notes on the cost of the depth check.
    """
    if not isinstance(data, str):
        try:
            data = str(data, "utf-8-sig")
        except UnicodeDecodeError as error:
            raise ValueError(f"not valid UTF-8 (byte {error.start})") from None
    try:
        value = _DECODERS[allow_nan].decode(data)
    except json.JSONDecodeError as error:
        raise ValueError(f"not valid JSON: {error}") from None
    except _NotANumber as error:
        raise ValueError(f"{error} is not JSON (JSON_ALLOW_NAN is False)") from None
    except RecursionError:
        raise ValueError(_too_deep(max_depth)) from None
    except ValueError:  # only int() raises another: past sys.get_int_max_str_digits()
        raise ValueError(f"a number of more than {sys.get_int_max_str_digits()} digits") from None
    if "\\u" in data and _SURROGATE_ESCAPE.search(data) and _lone_surrogate(value):
        raise ValueError(
            "a \\ud800-\\udfff escape that is not half of a surrogate pair (not Unicode)"
        )
    if (
        max_depth is not None
        and len(data) > 2 * max_depth
        and data.count("[") + data.count("{") > max_depth
        and _deeper_than(value, max_depth)
    ):
        raise ValueError(_too_deep(max_depth))
    return value


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _lone_surrogate(value: Any) -> bool:
    """Whether a string of ``value`` (keys included) holds a lone surrogate (a loop, not a
    recursion: ``value`` may nest as deep as the parser went)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if type(item) is str:
            if not item.isascii():
                try:
                    item.encode()
                except UnicodeEncodeError:
                    return True
        elif type(item) is dict:
            stack += item.keys()
            stack += item.values()
        elif type(item) is list:
            stack += item
    return False


def _too_deep(max_depth: int | None) -> str:
    if max_depth is None:
        return "arrays and objects nested deeper than the parser can go"
    return f"arrays and objects nested deeper than {max_depth} levels (JSON_MAX_DEPTH)"


def _deeper_than(value: Any, max_depth: int) -> bool:
    """Whether ``value`` nests lists and dicts deeper than ``max_depth`` (level by level)."""
    level = [value] if type(value) is list or type(value) is dict else []
    for _ in range(max_depth):
        if not level:
            return False
        deeper: list[Any] = []
        for container in level:
            items = container.values() if type(container) is dict else container
            deeper += [item for item in items if type(item) is list or type(item) is dict]
        level = deeper
    return bool(level)


def jsonable(*args: Any, **kwargs: Any) -> Any:
    """The value ``jsonify(*args, **kwargs)`` encodes: one argument as is, several as a list,
    keyword arguments as an object. Mixing both is a ``TypeError``."""
    if args and kwargs:
        raise TypeError("jsonify() takes positional arguments or keyword arguments, not both")
    if len(args) == 1:
        return args[0]
    return list(args) if args else kwargs
