"""JSON encoding shared by ``jsonify``, dict/list return values and ``websocket.send_json``.

Compact output, UTF-8 kept as is, and the extra types Flask users expect: dates and datetimes
(HTTP date format, as Flask), ``decimal.Decimal``, ``uuid.UUID``, dataclasses and objects with
``__html__``. Anything else is a ``TypeError`` naming the type.
"""

from __future__ import annotations

import dataclasses
import decimal
import json
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


def dumps(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` with trioweb's defaults; ``kwargs`` override them."""
    kwargs.setdefault("default", _default)
    kwargs.setdefault("ensure_ascii", False)
    kwargs.setdefault("separators", (",", ":"))
    return json.dumps(value, **kwargs)


def loads(data: str | bytes) -> Any:
    """``json.loads``; raises ``ValueError`` for malformed input."""
    return json.loads(data)


def jsonable(*args: Any, **kwargs: Any) -> Any:
    """The value ``jsonify(*args, **kwargs)`` encodes: one argument as is, several as a list,
    keyword arguments as an object. Mixing both is a ``TypeError``."""
    if args and kwargs:
        raise TypeError("jsonify() takes positional arguments or keyword arguments, not both")
    if len(args) == 1:
        return args[0]
    return list(args) if args else kwargs
