"""`fieldctl probe PROFILE`: a health check with Nagios exit codes that never hangs."""

from __future__ import annotations

import enum
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from fieldctl.cli.framework.bounded import SECONDS
from fieldctl.cli.framework.common import ProfileOptions, with_profile

if TYPE_CHECKING:
    from fieldctl.profiles import Profile
    from fieldctl.protocols.core.errors import NagiosCode
    from fieldctl.protocols.sdk.contract import BaseDriver, ProbeReport


class Format(enum.StrEnum):
    text = "text"
    json = "json"
    prometheus = "prometheus"


def render(report: ProbeReport, profile: str, fmt: Format, target: str | None = None) -> str:
    """One probe's verdict; `target` names a fleet's target (a `target` field and label). The
    summary may carry a peer's words and a URL: known secrets and a URL's password are masked,
    and on a terminal control characters escaped."""
    from fieldctl.cli.framework.escape import stderr_line
    from fieldctl.protocols.core.redact import scrub_text
    from fieldctl.protocols.core.urls import mask_passwords

    status = report.status.name
    if fmt is Format.json:
        import json

        named = {"target": target} if target is not None else {}
        return json.dumps(
            {
                **named,
                "profile": profile,
                "status": status,
                "code": int(report.status),
                "summary": mask_passwords(scrub_text(report.summary)),
                "metrics": report.metrics,
                "warn": report.warn,
                "crit": report.crit,
            }
        )
    if fmt is Format.prometheus:
        return prometheus(
            [(report, {"target": target, "profile": profile} if target is not None else {"profile": profile})]
        )
    perf = " ".join(f"{name}={value}s;{report.warn:g};{report.crit:g}" for name, value in report.metrics.items())
    return stderr_line(f"{(target or profile).upper()} {status} - {report.summary}") + (f" | {perf}" if perf else "")


def prometheus(probes: list[tuple[ProbeReport, dict[str, str]]]) -> str:
    """The same metric names for every profile, in base units (seconds), the profile (a fleet's
    target too) and the step as labels: a dashboard or an alert written once serves every system.
    Each family's HELP and TYPE come once, whatever the number of probes."""
    from fieldctl.cli.framework.exposition import family, labels, sample_value

    families: list[tuple[str, str, list[tuple[str, float]]]] = [
        (
            "fieldctl_probe_status",
            "The probe's verdict as Nagios codes it: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
            [(labels(**names), int(report.status)) for report, names in probes],
        ),
        (
            "fieldctl_probe_duration_seconds",
            "How long each step of the probe took.",
            # the Driver contract names every metric `<step>_seconds`
            [
                (labels(**names, step=name.removesuffix("_seconds")), value)
                for report, names in probes
                for name, value in report.metrics.items()
            ],
        ),
        (
            "fieldctl_probe_warning_seconds",
            "A step slower than this makes the probe WARNING.",
            [(labels(**names), report.warn) for report, names in probes],
        ),
        (
            "fieldctl_probe_critical_seconds",
            "A step slower than this makes the probe CRITICAL; also its time limit.",
            [(labels(**names), report.crit) for report, names in probes],
        ),
    ]
    return "".join(
        family(name, "gauge", help_text, (f"{name}{label} {sample_value(value)}\n" for label, value in samples))
        for name, help_text, samples in families
    ).removesuffix("\n")


#: Nagios codes from best to worst, as aggregators rank them: a fleet exits with its worst.
SEVERITY = (0, 1, 3, 2)  # OK, WARNING, UNKNOWN, CRITICAL


@with_profile
def probe(
    profile: ProfileOptions,
    warn: Annotated[
        float | None,
        typer.Option(
            "--warn", parser=SECONDS, metavar="S", help="WARNING above S seconds (default 1.5 heartbeat intervals)."
        ),
    ] = None,
    crit: Annotated[
        float | None,
        typer.Option(
            "--crit",
            parser=SECONDS,
            metavar="S",
            help="CRITICAL above S seconds; also the probe's time limit (default heartbeat.stale_after_s).",
        ),
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.text,
    fleet: Annotated[
        Path | None,
        typer.Option(
            "--fleet",
            metavar="FILE",
            help="Probe every target of this fleet file at once (instead of PROFILE); exit with the worst status.",
        ),
    ] = None,
    group: Annotated[
        str | None,
        typer.Option("--group", metavar="LABEL", help="With --fleet: only the targets with this group label."),
    ] = None,
) -> None:
    """Check the remote side: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN."""
    import asyncio

    if fleet is not None or group is not None:
        raise typer.Exit(_fleet(profile, fleet, group, warn, crit, fmt))
    report = asyncio.run(checked(planned(profile.load, profile, warn, crit)))
    typer.echo(render(report, profile.name or "probe", fmt))
    raise typer.Exit(int(report.status))


#: A probe ready to run: the driver, its --warn and --crit in seconds, its protocol options.
Planned = tuple["BaseDriver", float, float, dict[str, Any]]


def planned(
    load: Callable[[], Profile], profile: ProfileOptions, warn: float | None, crit: float | None
) -> Planned | ProbeReport:
    """Everything before the network (profile, thresholds, driver, options), or the report of why
    it cannot run. A fleet plans every target before the first probe starts, so loading profiles
    does not hold up the event loop while other probes are timing the wire."""
    from fieldctl.cli.framework import common
    from fieldctl.protocols.core.errors import FieldctlError
    from fieldctl.protocols.sdk.probing import failed, thresholds

    try:
        prof = load()
        warn_s, crit_s = thresholds(prof, warn, crit)
        drv = common.driver(prof)
        return drv, warn_s, crit_s, profile.options("probe", drv)
    except FieldctlError as exc:
        return failed(exc)


def probes_at_once(path: Path, plans: list[Planned | ProbeReport]) -> int:
    """How many probes of the fleet run at once: as many as the process's limit on open files
    (raised to the hard one first) holds, up to FLEET_PROBES_AT_ONCE; UsageError when not even a
    wave of PROBES_AT_ONCE fits."""
    from fieldctl.protocols.runtime.open_files import at_once, per_run
    from fieldctl.protocols.sdk.contract import ProbeReport
    from fieldctl.protocols.sdk.probing import FLEET_PROBES_AT_ONCE, PROBES_AT_ONCE

    costs = [per_run(plan[0], "probe") for plan in plans if not isinstance(plan, ProbeReport)]
    wanted = min(len(costs), FLEET_PROBES_AT_ONCE)
    return at_once(max(costs, default=0), wanted, PROBES_AT_ONCE, f"{path}: {len(plans)} targets")


async def checked(plan: Planned | ProbeReport) -> ProbeReport:
    """The probe's report, whatever goes wrong: unreachable is CRITICAL, anything else UNKNOWN."""
    from fieldctl.protocols.sdk.contract import ProbeReport
    from fieldctl.protocols.sdk.probing import probed

    if isinstance(plan, ProbeReport):
        return plan
    return await probed(*plan)


def _fleet(
    profile: ProfileOptions, path: Path | None, group: str | None, warn: float | None, crit: float | None, fmt: Format
) -> int:
    """Every target of the fleet probed concurrently (as many at once as the open files allow); a
    line each, the worst first (text: after a summary line that names them)."""
    import asyncio
    import functools

    from fieldctl.cli.fleet.follower import written
    from fieldctl.profiles.targets import load_fleet
    from fieldctl.protocols.core.errors import NagiosCode, UsageError
    from fieldctl.protocols.transport import together

    try:
        if path is None:
            raise UsageError("--group needs --fleet FILE")
        if profile.typed:
            raise UsageError(f"probe --fleet takes no PROFILE (got {profile.name!r})")
        if profile.host or profile.endpoints:
            raise UsageError("--host and --endpoint name one device; a fleet file names each target's")
        targets = list(load_fleet(written(path), group).values())
        if not targets:
            raise UsageError(f"{path}: no [targets.NAME] in it")
        plans = [
            planned(functools.partial(target.load, profile_files=profile.files, sets=profile.sets), profile, warn, crit)
            for target in targets
        ]
        bound = probes_at_once(path, plans)
    except UsageError as exc:
        typer.echo(f"FLEET UNKNOWN - {exc}")
        return int(NagiosCode.UNKNOWN)

    async def run() -> list[ProbeReport]:
        gate = asyncio.Semaphore(bound)  # a fleet larger than the open files allow goes in waves

        async def one(plan: Planned | ProbeReport) -> ProbeReport:
            async with gate:
                return await checked(plan)

        return await together(*map(one, plans))

    reports = asyncio.run(run())
    worst = max((report.status for report in reports), key=SEVERITY.index)
    if fmt is Format.prometheus:
        typer.echo(
            prometheus(
                [
                    (report, {"target": target.name, "profile": target.profile})
                    for target, report in zip(targets, reports, strict=True)
                ]
            )
        )
        return int(worst)
    ranked = sorted(zip(targets, reports, strict=True), key=lambda pair: -SEVERITY.index(pair[1].status))
    if fmt is Format.text:
        typer.echo(summary_line(worst, [(target.name, report) for target, report in ranked]))
    for target, report in ranked:  # the problems first: what needs a look is never below 300 OKs
        typer.echo(render(report, target.profile, fmt, target.name))
    return int(worst)


#: How many targets the summary line names per status before "and N more".
NAMED_IN_SUMMARY = 5


def summary_line(worst: NagiosCode, ranked: list[tuple[str, ProbeReport]]) -> str:
    """`FLEET CRITICAL - 302 targets: 300 OK, 2 CRITICAL (sim-007, sim-009)`: each status that is
    not OK names its targets (the first NAMED_IN_SUMMARY, then how many more)."""
    from fieldctl.cli.framework.escape import stderr_line
    from fieldctl.protocols.core.errors import NagiosCode

    tally = []
    for status in sorted(NagiosCode, key=SEVERITY.index):
        names = [name for name, report in ranked if report.status is status]
        if not names:
            continue
        part = f"{len(names)} {status.name}"
        if status is not NagiosCode.OK:
            shown = names[:NAMED_IN_SUMMARY]
            more = len(names) - len(shown)
            part += f" ({', '.join(shown)}{f' and {more} more' if more else ''})"
        tally.append(part)
    return stderr_line(f"FLEET {worst.name} - {len(ranked)} targets: {', '.join(tally)}")
