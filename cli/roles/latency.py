"""Latency statistics for `fieldctl bench`: the quantiles people compare (min, p50, p90, p99,
p99.9, max), by the nearest-rank rule, so every figure is a latency that was really measured. A
percentile is given only when enough samples stand behind it: p99 of 30 samples would be the
largest of them, the maximum under another name."""

from __future__ import annotations

import math
from collections.abc import Iterable

#: Name -> quantile, in the order they are shown.
QUANTILES = {"min": 0.0, "p50": 0.50, "p90": 0.90, "p99": 0.99, "p99.9": 0.999, "max": 1.0}
#: Name -> the samples a figure needs: a percentile q needs 1 / (1 - q), so that at least one
#: sample lies beyond it (p99.9: 1,000); min, max and the mean need one.
NEEDED = {name: round(1 / (1 - q)) if 0 < q < 1 else 1 for name, q in QUANTILES.items()}


def quantiles(samples: Iterable[float]) -> dict[str, float | None]:
    """The QUANTILES of the samples (seconds), and their mean; None for a figure with fewer
    samples than it NEEDED (all None when there are none)."""
    ordered = sorted(samples)
    if not ordered:
        return {**dict.fromkeys(QUANTILES), "mean": None}
    count, last = len(ordered), len(ordered) - 1
    figures: dict[str, float | None] = {
        name: ordered[min(last, max(0, math.ceil(q * count) - 1))] if count >= NEEDED[name] else None
        for name, q in QUANTILES.items()
    }
    figures["mean"] = sum(ordered) / count
    return figures


def too_few(count: int) -> list[str]:
    """The percentiles `count` samples (at least one) are too few for, e.g. ['p99', 'p99.9'] for 50."""
    return [name for name, needed in NEEDED.items() if 0 < count < needed]


def milliseconds(seconds: float | None) -> str:
    """'1.23 ms' for a table; '-' when there is no figure."""
    return "-" if seconds is None else f"{seconds * 1000:.3g} ms" if seconds < 0.1 else f"{seconds * 1000:.0f} ms"
