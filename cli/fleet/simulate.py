"""`fieldctl simulate PROFILE --devices N`: the output side of a simulated fleet. Every NDJSON line
(stdout and --record) names the device it came from in a `target` field; the devices' own `bound`
announcements give way to one summary line, written once all are bound and the fleet file is."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fieldctl.cli.framework.common import ProfileOptions
    from fieldctl.cli.views.stream import Sink
    from fieldctl.protocols.core.message import Message
    from fieldctl.protocols.sdk.contract import Emit, Notify


class _TaggedView:
    """The live table (or the background announcer) with the device's name before a message's id:
    the sink is synchronous, so the target it is showing a message of (Sink.tagged) is this one's.
    Link lines pass as they are, so the header keeps one row per endpoint."""

    def __init__(self, view: Any, sink: Sink) -> None:
        self.view, self.sink = view, sink

    def add(self, msg: Message) -> None:
        target = self.sink.target
        if target and not msg.is_link:
            msg = replace(msg, id=target if msg.id is None else f"{target} {msg.id}")
        self.view.add(msg)


def notify_for(target: str) -> Notify:
    from fieldctl.cli.framework.common import warn

    return lambda text: warn(f"{target}: {text}")


def run_fleet(
    profile: ProfileOptions,
    sink: Sink,
    *,
    devices: int,
    fleet_file: str | None,
    group: str | None,
    scenario: list[Any] | None,
    timeline: bool,
    options: dict[str, Any],
    duration: float | None,
    base_port: int | None = None,
) -> Callable[[str], Any]:
    """The coroutine function that runs the fleet in `folder` until the stream ends."""
    from fieldctl.cli.views.stream import run_stream
    from fieldctl.profiles.targets import check_name, write_fleet
    from fieldctl.protocols.core.errors import UsageError
    from fieldctl.protocols.core.message import link
    from fieldctl.protocols.runtime.open_files import per_run, reserve
    from fieldctl.protocols.runtime.registry import driver_class
    from fieldctl.protocols.runtime.simulated_fleet import SimulatedFleet, client_sets

    if group is not None:
        check_name(group)
    base = profile.load()
    reserve(devices * per_run(driver_class(base.protocol), "simulate"), f"{devices} simulated devices")
    if sink.view is not None:
        sink.view = _TaggedView(sink.view, sink)

    def emit_for(target: str) -> Emit:
        """Each device's messages reach the sink under its name."""
        return functools.partial(sink.tagged, target)

    async def main(folder: str) -> None:
        fleet = SimulatedFleet(base, devices, folder, notify_for, base_port)

        def on_bound() -> None:
            if fleet_file is not None:
                try:
                    write_fleet(fleet_file, fleet.targets(client_sets(profile.sets), group))
                except OSError as exc:
                    raise UsageError(f"--write-fleet {fleet_file}: cannot write: {exc.strerror}") from None
            sink(link(base.name, "fleet", "bound", {"devices": devices, "fleet": fleet_file}))

        work = fleet.run(emit_for, scenario=scenario, timeline=timeline, options=options, on_bound=on_bound)
        await run_stream(work, sink, duration=duration)

    return main
