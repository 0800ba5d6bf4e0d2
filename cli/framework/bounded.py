"""Numbers on the command line that bound a run: waits, timeouts, thresholds, intervals, run
lengths, counts, rates. Each kind is one parser shared by every subcommand (and the console, which
parses its lines with the same commands): finite and within a sane maximum (core/limits.py), so
`--timeout inf`, `nan` or `1e308` is a usage error that names the option, not a wait without end."""

from __future__ import annotations

from typing import Any

import typer

from fieldctl.protocols.core.limits import MAX_COUNT, MAX_RUN_SECONDS, MAX_SECONDS, finite_within


class Bounded:
    """A Typer `parser`: text (or a default already a number) to an int or a float from `low` to
    `high`, else typer.BadParameter ("Invalid value for '--timeout': ...", exit 2)."""

    def __init__(self, kind: type[int] | type[float], low: float, high: float, unit: str = "") -> None:
        self.kind, self.low, self.high = kind, low, high
        self.expected = f"a{'n integer' if kind is int else ' number'}{unit} from {low:.12g} to {high:.12g}"

    def __call__(self, text: Any) -> Any:
        try:
            return self.parse(text)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None

    def parse(self, text: Any) -> Any:
        """The number, else ValueError saying what was expected."""
        try:
            value = text if isinstance(text, (int, float)) else self.kind(str(text).strip())
        except ValueError:
            value = None
        if not finite_within(value, self.low, self.high):
            raise ValueError(f"expected {self.expected}, got {str(text)!r}")
        return value


#: A wait, a timeout, a threshold (--timeout, --idle, --wait, --warn, --crit): at most a day.
SECONDS = Bounded(float, 0, MAX_SECONDS, " of seconds")
#: How long a run lasts (--duration): at most 30 days.
RUN_SECONDS = Bounded(float, 0, MAX_RUN_SECONDS, " of seconds")
#: How many (--count, --requests).
COUNT = Bounded(int, 1, MAX_COUNT)
