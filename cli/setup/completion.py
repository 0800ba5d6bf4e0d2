"""`fieldctl completion show|install SHELL`. The shell is always named: detecting it fails in CI
and containers. The scripts are static; for the words they call back into `fieldctl` with
_FIELDCTL_COMPLETE set, which Typer answers before any subcommand runs."""

from __future__ import annotations

import enum
import os
from pathlib import Path
from typing import Annotated

import typer

# Typer's only way to a completion script short of add_completion=True (which also adds
# --install-completion): typer.completion's functions, re-exported there without an __all__.
from typer.completion import (  # type: ignore[attr-defined]  # Typer's own re-export, undeclared
    completion_init,
    get_completion_script,
)

# Typer registers the shell classes its scripts talk to only for add_completion=True, which would
# also add --install-completion with shell detection and rc-file edits; fieldctl wants neither.
completion_init()

app = typer.Typer(help="Shell completion for bash, zsh and fish.", no_args_is_help=True)


class Shell(enum.StrEnum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"


ShellArg = Annotated[Shell, typer.Argument(help="bash, zsh or fish", show_default=False)]


def script(shell: Shell) -> str:
    return get_completion_script(prog_name="fieldctl", complete_var="_FIELDCTL_COMPLETE", shell=shell.value) + "\n"


def target(shell: Shell) -> tuple[Path, str]:
    """Where the shell looks for a user's completion scripts, and what the user may still have to do."""
    home = Path.home()
    if shell is Shell.bash:
        data = Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share")
        path = Path(os.environ.get("BASH_COMPLETION_USER_DIR") or data / "bash-completion") / "completions" / "fieldctl"
        return (
            path,
            f"bash-completion 2 loads it in new shells; without bash-completion add to ~/.bashrc: source {path}",
        )
    if shell is Shell.zsh:
        return (
            home / ".zfunc" / "_fieldctl",
            "add to ~/.zshrc, before compinit runs: fpath=(~/.zfunc $fpath); autoload -Uz compinit && compinit",
        )
    config = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    return config / "fish" / "completions" / "fieldctl.fish", "fish loads it in new shells"


@app.command("show")
def show(shell: ShellArg) -> None:
    """Print the completion script (what completions/ holds), to source or install by hand."""
    typer.echo(script(shell), nl=False)


@app.command("install")
def install(shell: ShellArg) -> None:
    """Write the script where the shell finds it; rc files are left alone (what to add is printed)."""
    from fieldctl.protocols.core.atomic import PUBLIC, write_atomically

    path, hint = target(shell)
    try:
        write_atomically(path, script(shell), PUBLIC)
    except OSError as exc:
        from fieldctl.protocols.core.errors import UsageError

        raise UsageError(f"{path}: cannot write: {exc.strerror}") from None
    typer.echo(f"{shell.value} completion installed in {path}")
    typer.echo(hint)
