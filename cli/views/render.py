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
from fieldctl.protocols.core.redact import scrub, scrub_value
from fieldctl.protocols.sdk.contract import BaseDriver, CommandOutcome

if TYPE_CHECKING:
    from fieldctl.protocols.core.message import Message

#: How each of the drivers' looks (driver.LOOKS) renders; a malformed message is always ERROR.
LOOK_STYLES = {"alarm": "bold red", "quiet": "dim", "request": "magenta", "reply": "cyan", "link": "yellow"}
ERROR = "red"


def row_style(styles: Mapping[str, str], channel: str, bad: bool) -> str:
    """The rich style of a row: the driver's look for its channel, or ERROR for a malformed one."""
    return ERROR if bad else LOOK_STYLES.get(styles.get(channel, ""), "")


def message_table(
    messages: list[Message], summarize: Callable[[Message], str], styles: Mapping[str, str] = BaseDriver.styles
) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("", "channel", "kind", "id", "detail"):
        table.add_column(column)
    for msg in messages:
        detail = f"✗ {msg.error}" if msg.error else summarize(msg)
        table.add_row(
            "→" if msg.direction == "out" else "←",
            cell(msg.channel),
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
    verdict = ("OK", "bold green") if outcome.ok else ("FAILED", "bold red")
    console.print(Text.assemble(verdict, " ", stderr_line(outcome.summary), rtt_text(outcome.rtt_s)))
