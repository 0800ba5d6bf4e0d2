"""The verbs that play a protocol role, declared once: cli/app.py registers each as a subcommand
(its name is the driver role), and the console parses its lines with the same click commands, so
a console line and a command line mean the same thing. Neither imports the other."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import typer

from fieldctl.cli.framework.metavars import KINDS, tidy
from fieldctl.cli.framework.protocol_options import CONTEXT, ProtocolCommand
from fieldctl.cli.roles import command, listen, probe, proxy, publish, simulate

if TYPE_CHECKING:
    import typer._click as click  # Typer exports no public name for its vendored click's classes


@dataclass(frozen=True)
class Verb:
    function: Callable[..., None]
    #: Its lines in the console's `help`; empty: not a console verb.
    console: tuple[str, ...] = ()
    #: Its own options a console line honours (the console's connection fixes --host and the like).
    options: tuple[str, ...] = ()


ROLE_VERBS: dict[str, Verb] = {
    "listen": Verb(
        listen.listen,
        (
            "listen [--filter KEY=VALUE ...]    subscribe; events print above the prompt",
            "  [--count N [--timeout S]]        ... wait for N messages, then pause the feed",
            "listen off · listen on             pause, resume the feed (subscription kept)",
        ),
        ("--filter", "--count", "--timeout"),
    ),
    "register": Verb(listen.register),
    "command": Verb(
        command.command,
        ("command NAME [--data JSON] ...     send a command (after `simulate`: to it)",),
        ("--data", "--timeout", "--no-wait", "--force"),
    ),
    "publish": Verb(
        publish.publish,
        ("publish KIND [--data JSON]         publish an event (after `simulate`: it does)",),
        ("--data", "--wait"),
    ),
    "simulate": Verb(simulate.simulate),
    "probe": Verb(probe.probe, ("probe [--warn S] [--crit S]        health check",), ("--warn", "--crit")),
    "proxy": Verb(proxy.proxy),
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


def summary(verb: str) -> str:
    """The first line of a verb's help: what the console's completion menu says beside it."""
    return (commands()[verb].help or "").strip().split("\n")[0].split(";")[0].rstrip(".")


def console_options(verb: str, protocol: str | None) -> list[tuple[str, str, str]]:
    """(flag, flag with its value's name, help) of each option a console line of `verb` takes: the
    verb's own the console honours, then the protocol options of `protocol` (all if None)."""
    from fieldctl.cli.framework.protocol_options import declarations
    from fieldctl.protocols.sdk.options import PARAMS

    command = commands()[verb]
    ctx = command.make_context(verb, [], resilient_parsing=True)
    own = {opt: param for param in command.get_params(ctx) for opt in param.opts}
    found: dict[str, tuple[str, str, str]] = {}
    for flag in ROLE_VERBS[verb].options:
        record = own[flag].get_help_record(ctx)
        found[flag] = (flag, *record) if record else (flag, flag, "")
    for flag, owners in declarations(verb).items():
        for name, spec in owners:
            if flag not in found and flag != PARAMS and protocol in (None, name):
                metavar = "" if spec.kind == "flag" else " " + KINDS.get(spec.kind, "TEXT")
                found[flag] = (flag, flag + metavar, spec.help)
    return list(found.values())


def console_usage(verb: str, protocol: str | None) -> str:
    """What `VERB --help` and `help VERB` print in the console: its lines from `help`, then its
    options for this protocol, two columns."""
    rows = console_options(verb, protocol)
    width = max((len(shown) for _, shown, _ in rows), default=0)
    return "\n".join([*ROLE_VERBS[verb].console, *(f"  {shown:<{width}}  {text}".rstrip() for _, shown, text in rows)])
