"""The fleet board of `listen --fleet`: a keyboard-driven screen, as k9s is, of a row per target
above the merged event feed, and each target's own feed a key away.

Rich redraws it from its own thread at a capped rate, so ingest never waits for drawing; keys
(cli/views/keys.py) arrive on the event loop's thread and only change what the next frame shows.
A frame draws the rows that fit and no more, so it costs about the same at 1,000 targets as at
ten; the feeds keep a fixed number of rows. Columns fit the width as k9s fits them
(cli/fleet/columns.py): a target's name and status never truncate, the detail (last event, or
why it is down) gives way first, then the lesser columns go. Styles say what things mean (red a
problem, yellow stale, green up) and read on light and dark backgrounds alike. Nothing from a
wire reaches rich but as escaped Text.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.cells import cell_len
from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from fieldctl.cli.fleet.columns import Column, Layout, fit, sized
from fieldctl.cli.fleet.target_filter import Matcher, TargetFilter
from fieldctl.cli.framework.escape import cell, visible
from fieldctl.cli.views.lines import clock
from fieldctl.cli.views.live_view import CELL_CHARS, Row
from fieldctl.cli.views.render import row_style

if TYPE_CHECKING:
    from fieldctl.cli.fleet.follower import FleetFollower
    from fieldctl.cli.fleet.state import TargetState
    from fieldctl.protocols.core.message import Message

FEED_ROWS = 200
#: Rows kept of the target opened with Enter (its feed, scrollable while paused).
FOCUS_ROWS = 500
#: A feed row over this many bytes is summarized at once and its message let go, so the feeds
#: hold at most (FEED_ROWS + FOCUS_ROWS) x this much of the wire.
HELD_ROW_BYTES = 64 << 10
FRAMES_PER_SECOND = 4
#: The least time between two frames, however fast keys come.
FRAME_GAP_S = 0.03
#: The detail column's least width before lesser columns are dropped.
DETAIL_MIN = 20
FEED_DETAIL_MIN = 12

#: Sort keys: key -> (name in the footer, what it sorts by). Pressing one again reverses it.
SORTS = {"s": "status", "n": "name", "l": "last heard", "r": "msg/s", "e": "errors"}
#: The help under `?`: each line fits 60 columns.
HELP = (
    ("↑ ↓  j k", "select; in a target's feed: scroll"),
    ("PgUp PgDn", "a page up or down"),
    ("Home End  g G", "first or last"),
    ("Enter", "open the selected target's feed"),
    ("Esc", "back to the board; clear the filter"),
    ("/", "filter: sim-15*  status=down  profile=a*"),
    ("s n l r e", "sort: status, name, heard, msg/s, errors"),
    ("the same again", "reverse the sort"),
    ("p", "pause the feed; again: follow it"),
    ("?", "this help"),
    ("q  Ctrl-C", "quit"),
)

#: The state of a target in a frame: 0 down (red), 1 connecting (yellow), 2 stale (yellow), 3 up.
DOWN_RANK, CONNECTING_RANK, STALE_RANK, UP_RANK = range(4)
#: Each rank's status, as the filter's status= matches it.
STATUS = ("down", "down", "stale", "up")
STATUS_STYLE = {DOWN_RANK: "bold red", CONNECTING_RANK: "yellow", STALE_RANK: "bold yellow", UP_RANK: "green"}


@dataclass
class Seen:
    """One target as one frame sees it (verdicts taken once a frame)."""

    state: TargetState
    rank: int
    age: float | None  # heartbeat age


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
        targets = fleet.state.targets.values()
        self.widths = {
            "target": max((cell_len(visible(t.name)) for t in targets), default=6),
            "profile": max((cell_len(t.profile) for t in targets), default=7),
            "group": min(24, max((len(",".join(t.groups)) for t in targets), default=0)),
        }
        #: Names in natural order (sim-9 before sim-10), computed once.
        self.natural = {t.name: _natural(t.name) for t in targets}
        #: Lower-cased fields that do not change, for the filter.
        self.fixed = {
            t.name: {
                "target": (t.name.lower(),),
                "group": tuple(g.lower() for g in t.groups),
                "profile": (t.profile.lower(),),
            }
            for t in targets
        }
        # What the keys change (the loop's thread) and the frames read (rich's thread).
        self.view = "board"  # or "target" (a target's feed, Enter), "help" (?)
        self.sort, self.reverse = "s", False
        self.filter = TargetFilter.parse("")
        self.editing: str | None = None  # the filter being typed after `/`
        self.selected: str | None = None
        self.top = 0  # the first target row shown
        self.order: list[str] = []  # the last frame's targets, in order: what the keys move over
        self.order_by = ("", self.sort, self.reverse)  # the filter and sort they are in
        self.page = 10  # target rows the last frame had room for
        self.paused: list[tuple[str, Row]] | None = None  # the feed as it was when paused
        self.back = 0  # rows scrolled back from the newest while paused
        self.focus: str | None = None
        self.focus_rows: deque[Row] = deque(maxlen=FOCUS_ROWS)
        self.on_quit: Callable[[], None] = lambda: None
        self._wake = threading.Event()
        self._matching: Matcher | None = None

    # ingest (the loop's thread): cheap, no drawing

    def add(self, target: str, msg: Message) -> None:
        summarize, _, beat = self.looks[target]
        heartbeat = msg.channel == beat and not msg.error
        focused = target == self.focus
        if heartbeat and not self.show_heartbeats and not focused:
            return
        row = Row.of(msg)
        if row.size > HELD_ROW_BYTES:
            row.shown_detail(summarize)
            row.msg = None
        if focused:
            rows = self.focus_rows
            if heartbeat and rows and rows[-1].channel == msg.channel:
                rows.pop()  # one heartbeat row is enough: the header shows its age
            rows.append(row)
            if heartbeat and not self.show_heartbeats:
                return
        self.feed.append((target, row))

    # keys (the loop's thread)

    def key(self, key: str) -> None:
        """One key typed; the screen shows what it did at once."""
        if self.editing is not None:
            self._edit(key)
        elif key == "q":
            self.on_quit()
        elif self.view == "help":
            self.view = "target" if self.focus is not None else "board"
        elif key == "?":
            self.view = "help"
        elif key == "p":
            self._pause(self.paused is None)
        elif self.view == "target":
            self._target_key(key)
        else:
            self._board_key(key)
        self.refresh()

    def _board_key(self, key: str) -> None:
        moves = {"up": -1, "k": -1, "down": 1, "j": 1, "pageup": -self.page, "pagedown": self.page}
        if key in moves:
            self._select(self._index() + moves[key])
        elif key in ("home", "g"):
            self._select(0)
        elif key in ("end", "G"):
            self._select(len(self._shown()) - 1)
        elif key == "enter" and self._index() >= 0 and self.selected is not None:
            self._open(self.selected)
        elif key == "/":
            self.editing = self.filter.text
        elif key == "escape":
            self.filter = TargetFilter.parse("")
        elif key.lower() in SORTS:
            key = key.lower()
            self.reverse = not self.reverse if key == self.sort else False
            self.sort = key
            self.top = 0

    def _target_key(self, key: str) -> None:
        if key == "escape":
            self.view, self.focus = "board", None
            self.focus_rows = deque(maxlen=FOCUS_ROWS)
            self._pause(False)
            return
        moves = {"up": 1, "k": 1, "down": -1, "j": -1, "pageup": self.page, "pagedown": -self.page}
        if key in moves or key in ("home", "g", "end", "G"):
            if self.paused is None:
                self._pause(True)  # scrolling holds the feed still
            rows = len(self.paused or ())
            back = {"home": rows, "g": rows, "end": 0, "G": 0}.get(key, self.back + moves.get(key, 0))
            self.back = max(0, min(back, rows - 1))

    def _edit(self, key: str) -> None:
        text = self.editing or ""
        if key == "enter":
            self.editing = None
        elif key == "escape":
            self.editing, text = None, ""
        elif key == "backspace":
            text = text[:-1]
        elif key == "ctrl-u":
            text = ""
        elif len(key) == 1 and key.isprintable():
            text += key
        if self.editing is not None:
            self.editing = text
        self.filter = TargetFilter.parse(text)
        self.top = 0

    def _shown(self) -> list[str]:
        """The targets in the order shown, also when a key changed the filter or sort since the last frame."""
        if self.order_by != (self.filter.text, self.sort, self.reverse):
            self._order(self._seen(time.monotonic())[1])
        return self.order

    def _index(self) -> int:
        """Where the selected target is in the order shown; -1 when it is not shown."""
        try:
            return self._shown().index(self.selected) if self.selected is not None else -1
        except ValueError:
            return -1

    def _order(self, seen: list[Seen]) -> None:
        self.order = [s.state.name for s in seen]
        self.order_by = (self.filter.text, self.sort, self.reverse)

    def _select(self, index: int) -> None:
        order = self._shown()
        if order:
            self.selected = order[max(0, min(index, len(order) - 1))]

    def _open(self, name: str) -> None:
        self.focus_rows = deque((row for target, row in self.feed if target == name), maxlen=FOCUS_ROWS)
        self.focus, self.view = name, "target"
        self._pause(False)

    def _pause(self, on: bool) -> None:
        if not on:
            self.paused, self.back = None, 0
        elif self.focus is not None:
            self.paused = [(self.focus, row) for row in self.focus_rows]
        else:
            self.paused = list(self.feed)

    def refresh(self) -> None:
        """A frame soon, from the drawing thread: a key shows at once, and never draws on the loop."""
        self._wake.set()

    # frames (rich's thread)

    def __rich__(self) -> Group:
        width, height = self.console.size
        height = max(6, height - 1)  # rich's live area keeps its last line for the cursor
        if self.view == "help":
            body = self._help()
        elif self.view == "target" and self.focus is not None:
            body = self._target_view(self.focus, width, height - 1)
        else:
            body = self._board(width, height - 1)
        return Group(*body[: height - 1], self._footer())

    def _seen(self, now: float) -> tuple[list[Seen], list[Seen]]:
        """Every target, and those the filter lets through ranked as the sort says."""
        everyone = [verdict(state, now) for state in list(self.fleet.state.targets.values())]
        natural = self.natural
        if self.filter:
            matches = self._matcher()
            shown = [
                s for s in everyone if matches(s.state.name, {"link": s.state.link.lower(), "status": STATUS[s.rank]})
            ]
        else:
            shown = list(everyone)
        by: Callable[[Seen], tuple[object, ...]] = {
            "s": lambda s: (s.rank, natural[s.state.name]),
            "n": lambda s: (natural[s.state.name],),
            "l": lambda s: (s.state.last_event[2] if s.state.last_event else 0.0, natural[s.state.name]),
            "r": lambda s: (-s.state.rate.per_second(now), natural[s.state.name]),
            "e": lambda s: (-(s.state.errors + s.state.malformed), natural[s.state.name]),
        }[self.sort]
        shown.sort(key=by, reverse=self.reverse)
        return everyone, shown

    def _matcher(self) -> Matcher:
        """The filter, its fixed fields matched once (either thread may build it: both get the same)."""
        matcher = self._matching
        if matcher is None or matcher.wanted is not self.filter:
            matcher = self._matching = self.filter.matcher(self.fixed)
        return matcher

    def _board(self, width: int, height: int) -> list[Text]:
        now, wall = time.monotonic(), time.time()
        everyone, seen = self._seen(now)
        filtered = f"  filter {self.filter.text}: {len(seen)} of {len(everyone)}" if self.filter else ""
        lines = [self._title(width, filtered)]
        lines.append(self._summary(everyone, now))
        layout = self._target_layout(seen, width)
        # The targets get up to two thirds of the screen and the feed what is left, at least 3 rows.
        room = max(1, min(len(seen), (height - 3) * 2 // 3 if self.feed else height - 3))
        self.page = room
        self._order(seen)
        index = self._index()
        if index < 0 and seen:
            index, self.selected = 0, seen[0].state.name
        self.top = max(0, min(self.top, index, len(seen) - room))
        if index >= self.top + room:
            self.top = index - room + 1
        lines.append(layout.header("event / reason"))
        if not seen:
            lines.append(Text(f"no target matches {self.filter.text!r}: Esc clears the filter", style="bold red"))
        for number, item in enumerate(seen[self.top : self.top + room], self.top):
            lines.append(self._target_line(item, layout, now, wall, selected=number == index))
        rest = height - len(lines) - 1
        if rest > 0:
            lines.extend(self._feed_lines(self.paused if self.paused is not None else self.feed, width, rest, True))
        return lines

    def _target_layout(self, seen: list[Seen], width: int) -> Layout:
        status = max([6, *(len(s.state.link) for s in seen[self.top : self.top + 200])])
        columns = [
            Column("target", max(6, self.widths["target"])),
            Column("status", max(status, 7)),
            Column("profile", max(7, self.widths["profile"]), drop=1),
        ]
        if self.widths["group"]:
            columns.append(Column("group", max(5, self.widths["group"]), drop=0))
        columns += [
            Column("heartbeat", 13, drop=3),
            Column("msg/s", 6, drop=4, right=True),
            Column("errors", 6, drop=5, right=True),
            Column("malformed", 9, drop=2, right=True),
        ]
        return fit(columns, width, DETAIL_MIN)

    def _target_line(self, seen: Seen, layout: Layout, now: float, wall: float, *, selected: bool) -> Text:
        state, rank = seen.state, seen.rank
        style = STATUS_STYLE[rank]
        name_style = style if rank != UP_RANK else ""
        by_header = {
            "target": cell(state.name, name_style),
            "status": cell(state.link if rank != STALE_RANK else "stale", style),
            "profile": cell(state.profile),
            "group": cell(",".join(state.groups)),
            "heartbeat": _beat(seen, state),
            "msg/s": Text(f"{state.rate.per_second(now):.1f}"),
            "errors": Text(str(state.errors), style="red" if state.errors else ""),
            "malformed": Text(str(state.malformed), style="red" if state.malformed else ""),
        }
        cells = [by_header[column.header] for column in layout.columns]
        return layout.line(cells, _detail(seen, wall), style="reverse" if selected else "")

    def _title(self, width: int, after: str) -> Text:
        """The title, cut to leave room for `after` (what the filter shows, the target open)."""
        text = sized(cell(self.title, "bold"), max(1, width - cell_len(after))) if after else cell(self.title, "bold")
        if after:
            text.rstrip()
            text.append(after, style="bold")
        text.no_wrap, text.overflow = True, "ellipsis"
        return text

    def _summary(self, everyone: list[Seen], now: float) -> Text:
        total = len(everyone)
        up = sum(1 for s in everyone if s.rank >= STALE_RANK)
        stale = sum(1 for s in everyone if s.rank == STALE_RANK or (s.age or 0) > s.state.stale_after_s)
        rate = sum(s.state.rate.per_second(now) for s in everyone)
        malformed = sum(s.state.malformed for s in everyone)
        errors = sum(s.state.errors for s in everyone)
        text = Text(f"{total} targets  ", no_wrap=True, overflow="ellipsis")
        text.append(f"{up} up", style="green" if up else "")
        text.append("  ")
        text.append(f"{total - up} down", style="bold red" if up < total else "")
        text.append("  ")
        text.append(f"{stale} stale", style="bold yellow" if stale else "")
        text.append("  ")
        text.append(f"errors {errors}", style="red" if errors else "")
        text.append("  ")
        text.append(f"malformed {malformed}", style="red" if malformed else "")
        text.append(f"  {rate:.1f} msg/s")
        return text

    def _feed_lines(
        self, rows: deque[tuple[str, Row]] | list[tuple[str, Row]], width: int, height: int, board: bool
    ) -> list[Text]:
        """The newest rows that fit `height` (header included), or while paused the page scrolled to."""
        if height < 2:
            return []
        count = height - 1
        end = len(rows) - self.back if self.paused is not None else len(rows)
        window = list(rows)[max(0, end - count) : end] if end > 0 else []
        channel = min(16, max([7, *(len(r.channel) for _, r in window)]))
        kind = min(24, max([4, *(len(r.kind) for _, r in window)]))
        columns = [Column("time", 12, drop=2), Column("", 1), Column("channel", channel, drop=1), Column("kind", kind)]
        if board:
            columns.insert(1, Column("target", max(6, self.widths["target"])))
        else:
            columns.append(Column("id", min(12, max([2, *(len(r.ident) for _, r in window)])), drop=0))
        layout = fit(columns, width, FEED_DETAIL_MIN)
        lines = [layout.header("detail")]
        for target, row in window:
            summarize, styles, _ = self.looks[target]
            by_header = {
                "time": Text(clock(row.ts)),
                "target": cell(target),
                "": Text(row.arrow),
                "channel": cell(row.channel),
                "kind": cell(row.kind),
                "id": cell(row.ident),
            }
            cells = [by_header[column.header] for column in layout.columns]
            lines.append(
                layout.line(
                    cells, cell(row.shown_detail(summarize)), style=_readable(row_style(styles, row.channel, row.bad))
                )
            )
        return lines

    def _target_view(self, name: str, width: int, height: int) -> list[Text]:
        now, wall = time.monotonic(), time.time()
        state = self.fleet.state.targets[name]
        seen = verdict(state, now)
        rank = seen.rank
        title = self._title(width, f" › {visible(name)}")
        facts = Text(no_wrap=True, overflow="ellipsis")
        facts.append_text(cell(state.link if rank != STALE_RANK else "stale", STATUS_STYLE[rank]))
        facts.append("  ")
        facts.append_text(cell(state.profile))
        facts.append("  heartbeat ")
        facts.append_text(_beat(seen, state))
        facts.append(f"  {state.rate.per_second(now):.1f} msg/s  ")
        facts.append(f"errors {state.errors}", style="red" if state.errors else "")
        facts.append("  ")
        facts.append(f"malformed {state.malformed}", style="red" if state.malformed else "")
        if state.groups:
            facts.append("  group ")
            facts.append_text(cell(",".join(state.groups)))
        lines = [title, facts]
        detail = _detail(seen, wall)
        detail.no_wrap, detail.overflow = True, "ellipsis"
        lines.append(detail)
        focus = self.paused if self.paused is not None else [(name, row) for row in self.focus_rows]
        self.page = max(1, height - len(lines) - 2)
        lines.extend(self._feed_lines(focus, width, height - len(lines), False))
        return lines

    def _help(self) -> list[Text]:
        lines = [Text("keys", style="bold")]
        for keys, what in HELP:
            line = Text(no_wrap=True, overflow="ellipsis")
            line.append(f"  {keys:<15}", style="bold")
            line.append(what)
            lines.append(line)
        lines.append(Text("any key closes this help"))
        return lines

    def _footer(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        if self.editing is not None:
            text.append("/", style="bold")
            text.append_text(cell(self.editing))
            text.append("█  ")
            text.append("Enter", style="bold")
            text.append(" keep  ")
            text.append("Esc", style="bold")
            text.append(" clear")
            return text
        if self.view == "target":
            keys = [("Esc", "back"), ("?", "help"), ("q", "quit")]
            keys += [("p", "follow" if self.paused is not None else "pause"), ("↑↓", "scroll")]
        else:
            keys = [("⏎", "open"), ("/", "filter"), ("?", "help"), ("q", "quit")]
            keys.append(("snlre", f"sort:{SORTS[self.sort]}{'↑' if self.reverse else ''}"))
            keys.append(("p", "follow" if self.paused is not None else "pause"))
        if self.paused is not None:  # first, where a narrow screen still shows it
            text.append("PAUSED", style="bold yellow")
        for key, what in keys:
            if text:
                text.append("  ")
            text.append(key, style="bold reverse")
            text.append(f" {what}")
        return text

    @contextlib.contextmanager
    def live(self) -> Iterator[Live]:
        """The board on the terminal while inside: redrawn FRAMES_PER_SECOND times a second, and soon
        after a key (refresh), by a thread of its own; keys in a burst share a frame."""
        live = Live(self, console=self.console, auto_refresh=False, transient=False, redirect_stderr=True)
        stop = threading.Event()

        def frames() -> None:
            while not stop.is_set():
                self._wake.wait(1 / FRAMES_PER_SECOND)
                self._wake.clear()
                if stop.is_set():
                    return
                live.refresh()
                stop.wait(FRAME_GAP_S)

        with live:
            drawing = threading.Thread(target=frames, name="fleet-board", daemon=True)
            drawing.start()
            try:
                yield live
            finally:
                stop.set()
                self._wake.set()
                drawing.join(5)


def _natural(name: str) -> tuple[tuple[int, str], ...]:
    """A sort key that orders the numbers in a name by value."""
    return tuple((int(part), "") if part.isdigit() else (-1, part) for part in re.split(r"(\d+)", name) if part)


def _readable(style: str) -> str:
    """A feed row's style, but never dim: faint text is unreadable on some backgrounds."""
    return "" if style == "dim" else style


def verdict(state: TargetState, now: float) -> Seen:
    age = state.heartbeat_age(now)
    if state.up:
        rank = STALE_RANK if age is not None and age > state.stale_after_s else UP_RANK
    else:
        rank = DOWN_RANK if state.down_since is not None else CONNECTING_RANK
    return Seen(state, rank, age)


def _beat(seen: Seen, state: TargetState) -> Text:
    age = seen.age
    if age is None:
        return Text("—")
    if age > state.stale_after_s:
        return Text(f"STALE {age:.0f} s", style="bold yellow")
    if state.last_beat is None:
        return Text(f"none yet {age:.0f} s", style="yellow")
    return Text(f"{age:.1f} s", style="green")


def _detail(seen: Seen, wall: float) -> Text:
    """Why a target is down (or stale) in place of its last event; a problem in red."""
    state, rank = seen.state, seen.rank
    if rank == DOWN_RANK and state.down_since is not None:
        why = f"✗ {state.outage} since {clock(state.down_since)[:8]}"
        if state.outage_detail:
            why += f": {state.outage_detail}"
        return cell(why[:CELL_CHARS], "bold red")
    if rank == STALE_RANK and seen.age is not None:
        return cell(f"stale since {clock(wall - seen.age)[:8]}", "bold yellow")
    last = state.last_event
    if last:
        return cell(f"{last[0]}/{last[1]}  {clock(last[2])}"[:CELL_CHARS])
    return Text("connecting…" if rank == CONNECTING_RANK else "", style="yellow")
