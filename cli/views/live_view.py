"""The live table: recent messages, a heartbeat panel, link states and counters.

Rich refreshes it from its own thread, so rendering never blocks ingest; it keeps a bounded
window of rows, so memory stays flat however long it runs. A row's detail (the driver's summary)
is computed, and its wire text escaped, when the row is first drawn: only the visible ones, so a
burst costs nothing extra. Text reaches rich as Text, never as markup; each row looks as the
driver's `styles` say for its channel."""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from fieldctl.cli.framework.escape import cell, visible
from fieldctl.cli.views import theme
from fieldctl.cli.views.lines import clock
from fieldctl.cli.views.links import link_text
from fieldctl.cli.views.render import arrow, channel_style, row_style
from fieldctl.protocols.core.readable import value_text
from fieldctl.protocols.sdk.contract import BaseDriver

if TYPE_CHECKING:
    from fieldctl.cli.views.stats import Stats
    from fieldctl.profiles import Profile
    from fieldctl.protocols.core.message import Message

ROWS_KEPT = 500
#: Where the table says how to get every message: the rows that scroll off its top are gone.
LINES_HINT = "every message, kept in the scrollback: --lines"
#: Bytes of messages rows may hold for summaries not yet computed; past it the oldest are
#: summarized and dropped, so a burst of large frames does not hold ROWS_KEPT of them.
HELD_BYTES = 32 << 20
#: Characters kept of each cell: a peer may send a 16 MiB `kind`, the table shows a line.
CELL_CHARS = 200


@dataclass
class Row:
    """One table row. Its detail is the driver's summary of `msg`, computed when the row is first
    drawn (rich's thread) or when the view sheds held messages (the ingest thread, `add`)."""

    ts: float
    arrow: str
    channel: str
    kind: str
    ident: str
    bad: bool
    msg: Message | None
    size: int  # bytes `msg` arrived as: what holding it costs
    detail: str | None = None
    #: What a fault rule did to it (Message.fault), "" for none.
    fault: str = ""

    @classmethod
    def of(cls, msg: Message) -> Row:
        """The row of a message, its cells cut to CELL_CHARS (the fleet board's feed uses it too)."""
        ident = "" if msg.id is None else str(msg.id)
        return cls(
            msg.ts,
            "←" if msg.direction == "in" else "→",
            msg.channel[:CELL_CHARS],
            str(msg.kind)[:CELL_CHARS],
            ident[:CELL_CHARS],
            bool(msg.error),
            msg,
            sum(map(len, msg.raw)),
            fault=msg.fault or "",
        )

    def shown_detail(self, summarize: Callable[[Message], str]) -> str:
        """Both threads may call this; only `add`'s thread drops `msg`, after setting `detail`."""
        detail = self.detail
        if detail is None:
            msg = self.msg
            if msg is None:
                return self.detail or ""
            detail = self.detail = (f"✗ {msg.error}" if msg.error else summarize(msg))[:CELL_CHARS]
        return detail


def header_grid() -> Table:
    """The panel's two columns: a bold name, and what it stands for."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    return grid


class LiveView:
    def __init__(
        self,
        profile: Profile,
        stats: Stats,
        summarize: Callable[[Message], str],
        title: str,
        console: Console | None = None,
        *,
        beats_sent: bool = False,
        styles: Mapping[str, str] = BaseDriver.styles,
        hint: bool = True,
    ) -> None:
        """`summarize` and `styles` come from the driver (BaseDriver.summarize, BaseDriver.styles);
        `hint`: the command has --lines, and the table says so."""
        self.hint = hint
        self.profile, self.stats, self.summarize, self.title = profile, stats, summarize, title
        self.styles = styles
        #: A simulator's panel shows the heartbeats it sends; a client's those it receives.
        self.beat_direction = "out" if beats_sent else "in"
        self.console = console or Console()
        self.rows: deque[Row] = deque()
        self.held = 0  # bytes of the messages rows hold; only add() changes it
        self.links: dict[str, tuple[str, str]] = {}
        self.heartbeat: tuple[float, dict[str, Any]] | None = None
        self.started = time.monotonic()
        self.added = 0  # rows ever added, to say at the end how many the table no longer shows
        self.drawn = 0  # rows in the last frame
        #: What the panel above the table holds: this view's heartbeat, links and counters, or a
        #: summary of many sources (a simulated fleet's, cli/fleet/simulate.py).
        self.header: Callable[[], Table] = self._header

    def add(self, msg: Message) -> None:
        if msg.is_link:
            self.links[msg.endpoint] = (str(msg.kind), link_text(msg))
            return
        if msg.channel == self.profile.heartbeat.channel and not msg.error and msg.direction == self.beat_direction:
            self.heartbeat = (time.monotonic(), msg.payload if isinstance(msg.payload, dict) else {})
            if self.rows and self.rows[-1].channel == msg.channel:
                self._release(self.rows.pop())  # one heartbeat row is enough; the panel shows the rest
        row = Row.of(msg)
        self.added += 1
        self.rows.append(row)
        self.held += row.size
        if len(self.rows) > ROWS_KEPT:
            self._release(self.rows.popleft())
        if self.held > HELD_BYTES:
            for kept in self.rows:  # only this thread changes the deque
                if kept.msg is not None:
                    kept.shown_detail(self.summarize)
                    self._release(kept)
                    if self.held <= HELD_BYTES:
                        break

    def _release(self, row: Row) -> None:
        if row.msg is not None:
            row.msg = None
            self.held -= row.size

    def _heartbeat_text(self) -> Text:
        spec = self.profile.heartbeat
        if spec.channel is None:
            return Text("no heartbeat in this profile")
        if self.heartbeat is None:
            waited = time.monotonic() - self.started
            style = theme.style("error" if waited > spec.stale_after_s else "notice")
            return Text(f"no heartbeat yet ({waited:.0f} s)", style=style)
        seen, payload = self.heartbeat
        age = time.monotonic() - seen
        stale = age > spec.stale_after_s
        fields = "  ".join(visible(_field_text(payload.get(name, "?"))) for name in spec.fields)
        sent = "sent " if self.beat_direction == "out" else ""
        text = Text(f"{fields}  {sent}age {age:.1f} s", style=theme.style("error" if stale else "ok"))
        if stale:
            text.append(f"  STALE (> {spec.stale_after_s:g} s)")
        return text

    def _header(self) -> Table:
        grid = header_grid()
        grid.add_row("heartbeat", self._heartbeat_text())
        for endpoint, (state, url) in sorted(self.links.items()):
            meaning = (
                "ok" if state in ("ready", "connected", "bound", "peer-connected", "alive", "present") else "notice"
            )
            style = theme.style("error" if state == "stale" else meaning)
            grid.add_row(cell(endpoint), cell(f"{state}  {url}", style))
        s = self.stats
        counters = f"received {s.received}  sent {s.sent}  malformed {s.malformed}  duplicates dropped {s.duplicates}"
        if s.faults:
            counters += f"  faults {s.faults}"
        grid.add_row("counters", Text(counters, style=theme.style("error") if s.malformed else ""))
        return grid

    def __rich__(self) -> Group:
        header = self.header()
        height = max(3, self.console.size.height - header.row_count - 7)
        table = Table(expand=True, box=None, header_style="bold", pad_edge=False)
        table.add_column("time", no_wrap=True, width=12)
        table.add_column("", width=1)
        table.add_column("channel", no_wrap=True)
        table.add_column("kind", no_wrap=True)
        table.add_column("id", no_wrap=True)
        # What fault rules did (proxy, simulate --fault): a column of its own once one did, before
        # the detail, which is cut first.
        faulted = self.stats.faults > 0
        if faulted:
            table.add_column("fault", no_wrap=True)
        table.add_column("detail", overflow="ellipsis", no_wrap=True, ratio=1)
        drawn = list(self.rows)[-height:]
        self.drawn = len(drawn)
        for row in drawn:
            cells: list[str | Text] = [
                clock(row.ts),
                arrow("in" if row.arrow == "←" else "out"),
                cell(row.channel, channel_style(self.styles, row.channel)),
                cell(row.kind),
                cell(row.ident),
                *([cell(row.fault, theme.style("notice"))] if faulted else []),
                cell(row.shown_detail(self.summarize)),
            ]
            table.add_row(*cells, style=row_style(self.styles, row.channel, row.bad))
        panel = Panel(
            header,
            title=cell(f"fieldctl {self.title} {self.profile.name}"),
            title_align="left",
            subtitle=Text(LINES_HINT) if self.hint else None,
            subtitle_align="right",
        )
        return Group(panel, table)

    @contextlib.contextmanager
    def live(self) -> Iterator[Live]:
        """The table, redrawn until the block ends; then, if rows scrolled off its top, where to
        get them next time (they cannot be printed now: the table drew over them)."""
        with Live(self, console=self.console, refresh_per_second=4, transient=False, redirect_stderr=True) as live:
            yield live
        hidden = self.added - self.drawn
        if hidden > 0 and self.hint:
            again = f"{self.title} {self.profile.name} --lines"
            self.console.print(Text(f"{hidden} earlier messages scrolled off the table; `{again}` prints every one"))


def _field_text(value: Any) -> str:
    """A heartbeat field in the header: text as it is, any other value as JSON (`null`, never `None`)."""
    return value[:CELL_CHARS] if isinstance(value, str) else value_text(value, CELL_CHARS)
