"""The verdict every probe ends with: CRITICAL on any problem, WARNING when a timing is over
--warn, else OK, with the timings as metrics (seconds); and how every caller (probe, a fleet's
probes, a check's probe step) defaults the thresholds and runs a probe that never hangs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fieldctl.protocols.core.errors import ConnectFailure, FieldctlError, NagiosCode, UsageError
from fieldctl.protocols.sdk.contract import ProbeReport

if TYPE_CHECKING:
    from fieldctl.profiles import Profile
    from fieldctl.protocols.core.message import Message
    from fieldctl.protocols.sdk.contract import BaseDriver

#: Probes of a fleet running at once: 1,000 targets are probed in waves, not all sockets at one moment.
#: The exporter's rounds use this, and `probe --fleet` needs at least this many to fit its open files.
PROBES_AT_ONCE = 32
#: `probe --fleet` runs more at once where the open files allow: a fleet of a few hundred in one
#: wave, so the fleet takes about as long as its slowest probe (each bounded by --crit).
FLEET_PROBES_AT_ONCE = 512
#: How much longer than --crit a probe may take before it is given up (the driver should not need it).
GRACE_S = 2.0


def verdict(metrics: dict[str, float], problems: list[str], parts: list[str], warn: float, crit: float) -> ProbeReport:
    if problems:
        return ProbeReport(NagiosCode.CRITICAL, "; ".join(problems + parts), metrics, warn, crit)
    slow = [f"{name} over {warn:g} s" for name, value in metrics.items() if value > warn]
    status = NagiosCode.WARNING if slow else NagiosCode.OK
    return ProbeReport(status, "; ".join(parts + slow), metrics, warn, crit)


def thresholds(profile: Profile, warn: float | None = None, crit: float | None = None) -> tuple[float, float]:
    """(warn, crit) in seconds: as given, else the heartbeat's stale time for crit and 1.5
    heartbeat intervals (at most crit) for warn."""
    crit_s = float(crit) if crit is not None else profile.heartbeat.stale_after_s
    warn_s = float(warn) if warn is not None else min(1.5 * profile.heartbeat.interval_s, crit_s)
    if warn_s > crit_s:
        raise UsageError(f"--warn {warn_s:g} is above --crit {crit_s:g}")
    return warn_s, crit_s


def failed(exc: Exception) -> ProbeReport:
    """Why a probe could not run, as its report: unreachable is CRITICAL, anything else UNKNOWN."""
    return ProbeReport(NagiosCode.CRITICAL if isinstance(exc, ConnectFailure) else NagiosCode.UNKNOWN, str(exc))


def _ignored(msg: Message) -> None:
    """A probe's traffic: its report says what matters."""


async def probed(driver: BaseDriver, warn: float, crit: float, options: dict[str, Any]) -> ProbeReport:
    """The driver's probe, always a report, within crit + GRACE_S."""

    from fieldctl.protocols.transport import within

    try:
        return await within(driver.probe(driver.context(_ignored, options), warn=warn, crit=crit), crit + GRACE_S)
    except TimeoutError:
        return ProbeReport(NagiosCode.CRITICAL, f"no verdict within {crit + GRACE_S:g} s")
    except FieldctlError as exc:
        return failed(exc)
