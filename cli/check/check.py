"""`fieldctl check FILE...`: run written checks against a device or a simulator, and report the
way CI systems read (JUnit XML). Every file is validated, and its target resolved, before any step
runs: a bad file is exit 2 with every problem listed as `FILE: step N: FIELD: reason`.

Exit codes: 0 every step passed, 1 an expectation failed, 2 a bad check file, 3 cannot connect,
4 a step timed out (5 a protocol error); when steps end differently, the first of 3, 4, 5, 2, 1."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from fieldctl.cli.framework.common import EndpointOpt, HostOpt, JsonOpt, ProfileFileOpt, ProfileOptions, SetOpt, ViaOpt
from fieldctl.cli.framework.completers import profile_names

if TYPE_CHECKING:
    from fieldctl.cli.check.checkfile import CheckFile
    from fieldctl.cli.check.runner import Result
    from fieldctl.profiles import Profile
    from fieldctl.protocols.sdk.contract import BaseDriver

#: The protocol roles a check uses, and so whose options it parses.
ROLES = ("command", "listen", "register", "publish", "probe", "simulate")


def check(
    files: Annotated[
        list[Path], typer.Argument(metavar="FILE", help="check files (TOML; see the README)", show_default=False)
    ],
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            metavar="NAME",
            autocompletion=profile_names,
            help="Profile or saved target to check (instead of the files' own, which must be of its protocol).",
        ),
    ] = None,
    junit: Annotated[
        Path | None, typer.Option("--junit", metavar="FILE", help="Also write the results as JUnit XML.")
    ] = None,
    fail_fast: Annotated[bool, typer.Option("--fail-fast", help="Stop at the first step that does not pass.")] = False,
    simulate: Annotated[
        bool,
        typer.Option(
            "--simulate",
            help="Run each file against its profile's simulator, started in-process on private loopback addresses.",
        ),
    ] = False,
    allow_exec: Annotated[
        bool,
        typer.Option(
            "--allow-exec",
            help="Let the files give protocol options that run a program or unpickle freely "
            "(a check file is data: refused otherwise).",
        ),
    ] = False,
    via: ViaOpt = None,
    json_: JsonOpt = False,
    host: HostOpt = None,
    endpoint: EndpointOpt = None,
    set_: SetOpt = None,
    profile_file: ProfileFileOpt = None,
) -> None:
    """Run check files (commands, events, probes, publishes) and report each step; exit 0 when all pass."""
    import asyncio
    import sys

    from fieldctl.cli.check import report as check_report
    from fieldctl.cli.check.runner import exit_code, not_run
    from fieldctl.cli.framework import common
    from fieldctl.protocols.core.errors import FieldctlError

    overrides = ProfileOptions("", host, endpoint, set_, profile_file)
    prepared = _prepare(files, target, overrides, allow_exec, simulate or via is not None)
    as_json = common.json_mode(json_)
    results: list[Result] = []
    console = None
    if not as_json:
        from rich.console import Console

        console = Console(highlight=False)

    def report(result: Result) -> None:
        results.append(result)
        if as_json:
            check_report.ndjson_line(result)

    def stop() -> bool:
        return fail_fast and any(result.status in ("failed", "error") for result in results)

    async def main() -> None:
        for file in prepared:
            done = len(results)
            try:
                if stop():  # --fail-fast, and an earlier file did not pass
                    not_run(file.check, report)
                else:
                    await _run_file(file, overrides, simulate, via, report, stop)
            except FieldctlError as exc:  # e.g. the simulator did not start: this file's steps did not run
                if len(results) > done:
                    raise
                not_run(file.check, report, exc)
            if console is not None:
                check_report.print_table(results[done:], console)

    asyncio.run(main())
    code = exit_code(results)
    if junit is not None:
        check_report.write_junit(results, junit)
    if console is not None:
        check_report.print_totals(results, code, console)
    else:
        check_report.summary_line(results, code)
    sys.stdout.flush()
    raise typer.Exit(code)


@dataclass
class Prepared:
    """A check file with its target resolved: the profile (the command line's overrides on top),
    a driver for it, and the file's protocol options for each role, parsed for that protocol."""

    check: CheckFile
    name: str
    profile: Profile
    driver: BaseDriver
    options: dict[str, dict[str, Any]]


def _prepare(
    files: list[Path], target: str | None, overrides: ProfileOptions, allow_exec: bool, controlled: bool
) -> list[Prepared]:
    """Every file loaded, its target resolved and its options parsed; else exit 2 with every
    problem. `controlled`: a simulator's control path is at hand (--simulate, --via)."""
    import sys

    from fieldctl.cli.check.checkfile import load, vocabulary_problems
    from fieldctl.cli.framework.escape import stderr_line
    from fieldctl.protocols.core.errors import UsageError

    problems: list[str] = []
    prepared = []
    elsewhere: list[str] = []  # files whose own target --target does not fit
    wanted = _protocol_of(target, overrides) if target is not None else None
    for path in files:
        try:
            check_file = load(path)
        except UsageError as exc:
            problems += str(exc).splitlines()
            continue
        if wanted is not None and check_file.target is not None:
            theirs = _protocol_of(check_file.target, overrides)
            if theirs not in (None, wanted):
                elsewhere.append(f"{path} ({theirs})")
                continue
        name = target or check_file.target
        if name is None:
            problems.append(f'{path}: target: missing: give target = "PROFILE" in the file or --target')
            continue
        try:
            prof = _profile(overrides, name)
            drv = _driver(prof)
        except UsageError as exc:
            problems.append(f"{path}: target: {exc}")
            continue
        options, wrong = _options(check_file, drv, allow_exec)
        problems += wrong + vocabulary_problems(check_file, drv)
        if not controlled and not isinstance(check_file.via, str):
            problems += [
                f"{path}: step {step.number}: via: acts through a simulator's control path: give --via SOCKET "
                '(or via = "SOCKET" in the file), or run with --simulate'
                for step in check_file.steps
                if step.action in ("command", "publish") and check_file.acts_via(step)
            ]
        prepared.append(Prepared(check_file, name, prof, drv, options))
    if elsewhere:
        problems.append(
            f"--target {target} ({wanted}) does not fit the target of {', '.join(elsewhere)}: "
            "check those files in a run of their own"
        )
    if problems:
        for line in problems:
            sys.stderr.write(f"fieldctl check: {stderr_line(line)}\n")
        raise typer.Exit(2)
    return prepared


def _protocol_of(name: str, overrides: ProfileOptions) -> str | None:
    """The protocol of a profile or saved target; None when `name` names neither here (a file's
    target may be a name only the CI machine knows: --target then stands in for it)."""
    from fieldctl.protocols.core.errors import UsageError

    try:
        return ProfileOptions(name, None, [], [], overrides.files).load().protocol
    except UsageError:
        return None


def _profile(overrides: ProfileOptions, name: str, endpoints: Sequence[str] = (), sets: Sequence[str] = ()) -> Profile:
    """The profile or saved target `name`, with the command line's overrides (and a private run's) on top."""
    return ProfileOptions(
        name, overrides.host, [*overrides.endpoints, *endpoints], [*overrides.sets, *sets], overrides.files
    ).load()


def _driver(prof: Profile) -> BaseDriver:
    from fieldctl.cli.framework import common

    return common.driver(prof)


def _options(check_file: CheckFile, drv: BaseDriver, allow_exec: bool) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The file's protocol options for each role, converted for the driver's protocol; and every
    problem with them (the file's, and its steps' own, which the runner converts per step). A
    check file is data: an option that runs a program (or unpickles freely) is a problem unless
    --allow-exec."""
    from fieldctl.cli.framework.protocol_options import parse_given
    from fieldctl.protocols.core.errors import UsageError

    options: dict[str, dict[str, Any]] = {}
    problems = []
    given = [(f"options.{role}", role, check_file.options.get(role, ())) for role in ROLES]
    given += [(f"step {step.number}: options", step.action, step.options) for step in check_file.steps if step.options]
    for where, role, args in given:
        try:
            parsed = parse_given(role, list(args))
            converted = parsed.options(role, drv.profile)
        except UsageError as exc:
            problems.append(f"{check_file.path}: {where}: {exc}")
            continue
        if where.startswith("options."):
            options[role] = converted
        if not allow_exec:
            problems += [
                f"{check_file.path}: {where}: {risk}; pass check --allow-exec to let check files do that"
                for risk in parsed.risks(role, drv.profile)
            ]
    return options, problems


async def _run_file(
    file: Prepared,
    overrides: ProfileOptions,
    simulate: bool,
    via: str | None,
    report: Any,
    stop: Any,
) -> None:
    """One file against its target, or against the target's simulator started here (--simulate)."""
    from fieldctl.cli.check.runner import FileRun

    check_file, name = file.check, file.name
    if not simulate:
        socket = via if via is not None else check_file.via if isinstance(check_file.via, str) else None
        own = [f"{key}={url}" for key, url in check_file.listener_endpoints.items()]
        listener = _driver(_profile(overrides, name, own)) if own else None
        await FileRun(check_file, file.profile, file.driver, file.options, socket, report, stop, listener).run()
        return
    from fieldctl.cli.framework.private_folder import private_folder
    from fieldctl.cli.roles.private_run import CONTROL, private_simulator
    from fieldctl.protocols.runtime.endpoints import private_url

    sets = ["heartbeat.interval_s=1", *file.profile.setting("demo.set", [])]  # as `demo` runs it: lively
    with private_folder("fieldctl-check-") as folder:
        # the target's and the line's overrides too: a broker's endpoint is where both sides meet
        async with private_simulator(
            _profile(overrides, name, (), sets),
            folder,
            options=file.options["simulate"],
            control=os.path.join(folder, "control.sock"),
        ) as bound:
            endpoints = [f"{key}={url}" for key, url in bound.items() if key != CONTROL]
            prof = _profile(overrides, name, endpoints, sets)
            drv = _driver(prof)
            own = [
                f"{key}={private_url(f'listener-{key}', url, folder)}"
                for key, url in check_file.listener_endpoints.items()
            ]
            listener = _driver(_profile(overrides, name, [*endpoints, *own], sets)) if own else None
            await FileRun(check_file, prof, drv, file.options, bound[CONTROL], report, stop, listener).run()
