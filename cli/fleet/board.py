"""The fleet board of `listen --fleet`: a row per target above the merged event feed.

Like the single-device live table (live_view.py, whose rows and escaping it reuses), rich redraws
it from its own thread at a capped rate, so ingest never waits for drawing; the feed keeps a fixed
number of rows and the target table draws only what fits, troubled targets first, so a frame
costs the same at 1,000 targets as at ten. Nothing from a wire reaches rich but as escaped Text.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from fieldctl.cli.framework.escape import cell
from fieldctl.cli.views.lines import clock
from fieldctl.cli.views.live_view import CELL_CHARS, Row
from fieldctl.cli.views.render import row_style

if TYPE_CHECKING:
    from fieldctl.cli.fleet.follower import FleetFollower
    from fieldctl.cli.fleet.state import TargetState
    from fieldctl.protocols.core.message import Message

FEED_ROWS = 200
#: A feed row over this many bytes is summarized at once and its message let go, so the feed
#: holds at most FEED_ROWS x this much of the wire.
HELD_ROW_BYTES = 64 << 10
FRAMES_PER_SECOND = 4


class FleetBoard:
    def __init__(
        self, fleet: FleetFollower, title: str, console: Console | None = None, *, show_heartbeats: bool = False
    ) -> None:
        self.fleet, self.title = fleet, title
        self.console = console or Console()
        #: Heartbeats are in each target's row; the feed shows them only when the filters ask.
        self.show_heartbeats = show_heartbeats
        self.looks: dict[str, tuple[Callable[[Message], str], Mapping[str, str], str | None]] = {
            m.name: (m.driver.summarize, m.driver.styles, m.profile.heartbeat.channel) for m in fleet.members
        }
        self.feed: deque[tuple[str, Row]] = deque(maxlen=FEED_ROWS)

    def add(self, target: str, msg: Message) -> None:
        summarize, _, beat = self.looks[target]
        if msg.channel == beat and not msg.error and not self.show_heartbeats:
            return
        row = Row.of(msg)
        if row.size > HELD_ROW_BYTES:
            row.shown_detail(summarize)
            row.msg = None
        self.feed.append((target, row))

    def _targets(self, ranked: list[tuple[TargetState, bool, bool]], room: int, now: float) -> Table:
        table = Table(expand=True, box=None, header_style="bold", pad_edge=False)
        for column in ("target", "profile", "link", "heartbeat", "last event", "msg/s", "malformed", "errors"):
            table.add_column(
                column, no_wrap=True, justify="right" if column in ("msg/s", "malformed", "errors") else "left"
            )
        shown = ranked if len(ranked) <= room else ranked[: max(1, room - 1)]
        for state, up, stale in shown:
            table.add_row(*_target_cells(state, up, stale, now))
        if len(shown) < len(ranked):
            table.add_row(Text(f"… {len(ranked) - len(shown)} more", style="dim"))
        return table

    @staticmethod
    def _summary(ranked: list[tuple[TargetState, bool, bool]], now: float) -> Text:
        up = sum(1 for _, is_up, _ in ranked if is_up)
        stale = sum(1 for _, _, is_stale in ranked if is_stale)
        rate = sum(state.rate.per_second(now) for state, _, _ in ranked)
        malformed = sum(state.malformed for state, _, _ in ranked)
        errors = sum(state.errors for state, _, _ in ranked)
        total = len(ranked)
        text = Text(f"{total} targets  ")
        text.append(f"{up} up", style="green")
        text.append("  ")
        text.append(f"{total - up} down", style="bold red" if up < total else "")
        text.append("  ")
        text.append(f"{stale} stale", style="bold red" if stale else "")
        text.append(f"  {rate:.1f} msg/s  ")
        text.append(f"malformed {malformed}  errors {errors}", style="red" if malformed or errors else "")
        return text

    def _feed(self, height: int) -> Table:
        table = Table(expand=True, box=None, header_style="bold", pad_edge=False)
        table.add_column("time", no_wrap=True, width=12)
        table.add_column("target", no_wrap=True)
        table.add_column("", width=1)
        table.add_column("channel", no_wrap=True)
        table.add_column("kind", no_wrap=True)
        table.add_column("detail", overflow="ellipsis", no_wrap=True, ratio=1)
        for target, row in list(self.feed)[-height:] if height > 0 else []:
            summarize, styles, _ = self.looks[target]
            table.add_row(
                clock(row.ts),
                cell(target),
                row.arrow,
                cell(row.channel),
                cell(row.kind),
                cell(row.shown_detail(summarize)),
                style=row_style(styles, row.channel, row.bad),
            )
        return table

    def __rich__(self) -> Group:
        now = time.monotonic()
        height = self.console.size.height
        # Each target's verdicts once a frame; troubled targets first: down, then stale, then fleet order.
        ranked = sorted(
            ((state, state.up, state.stale(now)) for state in list(self.fleet.state.targets.values())),
            key=lambda row: (row[1], not row[2]),
        )
        # The targets get up to half the screen; the feed what is left (panel, headers, summary: 7 lines).
        room = max(2, min(len(ranked), (height - 7) // 2))
        header = Panel(
            Group(self._summary(ranked, now), self._targets(ranked, room, now)),
            title=cell(self.title),
            title_align="left",
        )
        return Group(header, self._feed(height - room - 8))

    def live(self) -> Live:
        return Live(
            self, console=self.console, refresh_per_second=FRAMES_PER_SECOND, transient=False, redirect_stderr=True
        )


def _target_cells(state: TargetState, up: bool, stale: bool, now: float) -> list[Text]:
    link = cell(state.link, "green" if up else "bold red")
    age = state.heartbeat_age(now)
    if age is None:
        beat = Text("—", style="dim")
    elif stale:
        beat = Text(f"STALE {age:.0f} s", style="bold red")
    elif state.last_beat is None:
        beat = Text(f"none yet ({age:.0f} s)", style="yellow")
    else:
        beat = Text(f"{age:.1f} s", style="green")
    last = state.last_event
    if not up and state.last_error:  # why it is down says more than what it sent before
        event = cell(f"✗ {state.last_error}"[:CELL_CHARS], "red")
    elif last:
        event = cell(f"{last[0]}/{last[1]}  {clock(last[2])}"[:CELL_CHARS])
    else:
        event = Text("—", style="dim")
    return [
        cell(state.name, "" if up else "bold red"),
        cell(state.profile),
        link,
        beat,
        event,
        Text(f"{state.rate.per_second(now):.1f}"),
        Text(str(state.malformed), style="red" if state.malformed else ""),
        Text(str(state.errors), style="red" if state.errors else ""),
    ]
