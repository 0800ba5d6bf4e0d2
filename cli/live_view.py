"""The live table: recent messages, a heartbeat panel, link states and counters.

Rich refreshes it from its own thread, so rendering never blocks ingest; it keeps a bounded
window of rows, so memory stays flat however long it runs."""

from __future__ import annotations

import time
from collections import deque
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from fieldctl.profiles import Profile
    from fieldctl.protocols.driver import Stats
    from fieldctl.protocols.message import Message

ROWS_KEPT = 500
CHANNEL_STYLES = {"emergency": "bold red", "heartbeat": "dim", "command_result": "cyan", "reply": "cyan",
                  "command": "magenta", "link": "yellow"}


class LiveView:
    def __init__(self, profile: "Profile", stats: "Stats", summarize: Callable[["Message"], str], title: str,
                 console: Console | None = None) -> None:
        self.profile, self.stats, self.summarize, self.title = profile, stats, summarize, title
        self.console = console or Console()
        self.rows: deque[tuple[float, str, str, str, str, str, bool]] = deque(maxlen=ROWS_KEPT)
        self.links: dict[str, tuple[str, str]] = {}
        self.heartbeat: tuple[float, dict[str, Any]] | None = None
        self.started = time.monotonic()

    def add(self, msg: "Message") -> None:
        if msg.is_link:
            url = msg.payload.get("url", "") if isinstance(msg.payload, dict) else ""
            self.links[msg.endpoint] = (str(msg.kind), url)
            return
        if msg.channel == self.profile.heartbeat.channel and not msg.error and msg.direction == "in":
            self.heartbeat = (time.monotonic(), msg.payload if isinstance(msg.payload, dict) else {})
            if self.rows and self.rows[-1][2] == msg.channel:
                self.rows.pop()  # one heartbeat row is enough; the panel shows the rest
        detail = f"✗ {msg.error}" if msg.error else self.summarize(msg)
        arrow = "←" if msg.direction == "in" else "→"
        self.rows.append((msg.ts, arrow, msg.channel, str(msg.kind), str(msg.id if msg.id is not None else ""),
                          detail, bool(msg.error)))

    def _heartbeat_text(self) -> Text:
        spec = self.profile.heartbeat
        if spec.channel is None:
            return Text("no heartbeat in this profile", style="dim")
        if self.heartbeat is None:
            waited = time.monotonic() - self.started
            style = "bold red" if waited > spec.stale_after_s else "yellow"
            return Text(f"no heartbeat yet ({waited:.0f} s)", style=style)
        seen, payload = self.heartbeat
        age = time.monotonic() - seen
        stale = age > spec.stale_after_s
        fields = "  ".join(str(payload.get(name, "?")) for name in spec.fields)
        text = Text(f"{fields}  age {age:.1f} s", style="bold red" if stale else "green")
        if stale:
            text.append(f"  STALE (> {spec.stale_after_s:g} s)")
        return text

    def _header(self) -> Table:
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        grid.add_row("heartbeat", self._heartbeat_text())
        for endpoint, (state, url) in sorted(self.links.items()):
            style = "green" if state in ("ready", "connected", "bound", "peer-connected", "alive") else "yellow"
            style = "bold red" if state == "stale" else style
            grid.add_row(endpoint, Text(f"{state}  {url}", style=style))
        s = self.stats
        counters = f"received {s.received}  sent {s.sent}  malformed {s.malformed}  duplicates dropped {s.duplicates}"
        grid.add_row("counters", Text(counters, style="red" if s.malformed else ""))
        return grid

    def __rich__(self) -> Group:
        height = max(3, self.console.size.height - len(self.links) - 9)
        table = Table(expand=True, box=None, header_style="bold", pad_edge=False)
        table.add_column("time", no_wrap=True, width=12)
        table.add_column("", width=1)
        table.add_column("channel", no_wrap=True)
        table.add_column("kind", no_wrap=True)
        table.add_column("id", no_wrap=True)
        table.add_column("detail", overflow="ellipsis", no_wrap=True, ratio=1)
        for ts, arrow, channel, kind, ident, detail, bad in list(self.rows)[-height:]:
            style = "red" if bad else CHANNEL_STYLES.get(channel, "")
            clock = datetime.fromtimestamp(ts).strftime("%H:%M:%S.%f")[:12]
            table.add_row(clock, arrow, channel, kind, ident, detail, style=style)
        header = Panel(self._header(), title=f"fieldctl {self.title} {self.profile.name}", title_align="left")
        return Group(header, table)

    def live(self) -> Live:
        return Live(self, console=self.console, refresh_per_second=4, transient=False, redirect_stderr=True)
