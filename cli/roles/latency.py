"""Latency statistics for `fieldctl bench`: the quantiles people compare (min, p50, p90, p99,
p99.9, max), by the nearest-rank rule, so every figure is a latency that was really measured."""

from __future__ import annotations

import math
from collections.abc import Iterable

#: Name -> quantile, in the order they are shown.
QUANTILES = {"min": 0.0, "p50": 0.50, "p90": 0.90, "p99": 0.99, "p99.9": 0.999, "max": 1.0}


def quantiles(samples: Iterable[float]) -> dict[str, float | None]:
    """The QUANTILES of the samples (seconds), and their mean; all None when there are none."""
    ordered = sorted(samples)
    if not ordered:
        return {**dict.fromkeys(QUANTILES), "mean": None}
    last = len(ordered) - 1
    figures: dict[str, float | None] = {
        name: ordered[min(last, max(0, math.ceil(q * len(ordered)) - 1))] for name, q in QUANTILES.items()
    }
    figures["mean"] = sum(ordered) / len(ordered)
    return figures


def milliseconds(seconds: float | None) -> str:
    """'1.23 ms' for a table; '-' when there is no figure."""
    return "-" if seconds is None else f"{seconds * 1000:.3g} ms" if seconds < 0.1 else f"{seconds * 1000:.0f} ms"
