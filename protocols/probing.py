"""The verdict every probe ends with: CRITICAL on any problem, WARNING when a timing is over
--warn, else OK, with the timings as metrics (seconds)."""

from __future__ import annotations

from .driver import ProbeReport
from .errors import NagiosCode


def verdict(metrics: dict[str, float], problems: list[str], parts: list[str], warn: float, crit: float) -> ProbeReport:
    if problems:
        return ProbeReport(NagiosCode.CRITICAL, "; ".join(problems + parts), metrics, warn, crit)
    slow = [f"{name} over {warn:g} s" for name, value in metrics.items() if value > warn]
    status = NagiosCode.WARNING if slow else NagiosCode.OK
    return ProbeReport(status, "; ".join(parts + slow), metrics, warn, crit)
