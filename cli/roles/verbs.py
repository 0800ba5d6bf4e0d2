"""The verbs that play a protocol role, declared once: cli/app.py registers each as a subcommand
(its name is the driver role), and the console parses its lines with the same click commands, so
a console line and a command line mean the same thing. Neither imports the other."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import typer

from fieldctl.cli.framework.metavars import tidy
from fieldctl.cli.framework.protocol_options import CONTEXT, ProtocolCommand
from fieldctl.cli.roles import command, listen, probe, publish, simulate

if TYPE_CHECKING:
    import typer._click as click  # Typer exports no public name for its vendored click's classes


@dataclass(frozen=True)
class Verb:
    function: Callable[..., None]
    #: Its lines in the console's `help`; empty: not a console verb.
    console: tuple[str, ...] = ()


ROLE_VERBS: dict[str, Verb] = {
    "listen": Verb(
        listen.listen,
        (
            "listen [--filter KEY=VALUE ...]     subscribe; events print above the prompt    "
            "listen off/on: pause/resume",
            "  [--count N [--timeout S]]        ... wait for N messages, then pause the feed",
        ),
    ),
    "register": Verb(listen.register),
    "command": Verb(
        command.command,
        ("command NAME [--data JSON] ...     send a command (with --simulate: push it to connected clients)",),
    ),
    "publish": Verb(
        publish.publish,
        ("publish KIND [--data JSON]         publish an event (with --simulate: from the simulated side)",),
    ),
    "simulate": Verb(simulate.simulate),
    "probe": Verb(probe.probe, ("probe [--warn S] [--crit S]        health check",)),
}
#: The verbs a console line may start with that mean what the subcommand of that name means.
CONSOLE_VERBS = tuple(name for name, verb in ROLE_VERBS.items() if verb.console)


def register(app: typer.Typer) -> None:
    """Every verb as a subcommand of `app`, with its protocols' options."""
    for name, verb in ROLE_VERBS.items():
        app.command(name, cls=ProtocolCommand, context_settings=CONTEXT)(verb.function)


@functools.cache
def commands() -> dict[str, click.Command]:
    """The verbs' click commands, built once per process (the console parses every line with
    them; building the tree per line was most of a line's time)."""
    app = typer.Typer(add_completion=False, rich_markup_mode=None)
    register(app)
    return {name: tidy(command) for name, command in typer.main.get_group(app).commands.items()}


def flags(verb: str, protocol: str | None) -> list[str]:
    """The --options of a verb: its own, and the protocol options of `protocol` (all if None)."""
    from fieldctl.cli.framework.protocol_options import declarations, own_flags

    command = commands()[verb]
    ctx = command.make_context(verb, [], resilient_parsing=True)
    declared = declarations(verb)
    theirs = [
        flag
        for flag, owners in declared.items()
        if flag.startswith("--") and (protocol is None or protocol in (name for name, _ in owners))
    ]
    return list(dict.fromkeys([*own_flags(command, ctx), *theirs]))
