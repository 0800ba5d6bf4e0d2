"""How `--help` and usage lines name the values a command takes: upper-case placeholders, as a
well-kept click app shows them (`check [OPTIONS] FILE...`, `target add NAME PROFILE`,
`--host HOST`, `--clients N  ...  [1<=x<=1000]`), never Typer's type labels (`{files}`,
`<list[Path]>`, `<str>`, `<float range>`). Applied to every command as it is built
(lazy_group.root_command, and the verbs the console parses with), so a new parameter is named the
same way without anyone remembering to."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperArgument, TyperOption

if TYPE_CHECKING:
    import typer._click as click  # Typer exports no public name for its vendored click's classes

#: The placeholder of a value by its kind (a protocol option's declared kind, or a Python type); text
#: is named after its option (named_after).
KINDS = {"int": "N", "float": "NUMBER", "seconds": "S", "json": "JSON", "path": "PATH"}


class Argument(TyperArgument):
    """A positional argument shown by its placeholder alone: `FILE...` in the help, `[PROFILE]`
    in the usage line when it may be left out (Typer adds its type, and braces when required)."""

    def shown(self) -> str:
        return f"{self.metavar}{'...' if self.nargs != 1 else ''}"

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        record = super().get_help_record(ctx)
        return None if record is None else (self.shown(), record[1])

    def get_usage_pieces(self, ctx: click.Context) -> list[str]:
        name = self.metavar if self.required else f"[{self.metavar}]"
        return [f"{name}{'...' if self.nargs != 1 else ''}"]


def tidy(command: click.Command) -> click.Command:
    """`command` (and a group's subcommands) with every parameter named by a placeholder."""
    ctx = typer.Context(command)
    for param in command.params:
        if isinstance(param, TyperArgument):
            given = param.metavar
            param.metavar = given if given and given == given.upper() else (param.name or "value").upper()
            param.__class__ = Argument  # Typer builds its own class and offers no way to choose another
        elif isinstance(param, TyperOption) and param.metavar is None and not (param.is_flag or param.count):
            param.metavar = placeholder(param, ctx)
    for sub in getattr(command, "commands", {}).values():
        tidy(sub)
    return command


def placeholder(option: TyperOption, ctx: Any) -> str:
    """An option's placeholder from its type: `[a|b]` for choices, N or NUMBER for numbers (their
    range is told after the help), PATH, else the option's own name (`--host HOST`)."""
    label = str(option.display_type(ctx)).strip("<>")
    if label.startswith("list[") and label.endswith("]"):
        label = label[len("list[") : -1]
    if "|" in label:
        return f"[{label}]"
    kind = label.split()[0].lower() if label else ""
    if kind in KINDS:
        return KINDS[kind]
    return named_after(max(option.opts, key=len))


def named_after(flag: str) -> str:
    """The placeholder of a text option: FILE for a file's name, else the option's own name."""
    name = flag.lstrip("-")
    return "FILE" if name == "file" or name.endswith("-file") else name.upper().replace("-", "_")
