"""`fieldctl simulate PROFILE --devices N`: the output side of a simulated fleet. Every NDJSON line
(stdout and --record) names the device it came from in a `target` field; the devices' own `bound`
announcements give way to one summary line, written once all are bound and the fleet file is.
On a terminal the panel above the table sums up the fleet (FleetSummary), not one of its devices."""

from __future__ import annotations

import functools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.table import Table
    from rich.text import Text

    from fieldctl.cli.framework.common import ProfileOptions
    from fieldctl.cli.views.live_view import LiveView
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


#: Link states that mean a client is connected to a device's endpoint.
CONNECTED = frozenset({"peer-connected", "ready", "connected"})
#: Redraws the messages-per-second figure is averaged over (rich redraws 4 times a second).
RATE_FRAMES = 12


class FleetSummary(_TaggedView):
    """The live table of a simulated fleet: rows name their device, and the panel above says how
    the fleet is doing (devices up, messages per second, devices with a client, errors). The
    single-device panel would show whichever device's heartbeat and links came last, as if it
    were all of them. Ingest only counts (`add`); the panel is built on rich's thread from those
    counts."""

    def __init__(self, view: LiveView, sink: Sink, devices: int) -> None:
        super().__init__(view, sink)
        self.devices, self.spec = devices, view.profile.heartbeat
        #: a device's links with its broker say nothing of its clients
        self.brokers = view.profile.broker_endpoints
        self.beats: dict[str, float] = {}  # device -> when it last sent a heartbeat (monotonic)
        self.connected: dict[str, int] = {}  # device -> its endpoints with a client now
        self.links: dict[tuple[str, str], str] = {}  # (device, endpoint) -> its last link state
        self.peered = 0  # devices with a client on one of their endpoints
        self.bound = False
        self.failures = 0  # warnings and failed handshakes
        self.totals: deque[tuple[float, int]] = deque(maxlen=RATE_FRAMES)  # rich's thread only
        view.header = self.header

    def add(self, msg: Message) -> None:
        target = self.sink.target
        if msg.is_link:
            if target is None:
                self.bound = self.bound or msg.kind == "bound"
            elif msg.endpoint not in self.brokers:
                self._link(target, msg.endpoint, str(msg.kind))
            return
        if msg.channel == self.spec.channel and msg.direction == "out" and not msg.error and target:
            self.beats[target] = time.monotonic()
        super().add(msg)

    def _link(self, target: str, endpoint: str, state: str) -> None:
        before = self.links.get((target, endpoint))
        self.links[(target, endpoint)] = state
        self.failures += state == "handshake-failed"
        change = (state in CONNECTED) - (before in CONNECTED)
        if change:
            count = self.connected[target] = self.connected.get(target, 0) + change
            self.peered += (count == 1) if change > 0 else -(count == 0)

    def notify_for(self, target: str) -> Notify:
        """A device's warnings, shown as any fleet's, and counted among the errors."""
        shown = notify_for(target)

        def notify(text: str) -> None:
            self.failures += 1
            shown(text)

        return notify

    def header(self) -> Table:
        from rich.text import Text

        from fieldctl.cli.views import theme
        from fieldctl.cli.views.live_view import header_grid

        grid = header_grid()
        grid.add_row("devices", self._devices_text())
        stats = self.view.stats
        now, total = time.monotonic(), stats.sent + stats.received
        self.totals.append((now, total))
        since, before = self.totals[0]
        rate = (total - before) / (now - since) if now > since else 0.0
        grid.add_row("messages", f"{rate:.0f}/s  (sent {stats.sent}, received {stats.received})")
        grid.add_row("clients", f"on {self.peered} of {self.devices} devices")
        errors = stats.malformed + self.failures
        grid.add_row(
            "errors",
            Text(
                f"{errors}  (malformed {stats.malformed}, warnings {self.failures})",
                style=theme.style("error" if errors else "ok"),
            ),
        )
        return grid

    def _devices_text(self) -> Text:
        """Up: a heartbeat sent within the profile's stale_after_s (bound, for a profile without)."""
        from rich.text import Text

        from fieldctl.cli.views import theme

        if not self.bound:
            return Text(f"{self.devices} binding", style=theme.style("notice"))
        if self.spec.channel is None:
            return Text(f"{self.devices} bound", style=theme.style("ok"))
        fresh = time.monotonic() - self.spec.stale_after_s
        up = sum(seen >= fresh for seen in list(self.beats.values()))
        style = theme.style("ok" if up == self.devices else "notice" if up else "error")
        return Text(f"{up} of {self.devices} up  (a heartbeat within {self.spec.stale_after_s:g} s)", style=style)


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
    from fieldctl.cli.views.live_view import LiveView

    warnings = notify_for
    if isinstance(sink.view, LiveView):
        summary = FleetSummary(sink.view, sink, devices)
        sink.view, warnings = summary, summary.notify_for
    elif sink.view is not None:
        sink.view = _TaggedView(sink.view, sink)

    def emit_for(target: str) -> Emit:
        """Each device's messages reach the sink under its name."""
        return functools.partial(sink.tagged, target)

    async def main(folder: str) -> None:
        fleet = SimulatedFleet(base, devices, folder, warnings, base_port)

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
