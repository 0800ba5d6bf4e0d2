"""One-shot rich renderings for terminals: a command's exchange and its outcome.

Everything shown is scrubbed of known secrets here, and reaches rich as Text (see escape.py)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Callable

from rich.console import Console
from rich.highlighter import JSONHighlighter
from rich.table import Table
from rich.text import Text

from fieldctl.protocols.redact import scrub

from .common import rtt_text
from .escape import cell, stderr_line, visible

if TYPE_CHECKING:
    from fieldctl.protocols.driver import CommandOutcome
    from fieldctl.protocols.message import Message


def message_table(messages: list["Message"], summarize: Callable[["Message"], str]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("", "channel", "kind", "id", "detail"):
        table.add_column(column)
    for msg in messages:
        detail = f"✗ {msg.error}" if msg.error else summarize(msg)
        table.add_row("→" if msg.direction == "out" else "←", cell(msg.channel), cell(msg.kind),
                      cell("" if msg.id is None else msg.id), cell(detail), style="red" if msg.error else None)
    return table


def json_text(data: Any) -> Text:
    """Pretty JSON, highlighted; controls escaped (json.dumps leaves DEL and C1 as they are)."""
    lines = json.dumps(data, indent=2, ensure_ascii=False, default=repr).split("\n")
    return JSONHighlighter()(Text("\n".join(visible(line) for line in lines)))


def print_outcome(outcome: "CommandOutcome", summarize: Callable[["Message"], str]) -> None:
    console = Console()
    messages = [scrub(msg) for msg in outcome.messages]
    console.print(message_table(messages, summarize))
    final = messages[-1].payload if messages else None
    data = final.get("data") if isinstance(final, dict) else None
    if data is not None:
        console.print(json_text(data))
    verdict = ("OK", "bold green") if outcome.ok else ("FAILED", "bold red")
    console.print(Text.assemble(verdict, " ", stderr_line(outcome.summary), rtt_text(outcome.rtt_s)))
