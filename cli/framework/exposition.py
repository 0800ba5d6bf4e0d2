"""Prometheus' text exposition format (version 0.0.4), for `probe --format prometheus` and the
exporter's /metrics. Written here, not by prometheus_client: a scrape of a thousand targets is one
pass of string formatting, about ten times faster than its generate_latest (bench/fleet_board.py).

A label value is text from a wire: its control characters are written out as `escape.visible`
writes them, so the value reads the same in Prometheus as on a terminal, and only then escaped as
the format requires (backslash, double quote, newline)."""

from __future__ import annotations

import math
from collections.abc import Iterable

from fieldctl.cli.framework.escape import visible

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_QUOTED = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n"})


def label_value(text: str) -> str:
    """`text` as it goes between a label's quotes."""
    if not text.isprintable():  # printable text has nothing visible() would change: the common case
        text = visible(text)
    return text.translate(_QUOTED) if "\\" in text or '"' in text else text


def labels(**pairs: str) -> str:
    """`{key="value",...}`, each value escaped."""
    return "{" + ",".join(f'{key}="{label_value(value)}"' for key, value in pairs.items()) + "}"


def sample_value(value: float) -> str:
    """A number as Prometheus reads it: integers as integers, ±Inf and NaN by their names."""
    if isinstance(value, int):
        return str(value)
    if math.isfinite(value):
        return repr(float(value))
    return "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")


def family(name: str, kind: str, help_text: str, samples: Iterable[str]) -> str:
    """One family: HELP, TYPE and its sample lines (each ends with a newline); nothing without samples."""
    lines = "".join(samples)
    return f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n{lines}" if lines else ""
