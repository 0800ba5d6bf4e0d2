"""How a payload value and a duration read for a person: one voice for every profile's table
cells, lines, outcomes and probe texts. (NDJSON, --record and perfdata stay machine formats.)

A value reads as compact JSON (`null`, `true`, strings quoted as JSON quotes them), never as a
Python repr; a duration reads in milliseconds below a second and in seconds above."""

from __future__ import annotations

import json
from typing import Any

#: What one shown value may take of a line: a table cell or a summary, not a dump.
VALUE_CHARS = 120


def value_text(value: Any, limit: int = VALUE_CHARS) -> str:
    """`value` as compact JSON, cut to `limit` characters with an ellipsis. What JSON cannot say
    (bytes, a set from a decoder) reads as its str(), quoted like a string."""
    kind = type(value)
    if kind is str and value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
        text = f'"{value}"'  # the usual plain string, without json.dumps' cost (--lines shows every message)
    elif kind is int or kind is bool or value is None:
        text = json.dumps(value)
    else:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def duration_text(seconds: float) -> str:
    """`1.6 ms` below a second, `2.3 s` from one on: the one unit style for a measured time."""
    milliseconds = seconds * 1000
    if round(milliseconds, 1) < 1000:
        return f"{milliseconds:.1f} ms"
    return f"{seconds:.1f} s"
