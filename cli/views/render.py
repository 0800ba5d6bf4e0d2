"""One-shot rich renderings for terminals: a command's exchange and its outcome.

Everything shown is scrubbed of known secrets here, and reaches rich as Text (see escape.py)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.highlighter import JSONHighlighter
from rich.table import Table
from rich.text import Text

from fieldctl.cli.framework.common import rtt_text
from fieldctl.cli.framework.escape import cell, stderr_line, visible
from fieldctl.cli.views import theme
from fieldctl.protocols.core.redact import scrub, scrub_value
from fieldctl.protocols.sdk.contract import BaseDriver, CommandOutcome

if TYPE_CHECKING:
    from fieldctl.protocols.core.message import Message

#: The meaning (theme.py) each of the drivers' looks (driver.LOOKS) gives a row's channel. Colour
#: marks meaning, never a whole row of routine traffic: requests and replies are told apart by
#: their direction arrow, and routine traffic (quiet) is not dimmed, since people read it too.
LOOK_STYLES = {"alarm": "alarm", "quiet": "", "request": "", "reply": "", "link": "link"}


def row_style(styles: Mapping[str, str], channel: str, bad: bool) -> str:
    """The rich style of a whole row: only severity colours one (a malformed message, an alarm)."""
    if bad:
        return theme.style("error")
    meaning = LOOK_STYLES.get(styles.get(channel, ""), "")
    return theme.style(meaning) if meaning == "alarm" else ""


def channel_style(styles: Mapping[str, str], channel: str) -> str:
    """The style of a channel's name: its look's meaning (an alarm, a link line), else none."""
    meaning = LOOK_STYLES.get(styles.get(channel, ""), "")
    return theme.style(meaning) if meaning else ""


def arrow(direction: str) -> Text:
    """← for what came in, → for what went out, each in its direction's colour."""
    return Text("←", style=theme.style("in")) if direction == "in" else Text("→", style=theme.style("out"))


def message_table(
    messages: list[Message], summarize: Callable[[Message], str], styles: Mapping[str, str] = BaseDriver.styles
) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("", "channel", "kind", "id", "detail"):
        table.add_column(column)
    for msg in messages:
        detail = f"✗ {msg.error}" if msg.error else summarize(msg)
        table.add_row(
            arrow(msg.direction),
            cell(msg.channel, channel_style(styles, msg.channel)),
            cell(msg.kind),
            cell("" if msg.id is None else msg.id),
            cell(detail),
            style=row_style(styles, msg.channel, bool(msg.error)) or None,
        )
    return table


def json_text(data: Any) -> Text:
    """Pretty JSON, highlighted; controls escaped (json.dumps leaves DEL and C1 as they are)."""
    lines = json.dumps(data, indent=2, ensure_ascii=False, default=repr).split("\n")
    return JSONHighlighter()(Text("\n".join(visible(line) for line in lines)))


def print_outcome(
    outcome: CommandOutcome,
    summarize: Callable[[Message], str],
    styles: Mapping[str, str] = BaseDriver.styles,
    console: Console | None = None,
) -> None:
    """The exchange as a table (styled by the driver's `styles`), the driver's result as JSON, the verdict."""
    console = console or Console()
    console.print(message_table([scrub(msg) for msg in outcome.messages], summarize, styles))
    if outcome.result is not None:
        console.print(json_text(scrub_value(outcome.result)))
    verdict = ("OK", f"bold {theme.style('ok')}") if outcome.ok else ("FAILED", theme.style("error"))
    console.print(Text.assemble(verdict, " ", stderr_line(outcome.summary), rtt_text(outcome.rtt_s)))
