"""`fieldctl probe PROFILE`: a health check with Nagios exit codes that never hangs."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from .common import ProfileOptions, with_profile

if TYPE_CHECKING:
    from fieldctl.protocols.driver import ProbeReport


class Format(str, enum.Enum):
    text = "text"
    json = "json"
    prometheus = "prometheus"


def render(report: "ProbeReport", profile: str, fmt: Format) -> str:
    status = report.status.name
    if fmt is Format.json:
        import json

        return json.dumps({"profile": profile, "status": status, "code": int(report.status), "summary": report.summary,
                           "metrics": report.metrics, "warn": report.warn, "crit": report.crit})
    if fmt is Format.prometheus:
        return _prometheus(report, profile)
    perf = " ".join(f"{name}={value}s;{report.warn:g};{report.crit:g}" for name, value in report.metrics.items())
    return f"{profile.upper()} {status} - {report.summary}" + (f" | {perf}" if perf else "")


#: The text exposition format's escapes for label values.
_LABEL_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n"})


def _sample_value(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    number = float(value)
    if number != number:
        return "NaN"
    return {float("inf"): "+Inf", float("-inf"): "-Inf"}.get(number, repr(number))


def _prometheus(report: "ProbeReport", profile: str) -> str:
    """The same metric names for every profile, in base units (seconds), the profile and the step
    as labels: a dashboard or an alert written once serves every system."""
    def labels(**pairs: str) -> str:
        return "{" + ",".join(f'{key}="{value.translate(_LABEL_ESCAPES)}"' for key, value in pairs.items()) + "}"

    families: list[tuple[str, str, list[tuple[str, float]]]] = [
        ("fieldctl_probe_status", "The probe's verdict as Nagios codes it: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
         [(labels(profile=profile), int(report.status))]),
        ("fieldctl_probe_duration_seconds", "How long each step of the probe took.",
         # the Driver contract names every metric `<step>_seconds`
         [(labels(profile=profile, step=name.removesuffix("_seconds")), value)
          for name, value in report.metrics.items()]),
        ("fieldctl_probe_warning_seconds", "A step slower than this makes the probe WARNING.",
         [(labels(profile=profile), report.warn)]),
        ("fieldctl_probe_critical_seconds", "A step slower than this makes the probe CRITICAL; also its time limit.",
         [(labels(profile=profile), report.crit)]),
    ]
    lines = []
    for name, help_text, samples in families:
        if samples:
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
            lines += [f"{name}{label} {_sample_value(value)}" for label, value in samples]
    return "\n".join(lines)


@with_profile
def probe(
    profile: ProfileOptions,
    warn: Annotated[Optional[float], typer.Option("--warn", min=0, help="WARNING above S seconds (default 1.5 heartbeat intervals).")] = None,
    crit: Annotated[Optional[float], typer.Option("--crit", min=0, help="CRITICAL above S seconds; also the probe's time limit (default heartbeat.stale_after_s).")] = None,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.text,
) -> None:
    """Check the remote side: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN."""
    import asyncio

    from fieldctl.protocols.errors import ConnectFailure, FieldctlError, NagiosCode, UsageError
    from fieldctl.protocols.driver import ProbeReport

    from . import common

    try:
        prof = profile.load()
        crit_s = crit if crit is not None else prof.heartbeat.stale_after_s
        warn_s = warn if warn is not None else min(1.5 * prof.heartbeat.interval_s, crit_s)
        if warn_s > crit_s:
            raise UsageError(f"--warn {warn_s:g} is above --crit {crit_s:g}")
        drv = common.driver(prof)
        report = asyncio.run(drv.probe(warn=warn_s, crit=crit_s, options=profile.options("probe", drv)))
    except FieldctlError as exc:
        unreachable = isinstance(exc, ConnectFailure)
        report = ProbeReport(NagiosCode.CRITICAL if unreachable else NagiosCode.UNKNOWN, str(exc))
    typer.echo(render(report, profile.name, fmt))
    raise typer.Exit(int(report.status))
