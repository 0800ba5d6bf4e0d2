"""The root click group, building a subcommand's click command only when that subcommand is used.

Typer turns every registered function into a click command up front: for twenty subcommands
with protocol options that was ~45 ms, a third of `fieldctl --help` and of every one-shot
command. Here `fieldctl command ...` builds `command` alone, completion of `fieldctl li` builds
`listen` alone, and the root's `--help` lists short help read from the registrations."""

from __future__ import annotations

import copy
import functools
import inspect
from collections.abc import Callable, Iterator, MutableMapping
from typing import TYPE_CHECKING, Any

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup
from typer.models import CommandInfo, TyperInfo

from fieldctl.cli.framework.metavars import tidy

if TYPE_CHECKING:
    import typer._click as click  # Typer exports no public name for its vendored click's classes


class LazyCommands(MutableMapping[str, "click.Command"]):
    """Subcommand name → click command, each built at its first lookup."""

    def __init__(self, builders: dict[str, Callable[[], click.Command]]) -> None:
        self.builders = builders
        self.built: dict[str, click.Command] = {}

    def __getitem__(self, name: str) -> click.Command:
        if name not in self.built:
            self.built[name] = self.builders[name]()
        return self.built[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        self.builders[name] = lambda: command
        self.built[name] = command

    def __delitem__(self, name: str) -> None:
        del self.builders[name]
        self.built.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self.builders)

    def __len__(self) -> int:
        return len(self.builders)


class LazyGroup(TyperGroup):
    """A TyperGroup whose listing and help need only the names and help texts."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        #: Name → a help-only stand-in (help, short help, hidden), for the root's `--help`.
        self.summaries: dict[str, click.Command] = {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        if not isinstance(self.commands, LazyCommands):  # built by Typer itself (app() in a test)
            super().format_commands(ctx, formatter)
            return
        rows = [(name, summary) for name, summary in self.summaries.items() if not summary.hidden]
        if rows:
            limit = formatter.width - 6 - max(len(name) for name, _ in rows)
            with formatter.section("Commands"):
                formatter.write_dl([(name, summary.get_short_help_str(limit)) for name, summary in rows])


def _summary(name: str, info: CommandInfo | TyperInfo) -> click.Command:
    if isinstance(info, CommandInfo):
        text = inspect.cleandoc(info.help) if info.help is not None else inspect.getdoc(info.callback)
        return TyperCommand(name, help=text, short_help=info.short_help, hidden=info.hidden, deprecated=info.deprecated)
    solved = typer.main.solve_typer_info_defaults(info)
    return TyperCommand(
        name, help=solved.help, short_help=solved.short_help, hidden=solved.hidden, deprecated=solved.deprecated
    )


def _tidied(build: Callable[[], click.Command]) -> Callable[[], click.Command]:
    """`build`, its command's values then named as --help shows them (metavars.tidy)."""
    return lambda: tidy(build())


def root_command(app: typer.Typer) -> LazyGroup:
    """`app` as a click group (app must be Typer(cls=LazyGroup)); its subcommands are built on demand."""
    style: dict[str, Any] = {
        "pretty_exceptions_short": app.pretty_exceptions_short,
        "rich_markup_mode": app.rich_markup_mode,
    }
    infos: dict[str, CommandInfo | TyperInfo] = {}
    builders: dict[str, Callable[[], click.Command]] = {}
    for command in app.registered_commands:
        assert command.callback is not None, "app.command() registers a function"
        name = command.name or typer.main.get_command_name(command.callback.__name__)
        infos[name] = command
        builders[name] = _tidied(functools.partial(typer.main.get_command_from_info, command, **style))
    for group in app.registered_groups:
        assert group.name, "every sub-app of fieldctl is added with a name"
        infos[group.name] = group
        builders[group.name] = _tidied(
            functools.partial(typer.main.get_group_from_info, group, suggest_commands=app.suggest_commands, **style)
        )
    bare = copy.copy(app)  # the root alone: its callback and options
    bare.registered_commands, bare.registered_groups = [], []
    root = typer.main.get_group(bare)
    assert isinstance(root, LazyGroup)
    root.commands = LazyCommands(builders)
    root.summaries = {name: _summary(name, info) for name, info in infos.items()}
    return root
