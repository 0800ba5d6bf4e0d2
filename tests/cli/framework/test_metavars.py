"""Every subcommand's `--help` names its values as a well-kept click app does: upper-case
placeholders (`FILE...`, `NAME PROFILE`, `--host HOST`, a range after the help), never a type
label of Typer's or a Python type name. Rendered by the real command line, one process each."""

from __future__ import annotations

import re

import pytest

from fieldctl.cli.app import app
from fieldctl.cli.framework.lazy_group import root_command
from tests.helpers.processes import run_cli

#: What only an internal name would put in a help page.
INTERNAL = re.compile(r"[{}]|<str>|<list\[|<float range>|<int range>|<[a-z|]+>|\b(str|int|float|bool|Path|NoneType)\b")


def subcommands() -> list[tuple[str, ...]]:
    """Every command path of the app, groups and their subcommands included."""
    paths: list[tuple[str, ...]] = []

    def walk(command: object, path: tuple[str, ...]) -> None:
        paths.append(path)
        commands = getattr(command, "commands", {})
        for name in list(commands):
            walk(commands[name], (*path, name))

    walk(root_command(app), ())
    return paths


@pytest.mark.parametrize("path", subcommands(), ids=lambda path: " ".join(path) or "fieldctl")
def test_help_names_values_by_upper_case_placeholders(path: tuple[str, ...]) -> None:
    result = run_cli(*path, "--help")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    page = result.stdout
    told = re.sub(r"'[^'\n]*'", "''", page)  # a quoted example is what a user types: `--format '{kind}'`
    assert not INTERNAL.search(told), INTERNAL.search(told)
    usage = page.splitlines()[0]
    assert usage.startswith(f"Usage: fieldctl {' '.join(path)}".rstrip() + " [OPTIONS]"), usage
    for piece in usage.split("[OPTIONS]", 1)[1].split():
        assert re.fullmatch(r"\[?[A-Z_]+\]?(\.\.\.)?", piece), f"{usage!r}: {piece!r} is not a placeholder"
    arguments = page.split("Arguments:\n", 1)[1].split("\n\n", 1)[0] if "Arguments:\n" in page else ""
    for row in arguments.splitlines():
        name = row.split()[0] if row.startswith("  ") and not row.startswith("   ") else None
        assert name is None or re.fullmatch(r"[A-Z_]+(\.\.\.)?", name), f"argument {name!r} in {path}"


def test_the_placeholders_people_asked_for() -> None:
    assert run_cli("check", "--help").stdout.startswith("Usage: fieldctl check [OPTIONS] FILE...\n")
    assert run_cli("target", "add", "--help").stdout.startswith("Usage: fieldctl target add [OPTIONS] NAME PROFILE\n")
    assert run_cli("console", "--help").stdout.startswith("Usage: fieldctl console [OPTIONS] [PROFILE]\n")
    listen = run_cli("listen", "--help").stdout
    assert "  --host HOST " in listen and "  PROFILE " in listen
    simulate = run_cli("simulate", "--help").stdout
    assert re.search(r"--devices N .*\[x>=1\]", simulate, re.S), simulate
