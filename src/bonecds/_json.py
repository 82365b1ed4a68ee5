"""Compact JSON text for the engine's facts and batch report lines: orjson, several times
faster than the json module, with the json module taking over for what orjson refuses (an
integer beyond 64 bits). Both write the same compact form; keys sorted when asked."""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = ["compact", "compact_bytes", "loads"]


def compact(data: Any, *, sort_keys: bool = False) -> str:
    return compact_bytes(data, sort_keys=sort_keys).decode()


def compact_bytes(data: Any, *, sort_keys: bool = False) -> bytes:
    """The same as UTF-8 bytes, as orjson makes them (a report line is written as bytes)."""
    try:
        return orjson.dumps(data, option=orjson.OPT_SORT_KEYS if sort_keys else 0)
    except TypeError:
        text = json.dumps(data, sort_keys=sort_keys, ensure_ascii=False, separators=(",", ":"))
        return text.encode()


def loads(raw: bytes) -> Any:
    """orjson reads a record several times faster; what it refuses (malformed text, NaN, an
    integer beyond 64 bits) goes to the json module, which accepts the same as before or names
    the problem."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw.decode("utf-8"))
