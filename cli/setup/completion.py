"""`fieldctl completion show|install SHELL`. The shell is always named: detecting it fails in CI
and containers. The scripts are static; for the words they call back into `fieldctl` with
_FIELDCTL_COMPLETE set, which Typer answers before any subcommand runs."""

from __future__ import annotations

import enum
import os
from pathlib import Path
from typing import Annotated

import typer
from typer._click.shell_completion import CompletionItem, add_completion_class

# Typer's bash class, the one the bash script talks to (fieldctl's own below replaces it).
from typer._completion_classes import BashComplete  # Typer exports no public name for it

# Typer's only way to a completion script short of add_completion=True (which also adds
# --install-completion): typer.completion's functions, re-exported there without an __all__.
from typer.completion import (  # type: ignore[attr-defined]  # Typer's own re-export, undeclared
    completion_init,
    get_completion_script,
)

# Typer registers the shell classes its scripts talk to only for add_completion=True, which would
# also add --install-completion with shell detection and rc-file edits; fieldctl wants neither.
completion_init()

#: Typer's bash script, and one line more: after a sole offer that ends in `=` (a --filter key
#: such as `channel=`), no space, so its value can be typed or completed at once.
BASH_SCRIPT = """\
%(complete_func)s() {
    local IFS=$'\\n'
    COMPREPLY=( $( env COMP_WORDS="${COMP_WORDS[*]}" \\
                   COMP_CWORD=$COMP_CWORD \\
                   %(autocomplete_var)s=complete_bash $1 ) )
    if [[ ${#COMPREPLY[@]} -eq 1 && ${COMPREPLY[0]} == *= ]]; then compopt -o nospace; fi
    return 0
}

complete -o default -F %(complete_func)s %(prog_name)s"""


class EqualsSplitBash(BashComplete):
    """bash splits a word at `=` (COMP_WORDBREAKS), so `--filter channel=he` reaches fieldctl as
    `channel`, `=`, `he`, and what it offers replaces only `he`. The word is joined again for the
    completers, and each offer is given from where bash's own word begins."""

    typed_before = ""

    def get_completion_args(self) -> tuple[list[str], str]:
        args, incomplete = super().get_completion_args()
        words = [*args, incomplete]
        joined: list[str] = []
        glue = False
        for word in words:
            if word == "=" and joined:
                joined[-1] += "="
                glue = True
            elif glue:
                joined[-1] += word
                glue = False
            else:
                joined.append(word)
        current = "" if incomplete == "=" else incomplete
        self.typed_before = joined[-1][: len(joined[-1]) - len(current)]
        return joined[:-1], joined[-1]

    def format_completion(self, item: CompletionItem) -> str:
        """The offer less what bash keeps before its word: `channel=heartbeat` becomes `heartbeat`
        after `channel=`; an option's own `--filter=` is not part of the offer, so it is tried
        from each `=` on."""
        value, before = str(item.value), self.typed_before
        while before:
            if value.startswith(before):
                return value[len(before) :]
            before = before.partition("=")[2]
        return value


add_completion_class(EqualsSplitBash, "bash")

app = typer.Typer(help="Shell completion for bash, zsh and fish.", no_args_is_help=True)


class Shell(enum.StrEnum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"


ShellArg = Annotated[Shell, typer.Argument(help="bash, zsh or fish", show_default=False)]


PROG, COMPLETE_VAR = "fieldctl", "_FIELDCTL_COMPLETE"


def script(shell: Shell) -> str:
    if shell is Shell.bash:
        names = {"complete_func": f"_{PROG}_completion", "prog_name": PROG, "autocomplete_var": COMPLETE_VAR}
        return BASH_SCRIPT % names + "\n"
    return get_completion_script(prog_name=PROG, complete_var=COMPLETE_VAR, shell=shell.value) + "\n"


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
