"""The fleet's bookkeeping (cli/fleet/state.py) and the board's drawing of it, in-process: what a
target counts, when it is up or stale, that its memory stays fixed whatever a peer invents, and
that nothing a peer names reaches the terminal unescaped."""

from __future__ import annotations

import io

from rich.console import Console

from fieldctl.cli.fleet.board import FleetBoard
from fieldctl.cli.fleet.follower import FleetFollower, Member
from fieldctl.cli.fleet.state import KINDS_KEPT, OTHER, RATE_WINDOW_S, Rate
from fieldctl.profiles import load_profile
from fieldctl.protocols.core.message import Message, link
from fieldctl.protocols.runtime.registry import driver_for
from tests.helpers.waiting import until


def fleet_of(*names: str) -> FleetFollower:
    profile = load_profile("autotrainer", sets=["heartbeat.stale_after_s=2"])
    fleet = FleetFollower([], quiet=True)
    fleet.adopt([Member(name, profile, driver_for(profile, fleet.notifier(name))) for name in names])
    return fleet


def event(kind: str, channel: str = "event", error: str | None = None) -> Message:
    return Message("autotrainer", "events", "in", channel, kind, {"type": kind}, error=error)


def test_counts_malformed_and_the_last_event() -> None:
    fleet = fleet_of("rig-1", "rig-2")
    state = fleet.state
    for kind in ("trialStarted", "trialStarted", "trialEnded"):
        state.add("rig-1", event(kind))
    state.add("rig-1", event("?", error="not JSON"))
    rig = state.targets["rig-1"]
    assert rig.counts == {("event", "trialStarted"): 2, ("event", "trialEnded"): 1}
    assert rig.malformed == 1 and rig.last_event[:2] == ("event", "trialEnded")
    assert state.targets["rig-2"].counts == {} and state.targets["rig-2"].last_event is None  # each its own


def test_up_down_and_stale() -> None:
    state = fleet_of("rig-1").state
    rig = state.targets["rig-1"]
    assert not rig.up and rig.link == "connecting"
    state.add("rig-1", link("autotrainer", "events", "connected"))
    state.add("rig-1", link("autotrainer", "events", "ready"))
    assert rig.up and rig.link == "ready"
    state.add("rig-1", link("autotrainer", "heartbeat", "stale"))  # the watch's: not a link state
    assert rig.up and rig.link == "ready"
    state.add("rig-1", link("autotrainer", "events", "retrying"))
    assert not rig.up and rig.link == "retrying" and rig.errors == 1  # a lost link is an error
    state.down("rig-1", "cannot connect")  # the listen it ends: the same error, counted once
    assert not rig.up and rig.link == "down" and rig.errors == 1 and rig.last_error == "cannot connect"
    state.retrying("rig-1")
    state.add("rig-1", Message("autotrainer", "events", "in", "heartbeat", "heartbeat", {}))
    assert rig.up  # heard from again
    now = rig.last_beat
    assert not rig.stale(now + 1.9) and rig.stale(now + 2.1)
    assert rig.heartbeat_age(now + 1) == 1


def test_behind_a_broker_the_device_is_up_only_while_present() -> None:
    """A driver with presence: its connection to the broker is not the device; `present` is,
    until `absent` or a lost link; the exporter's fieldctl_up says the same. Other targets keep
    today's rule."""
    from fieldctl.cli.fleet.metrics import exposition

    profile = load_profile("autotrainer")
    fleet = FleetFollower([], quiet=True)
    plain = driver_for(profile, fleet.notifier("rig-1"))
    brokered = type("Brokered", (type(plain),), {"presence": True})(profile, fleet.notifier("rig-2"))
    fleet.adopt([Member("rig-1", profile, plain), Member("rig-2", profile, brokered)])
    state = fleet.state
    rig, behind = state.targets["rig-1"], state.targets["rig-2"]

    def up_metric(name: str) -> str:
        lines = exposition(state).decode().splitlines()
        return next(line for line in lines if line.startswith(f'fieldctl_up{{target="{name}"')).rsplit(" ", 1)[1]

    for target in ("rig-1", "rig-2"):
        state.add(target, link("autotrainer", "events", "connected"))
        state.add(target, event("trialStarted"))
    assert rig.up and not behind.up and up_metric("rig-2") == "0"
    state.add("rig-2", link("autotrainer", "events", "present"))
    assert behind.up and behind.link == "present" and up_metric("rig-2") == "1"
    state.add("rig-2", link("autotrainer", "events", "absent", {"reason": "last will"}))
    assert not behind.up and behind.link == "absent" and behind.outage == "absent" and behind.errors == 1
    state.add("rig-2", link("autotrainer", "events", "present"))
    assert behind.up
    state.add("rig-2", link("autotrainer", "events", "disconnected"))
    state.add("rig-2", link("autotrainer", "events", "connected"))
    assert not behind.up, "a lost broker link forgets the device's presence"
    state.add("rig-2", link("autotrainer", "events", "present"))
    state.down("rig-2", "listen ended")
    state.retrying("rig-2")
    state.add("rig-2", link("autotrainer", "events", "connected"))
    assert not behind.up and up_metric("rig-2") == "0"


def test_a_profile_that_cannot_listen_is_up_when_its_probe_says_so() -> None:
    state = fleet_of("rig-1").state
    state.down("rig-1", "listen is not supported", "unsupported")
    assert not state.targets["rig-1"].up
    state.probed("rig-1", 1, {})
    assert state.targets["rig-1"].up
    state.probed("rig-1", 2, {})
    assert not state.targets["rig-1"].up


def test_memory_stays_fixed_whatever_a_peer_invents() -> None:
    state = fleet_of("rig-1").state
    for number in range(10_000):
        state.add("rig-1", event(f"kind-{number}-" + "x" * 500, channel=f"channel-{number % 300}"))
    counts = state.targets["rig-1"].counts
    assert len(counts) <= 2 * KINDS_KEPT + 1
    assert sum(counts.values()) == 10_000
    assert all(len(channel) <= 64 and len(kind) <= 64 for channel, kind in counts)
    assert (OTHER, OTHER) in counts


def test_rate_counts_whole_seconds_of_a_fixed_window() -> None:
    rate = Rate()
    for second in range(100, 110):
        for _ in range(9):
            rate.add(second + 0.5)
    assert rate.per_second(110.2) == 9  # the 9 complete seconds 101..109, 9 a second
    assert rate.per_second(109.5) == 9  # 100..108; 109 is still filling
    assert rate.per_second(112.5) == 7  # 103..111, of which 110 and 111 were silent
    assert rate.per_second(100 + RATE_WINDOW_S * 3) == 0  # long silence: nothing left
    assert len(rate.counts) == RATE_WINDOW_S


def test_the_board_escapes_what_peers_name() -> None:
    fleet = fleet_of("rig-1")
    console = Console(file=io.StringIO(), width=200, height=40, color_system=None, force_terminal=False)
    board = FleetBoard(fleet, "fieldctl listen --fleet f.toml", console)
    hostile = event("\x1b]0;pwned\x07[bold]x[/bold]\x9b2J", channel="event\x1b[2J")
    fleet.state.add("rig-1", hostile)
    board.add("rig-1", hostile)
    console.print(board)
    drawn = console.file.getvalue()
    assert "\x1b" not in drawn and "\x07" not in drawn and "\x9b" not in drawn
    assert "\\x1b]0;pwned\\x07[bold]x[/bold]" in drawn  # shown, as text, markup not read


def test_a_target_retried_again_and_again_holds_no_more_tasks(tmp_path) -> None:
    """The plugin's profile (a refused TCP connection fails at once): every attempt's heartbeat
    watch ends with it, so a target down for hours costs what it cost after a minute."""
    import asyncio

    from fieldctl.profiles.targets import Target, write_fleet
    from tests.helpers.ports import free_port

    write_fleet(tmp_path / "f.toml", [Target("hub-1", "linejson", endpoints={"hub": f"tcp://127.0.0.1:{free_port()}"})])
    fleet = FleetFollower.load(tmp_path / "f.toml", quiet=True)

    async def run() -> tuple[int, int]:
        follow = asyncio.ensure_future(fleet.follow(lambda target, msg: None))
        await until(lambda: fleet.state.targets["hub-1"].errors >= 2, 10)
        early = len(asyncio.all_tasks())
        await until(lambda: fleet.state.targets["hub-1"].errors >= 4, 20)  # backoff 0.5, 1, 2 s
        late = len(asyncio.all_tasks())
        follow.cancel()
        await asyncio.gather(follow, return_exceptions=True)
        return early, late

    early, late = asyncio.run(asyncio.wait_for(run(), 30))
    assert late <= early
    assert not fleet.state.targets["hub-1"].up and fleet.state.targets["hub-1"].link == "down"


def test_a_lost_link_says_why_and_since_when_and_counts_as_an_error() -> None:
    state = fleet_of("rig-1").state
    rig = state.targets["rig-1"]
    state.add("rig-1", link("autotrainer", "events", "ready"))
    lost = link("autotrainer", "events", "disconnected")
    state.add("rig-1", lost)
    state.add("rig-1", link("autotrainer", "events", "retrying"))  # the same outage: its first word stays
    assert not rig.up and rig.outage == "disconnected" and rig.down_since == lost.ts and rig.errors == 1
    state.add("rig-1", link("autotrainer", "events", "ready"))
    assert rig.up
    state.add("rig-1", link("autotrainer", "events", "retrying", {"error": "no route"}))
    assert (rig.outage, rig.outage_detail) == ("retrying", "no route") and rig.errors == 2
    state.down("rig-1", "cannot connect events: connection refused", outage="refused")
    assert rig.outage == "refused" and rig.errors == 2  # the listen the lost link ended: not counted again
    state.down("rig-1", "cannot connect events: connection refused", outage="refused")
    assert rig.errors == 3  # each retry that fails


def board_lines(fleet: FleetFollower, width: int) -> list[str]:
    console = Console(file=io.StringIO(), width=width, height=30, color_system=None, force_terminal=False)
    console.print(FleetBoard(fleet, "fieldctl listen --fleet f.toml", console))
    return console.file.getvalue().splitlines()


def test_names_and_status_stay_whole_and_a_long_reason_gives_way_first() -> None:
    names = ("rig-with-a-long-name-1", "rig-2", "rig-3")
    fleet = fleet_of(*names)
    for name in names:
        fleet.state.add(name, link("autotrainer", "events", "ready"))
        fleet.state.add(name, event("trialStarted"))
    fleet.state.down(
        "rig-3", "cannot connect events to tcp://127.0.0.1:1: " + "connection refused " * 20, outage="refused"
    )
    for width in (160, 80, 60):
        lines = board_lines(fleet, width)
        assert all(len(line) <= width for line in lines), width
        rows = {line.split()[0]: line for line in lines if line.split() and line.split()[0] in names}
        assert set(rows) == set(names), (width, lines)
        assert rows["rig-3"].split()[1] == "down" and "✗ refused since" in rows["rig-3"], (width, rows)
        assert all(rows[name].split()[1] == "ready" for name in names[:2]), (width, rows)
        # the reason is cut, not the other rows: their last event shows, as wide as the reason's
        assert all("event/trialStarted" in rows[name] for name in names[:2]), (width, rows)
        assert list(rows) == ["rig-3", "rig-2", "rig-with-a-long-name-1"]  # problems first, then by name
    assert "profile" in board_lines(fleet, 160)[2] and "profile" not in board_lines(fleet, 80)[2]
