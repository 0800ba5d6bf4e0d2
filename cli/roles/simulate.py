"""`fieldctl simulate PROFILE`: play the other side (the device, daemon or platform)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from fieldctl.cli.framework.bounded import RUN_SECONDS
from fieldctl.cli.framework.common import FormatOpt, JsonOpt, LinesOpt, ProfileOptions, with_profile
from fieldctl.cli.roles.fault_options import FaultOpt, FaultsFileOpt, SeedOpt, faults_from

if TYPE_CHECKING:
    from fieldctl.cli.views.stream import Sink
    from fieldctl.profiles import Profile
    from fieldctl.protocols.core.message import Message
    from fieldctl.protocols.sdk.contract import Emit
    from fieldctl.protocols.sdk.faults import Faults


@with_profile
def simulate(
    profile: ProfileOptions,
    scenario: Annotated[
        str | None,
        typer.Option(
            "--scenario",
            metavar="FILE",
            help="NDJSON timeline to play instead of the built-in one ('-' for stdin); ts gives the pacing.",
        ),
    ] = None,
    no_timeline: Annotated[
        bool, typer.Option("--no-timeline", help="Only heartbeats and answers, no built-in events.")
    ] = False,
    duration: Annotated[
        float | None, typer.Option("--duration", parser=RUN_SECONDS, metavar="S", help="Exit 0 after S seconds.")
    ] = None,
    record: Annotated[
        str | None, typer.Option("--record", metavar="FILE", help="Append all traffic to FILE as NDJSON.")
    ] = None,
    control: Annotated[
        str | None,
        typer.Option(
            "--control",
            metavar="SOCKET",
            help="Listen for publish/command --via SOCKET from other shells (a 0600 Unix socket).",
        ),
    ] = None,
    fault: FaultOpt = None,
    faults_file: FaultsFileOpt = None,
    seed: SeedOpt = None,
    json_: JsonOpt = False,
    lines: LinesOpt = False,
    format_: FormatOpt = None,
    devices: Annotated[
        int | None,
        typer.Option(
            "--devices",
            min=1,
            metavar="N",
            help="Run N devices in this process, each on its own free loopback ports or private socket paths "
            "(names sim-001 ...; NDJSON lines gain a target field).",
        ),
    ] = None,
    write_fleet: Annotated[
        str | None,
        typer.Option(
            "--write-fleet",
            metavar="FILE",
            help="With --devices: write the fleet file that reaches them, once all are bound.",
        ),
    ] = None,
    group: Annotated[
        str | None,
        typer.Option(
            "--group", metavar="LABEL", help="With --devices: the group label of every target in the fleet file."
        ),
    ] = None,
    base_port: Annotated[
        int | None,
        typer.Option(
            "--base-port",
            min=1,
            max=65535,
            metavar="P",
            help="With --devices: consecutive loopback ports from P (checked free first) "
            "instead of the system's choice (a broker's endpoint, which every device shares, takes none).",
        ),
    ] = None,
) -> None:
    """Run a simulator on the profile's endpoints (127.0.0.1 unless --host says otherwise)."""
    import asyncio
    import functools

    from fieldctl.cli.framework import common
    from fieldctl.cli.views.lines import choose_output
    from fieldctl.cli.views.stream import run_stream, shown
    from fieldctl.protocols.core.errors import UsageError
    from fieldctl.protocols.transport import together

    output = choose_output(json_, lines, format_)
    prof = profile.load()
    drv = common.driver(prof)
    shows = functools.partial(
        shown, prof, drv, "simulate", as_json=output.mode == "json", record=record, simulator=True, output=output
    )
    options = profile.options("simulate", drv)
    messages = common.read_messages(scenario, prof.name) if scenario is not None else None
    faults = faults_from(fault, faults_file, seed)
    if devices is None:
        if write_fleet is not None or group is not None or base_port is not None:
            raise UsageError("--write-fleet, --group and --base-port need --devices N")
    else:
        if control is not None or faults.active:
            raise UsageError(
                f"{'--control' if control is not None else '--fault'} serves one device; not with --devices"
            )
        from fieldctl.cli.roles.private_run import broker_overrides_only

        broker_overrides_only(profile, prof, "--devices")
        from fieldctl.cli.fleet.simulate import run_fleet
        from fieldctl.cli.framework.private_folder import private_folder

        with shows() as sink:
            fleet = run_fleet(
                profile,
                sink,
                devices=devices,
                fleet_file=write_fleet,
                group=group,
                base_port=base_port,
                scenario=messages,
                timeline=not no_timeline,
                options=options,
                duration=duration,
            )
            with private_folder("fieldctl-fleet-") as folder:
                asyncio.run(fleet(folder))
        return

    async def main(sink: Sink) -> None:
        if faults.active:
            timeline = not no_timeline
            await run_stream(faulted(prof, sink, options, messages, timeline, control, faults), sink, duration=duration)
            return
        simulation = drv.simulator(drv.context(sink, options), scenario=messages, timeline=not no_timeline)
        work = [simulation.run()]
        if control is not None:
            from fieldctl.protocols.runtime.control import ControlServer

            work.append(ControlServer(control, simulation.control, sink, prof.name).run())
        await run_stream(together(*work), sink, duration=duration)

    with shows() as sink:
        asyncio.run(main(sink))


async def faulted(
    profile: Profile,
    sink: Sink,
    options: dict[str, Any],
    scenario: list[Message] | None,
    timeline: bool,
    control: str | None,
    faults: Faults,
) -> None:
    """`simulate --fault`: the simulator on private addresses, and the driver's proxy role with
    the fault rules on the profile's own, so a client sees a flaky device. A protocol option the
    proxy role takes too (an address of its own) is the proxy's; the others are the simulator's.
    The feed is the simulator's, and every frame a rule touched, as the simulator's side reads it."""
    from fieldctl.cli.framework import common
    from fieldctl.cli.framework.private_folder import private_folder
    from fieldctl.cli.roles.private_run import CONTROL, private_simulator
    from fieldctl.protocols.runtime.registry import declared_options

    fronts = {spec.name for spec in declared_options(profile.protocol).get("proxy", {}).values()}
    behind = {name: value for name, value in options.items() if name not in fronts}
    with private_folder("fieldctl-faults-") as folder:
        async with private_simulator(
            profile, folder, options=behind, control=control, emit=sink, scenario=scenario, timeline=timeline
        ) as bound:
            front = common.driver(profile)
            upstream = {name: url for name, url in bound.items() if name != CONTROL}
            own = {name: value for name, value in options.items() if name in fronts}
            await front.proxy(front.context(_touched(sink), own), upstream=upstream, faults=faults)


#: The proxy's link states a `simulate --fault` feed shows: its own addresses and its clients.
_FRONT_STATES = frozenset({"bound", "peer-connected", "disconnected"})


def _touched(sink: Emit) -> Emit:
    """The proxy's feed narrowed to what the simulator's does not show: its bound addresses, its
    clients coming and going, and each frame a fault rule touched, its direction the simulator's."""
    from fieldctl.protocols.core.message import IN, OUT

    def emit(msg: Message) -> None:
        if msg.is_link:
            if msg.kind in _FRONT_STATES or msg.fault is not None:
                sink(msg)
        elif msg.fault is not None:
            msg.direction = OUT if msg.direction == IN else IN
            sink(msg)

    return emit
