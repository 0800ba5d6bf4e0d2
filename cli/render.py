"""One-shot rich renderings for terminals: a command's exchange, profiles."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from rich.console import Console
from rich.json import JSON
from rich.table import Table

if TYPE_CHECKING:
    from fieldctl.protocols.driver import CommandOutcome
    from fieldctl.protocols.message import Message


def message_table(messages: list["Message"], summarize: Callable[["Message"], str]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("", "channel", "kind", "id", "detail"):
        table.add_column(column)
    for msg in messages:
        detail = f"✗ {msg.error}" if msg.error else summarize(msg)
        table.add_row("→" if msg.direction == "out" else "←", msg.channel, str(msg.kind),
                      "" if msg.id is None else str(msg.id), detail, style="red" if msg.error else None)
    return table


def print_outcome(outcome: "CommandOutcome", summarize: Callable[["Message"], str]) -> None:
    console = Console()
    console.print(message_table(outcome.messages, summarize))
    final = outcome.messages[-1].payload if outcome.messages else None
    data = final.get("data") if isinstance(final, dict) else None
    if data is not None:
        import json

        console.print(JSON(json.dumps(data)))
    style = "bold green" if outcome.ok else "bold red"
    console.print(f"[{style}]{'OK' if outcome.ok else 'FAILED'}[/] {outcome.summary}", highlight=False)
