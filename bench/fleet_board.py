"""The fleet board and the Prometheus exporter at 1,000 devices: what following many targets costs
over following one, and what a scrape costs.

Run: `.venv/bin/python bench/fleet_board.py [--devices N] [--messages M] [--rounds R] [--json]`
(`make bench` runs it through bench/run.py). A report, not a test: it exits 0 whatever the numbers.
Defaults (1,000 devices, 200,000 messages, 3 rounds) take well under a minute; `--quick` less.

Rows, each a ratio to a baseline measured in the same round (interleaved, see _common.py):
- board ingest: messages per second through `listen --fleet`'s own path (fleet.FleetFollower.intake: the
  FleetState, the heartbeat watch, the fleet sink with its filters, scrubbing and the board's feed)
  spread over N targets, against `listen PROFILE`'s path for one device (heartbeat watch, Sink,
  live table). Both are fed the same decoded Messages in-process: the drivers' decoding and the
  sockets are the same per message whatever the fleet, so this isolates what the fleet adds. (With
  `simulate --devices N` a run end to end over sockets becomes possible; not measured here.)
- board frame: one redraw of the board at N targets (what fits a 50-line terminal, troubled targets
  first) against one redraw of the single-device live table.
- exporter scrape: `/metrics` of N targets rendered from the FleetState (metrics.exposition), against
  prometheus_client's own labelled Gauges and Counters holding the same series (generate_latest).
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import _common
from _common import Row

if TYPE_CHECKING:  # imported where used: `run.py --help` imports this module and should stay quick
    from prometheus_client.registry import CollectorRegistry
    from rich.console import Console

    from fieldctl.cli.fleet.board import FleetBoard
    from fieldctl.cli.fleet.follower import FleetFollower
    from fieldctl.cli.fleet.state import FleetState
    from fieldctl.cli.views.live_view import LiveView
    from fieldctl.protocols.core.message import Message

ROW_INGEST = "board ingest ({devices} devices) vs one-device listen"
ROW_FRAME = "board frame ({devices} devices) vs one-device table"
ROW_SCRAPE = "exporter scrape ({devices} devices) vs prometheus_client metrics"

KINDS = [
    "trialStarted",
    "trialEnded",
    "tunnelEnter",
    "tunnelExit",
    "detectorChanged",
    "sessionStarted",
    "sessionEnded",
    "pelletConsumedCountChanged",
]
PROFILE = "autotrainer"  # the bench may name a protocol: any profile with a heartbeat channel will do


def synthetic(count: int, seed: int = 1) -> list[Message]:
    """Decoded messages as the driver emits them: events, with a heartbeat every tenth."""
    from fieldctl.protocols.core.message import Message

    rng = random.Random(seed)
    out = []
    for number in range(count):
        payload: dict[str, object]
        if number % 10 == 0:
            payload = {"identifier": "fieldctl-sim", "version": "0.12.0"}
            msg = Message(PROFILE, "events", "in", "heartbeat", "heartbeat", payload, raw=(b"\xe9\x03\x00\x00", b"{}"))
        else:
            kind = rng.choice(KINDS)
            payload = {"type": kind, "trialId": number, "sessionId": "008a05a6-c464-4159-8324-c9859b810e76"}
            msg = Message(PROFILE, "events", "in", "event", kind, payload, raw=(b"\xa1\x0f\x00\x00", b"x" * 120))
        out.append(msg)
    return out


def fleet_of(devices: int) -> FleetFollower:
    """A FleetFollower of `devices` targets of PROFILE, resolved as `FleetFollower.load` resolves a fleet file."""
    from fieldctl.cli.fleet.follower import FleetFollower, Member
    from fieldctl.profiles import load_profile
    from fieldctl.protocols.runtime.registry import driver_for

    profile = load_profile(PROFILE)
    fleet = FleetFollower([], quiet=True)
    members = [Member(f"rig-{n}", profile, driver_for(profile, fleet.notifier(f"rig-{n}"))) for n in range(devices)]
    fleet.adopt(members)
    return fleet


def quiet_console() -> Console:
    from rich.console import Console

    return Console(file=io.StringIO(), width=160, height=50, force_terminal=True, color_system="truecolor")


def board_ingest(devices: int, messages: list[Message]) -> tuple[float, FleetBoard]:
    """Messages per second through listen --fleet's path; the board, for a frame afterwards."""
    from fieldctl.cli.fleet.board import FleetBoard
    from fieldctl.cli.fleet.listen import FleetFilters, FleetSink
    from fieldctl.cli.views.stats import Stats
    from fieldctl.protocols.runtime.heartbeat import HeartbeatWatch

    fleet = fleet_of(devices)
    board = FleetBoard(fleet, "fieldctl listen --fleet bench.toml", quiet_console())
    sink = FleetSink(Stats(), out=None, board=board, filters=FleetFilters(None), count=None)
    emits = [HeartbeatWatch(m.profile, fleet.intake(m.name, sink.tagged)) for m in fleet.members]
    start = time.perf_counter()
    for number, msg in enumerate(messages):
        emits[number % devices](msg)
    return len(messages) / (time.perf_counter() - start), board


def single_ingest(messages: list[Message]) -> tuple[float, LiveView]:
    """Messages per second through listen PROFILE's path (stream.shown's Sink and live table)."""
    from fieldctl.cli.framework.common import driver
    from fieldctl.cli.views.live_view import LiveView
    from fieldctl.cli.views.stats import Stats
    from fieldctl.cli.views.stream import Filters, Sink
    from fieldctl.profiles import load_profile
    from fieldctl.protocols.runtime.heartbeat import HeartbeatWatch

    profile = load_profile(PROFILE)
    drv = driver(profile)
    stats = Stats()
    view = LiveView(profile, stats, drv.summarize, "listen", quiet_console(), styles=drv.styles)
    emit = HeartbeatWatch(profile, Sink(stats, view=view, filters=Filters(None)))
    start = time.perf_counter()
    for msg in messages:
        emit(msg)
    return len(messages) / (time.perf_counter() - start), view


def frame_ms(renderable: FleetBoard | LiveView, frames: int = 20) -> float:
    """Median milliseconds of one redraw, as rich's refresh thread does it."""
    console = renderable.console
    times = []
    for _ in range(frames):
        console.file.seek(0)
        console.file.truncate()
        start = time.perf_counter()
        console.print(renderable)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def fed_state(devices: int, per_target: int) -> FleetState:
    fleet = fleet_of(devices)
    messages = synthetic(per_target)
    for member in fleet.members:
        for msg in messages:
            fleet.state.add(member.name, msg)
        fleet.state.probed(member.name, 0, {"heartbeat_wait_seconds": 0.2, "command_rtt_seconds": 0.004})
        fleet.state.rtt(member.name, 0.004)
    return fleet.state


def scrape_ms(render: Callable[[], bytes], scrapes: int) -> float:
    """Median milliseconds of one /metrics body."""
    times = []
    for _ in range(scrapes):
        start = time.perf_counter()
        render()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def instrumented_registry(state: FleetState) -> CollectorRegistry:
    """The same series as prometheus_client's own metric objects, set as an exporter would keep them."""
    from prometheus_client import Counter, Gauge
    from prometheus_client.registry import CollectorRegistry

    registry = CollectorRegistry()
    labels = ["target", "profile"]
    gauges = {
        name: Gauge(name, name, labels, registry=registry)
        for name in (
            "fieldctl_up",
            "fieldctl_heartbeat_age_seconds",
            "fieldctl_heartbeat_stale_after_seconds",
            "fieldctl_last_command_rtt_seconds",
            "fieldctl_probe_status",
            "fieldctl_probe_rtt_seconds",
        )
    }
    counters = {
        name: Counter(name, name, labels, registry=registry) for name in ("fieldctl_malformed", "fieldctl_errors")
    }
    messages = Counter("fieldctl_messages", "messages", [*labels, "channel", "kind"], registry=registry)
    steps = Gauge("fieldctl_probe_duration_seconds", "steps", [*labels, "step"], registry=registry)
    now = time.monotonic()
    for target in state.targets.values():
        pair = (target.name, target.profile)
        probe_code, probe_steps = target.probe or (None, {})
        for name, value in (
            ("fieldctl_up", float(target.up)),
            ("fieldctl_heartbeat_age_seconds", target.heartbeat_age(now)),
            ("fieldctl_heartbeat_stale_after_seconds", target.stale_after_s),
            ("fieldctl_last_command_rtt_seconds", target.last_rtt_s),
            ("fieldctl_probe_status", probe_code),
            ("fieldctl_probe_rtt_seconds", probe_steps.get("command_rtt_seconds")),
        ):
            if value is not None:  # no value, no series: as the collector does
                gauges[name].labels(*pair).set(value)
        counters["fieldctl_malformed"].labels(*pair).inc(target.malformed)
        counters["fieldctl_errors"].labels(*pair).inc(target.errors)
        for (channel, kind), count in target.counts.items():
            messages.labels(*pair, channel, kind).inc(count)
        for step, value in probe_steps.items():
            steps.labels(*pair, step.removesuffix("_seconds")).set(value)
    return registry


def collect(args: argparse.Namespace) -> list[Row]:
    from fieldctl.cli.fleet.board import FRAMES_PER_SECOND

    devices = args.devices
    messages = synthetic(args.messages)
    print(f"fleet board: {devices} devices, {args.messages} messages per run, {args.rounds} rounds", flush=True)
    drawn: dict[str, FleetBoard | LiveView] = {}

    def ingest(which: str) -> Callable[[int], float]:
        def run(round_: int) -> float:
            rate, view = board_ingest(devices, messages) if which == "board" else single_ingest(messages)
            drawn[which] = view
            return rate

        return run

    rates = _common.interleaved(args.rounds, {"board": ingest("board"), "single": ingest("single")}, warmup=True)
    frames = _common.interleaved(
        args.rounds, {"board": lambda r: frame_ms(drawn["board"]), "single": lambda r: frame_ms(drawn["single"])}
    )
    from prometheus_client import generate_latest

    from fieldctl.cli.fleet.metrics import exposition

    state = fed_state(devices, args.per_target)
    theirs = instrumented_registry(state)
    scrapes = _common.interleaved(
        args.rounds,
        {
            "ours": lambda r: scrape_ms(lambda: exposition(state), args.scrapes),
            "theirs": lambda r: scrape_ms(lambda: generate_latest(theirs), args.scrapes),
        },
        warmup=True,
    )
    series = sum(len(t.counts) for t in state.targets.values()) + 9 * devices
    for name, values in (
        ("board ingest msgs/s", rates["board"]),
        ("single ingest msgs/s", rates["single"]),
        ("board frame ms", frames["board"]),
        ("table frame ms", frames["single"]),
        ("exporter scrape ms", scrapes["ours"]),
        ("prometheus_client scrape ms", scrapes["theirs"]),
    ):
        print(f"{name}: {', '.join(f'{v:,.2f}' for v in values)}")
    return [
        Row(
            ROW_INGEST.format(devices=devices),
            "msgs/s",
            rates["board"],
            rates["single"],
            "listen PROFILE path",
            "",
            "",
            ["in-process, decoded messages: what the fleet adds to each message, sockets aside"],
        ),
        Row(
            ROW_FRAME.format(devices=devices),
            "ms",
            frames["board"],
            frames["single"],
            "live table frame",
            "",
            "",
            [
                "the board draws what fits 50 lines; rich redraws it "
                f"{FRAMES_PER_SECOND} times a second, from its own thread"
            ],
        ),
        Row(
            ROW_SCRAPE.format(devices=devices),
            "ms",
            scrapes["ours"],
            scrapes["theirs"],
            "prometheus_client metrics",
            "",
            "",
            [f"{series:,} series; median of {args.scrapes} scrapes a round"],
        ),
    ]


SCALED: _common.Scaled = {"messages": (50_000, 200_000), "scrapes": (5, 20)}  # option: (--quick, default)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--devices", type=int, default=1000, help="targets in the fleet (default 1000)")
    _common.scaled_argument(parser, SCALED, "messages", "messages per ingest run")
    parser.add_argument(
        "--per-target", type=int, default=200, help="messages fed to each target before scraping (default 200)"
    )
    _common.scaled_argument(parser, SCALED, "scrapes", "scrapes timed per round")


def check(args: argparse.Namespace) -> None:
    if args.devices < 1 or args.messages < args.devices:
        sys.exit("--devices must be >= 1 and --messages >= --devices")


settle = _common.settler(SCALED, check)


if __name__ == "__main__":
    sys.exit(_common.standalone(__doc__, add_arguments, collect, settle))
