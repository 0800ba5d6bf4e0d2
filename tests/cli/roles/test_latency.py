"""bench's quantiles: nearest rank, so each figure is a latency that was measured."""

from __future__ import annotations

from fieldctl.cli.roles.latency import milliseconds, quantiles, too_few

PERCENTILES = ["p50", "p90", "p99", "p99.9"]


def test_nearest_rank_quantiles() -> None:
    figures = quantiles(float(n) for n in range(1000, 0, -1))  # 1..1000, in any order
    assert figures == {
        "min": 1.0,
        "p50": 500.0,
        "p90": 900.0,
        "p99": 990.0,
        "p99.9": 999.0,
        "max": 1000.0,
        "mean": 500.5,
    }


def test_a_percentile_needs_enough_samples_behind_it() -> None:
    """p99 of 50 samples would be their maximum: left out, as are those of fewer samples still."""
    assert quantiles([0.25]) == {**dict.fromkeys(["min", "max", "mean"], 0.25), **dict.fromkeys(PERCENTILES)}
    figures = quantiles(float(n) for n in range(1, 51))
    assert [figures[name] for name in PERCENTILES] == [25.0, 45.0, None, None]
    assert (too_few(50), too_few(999), too_few(1000), too_few(0)) == (["p99", "p99.9"], ["p99.9"], [], [])


def test_no_samples_no_figures() -> None:
    assert set(quantiles([]).values()) == {None}
    assert (milliseconds(None), milliseconds(0.00123), milliseconds(0.25)) == ("-", "1.23 ms", "250 ms")
