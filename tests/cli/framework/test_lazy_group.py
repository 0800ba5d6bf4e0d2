"""The root group builds a subcommand only when it is used, and says the same as Typer's own
eager build of the whole tree."""

from __future__ import annotations

import pytest
import typer

from fieldctl.cli.app import app
from fieldctl.cli.framework.lazy_group import LazyCommands, root_command


def run(group: typer.core.TyperGroup, args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as ended:
        group.main(args=args, prog_name="fieldctl")
    assert ended.value.code == 0
    return capsys.readouterr().out


def test_root_help_builds_nothing_and_matches_the_eager_tree(capsys: pytest.CaptureFixture[str]) -> None:
    eager = run(typer.main.get_command(app), ["--help"], capsys)  # type: ignore[arg-type]
    root = root_command(app)
    assert run(root, ["--help"], capsys) == eager
    assert isinstance(root.commands, LazyCommands) and root.commands.built == {}


def test_a_subcommand_is_built_alone_when_invoked(capsys: pytest.CaptureFixture[str]) -> None:
    root = root_command(app)
    assert "Usage: fieldctl profiles" in run(root, ["profiles", "--help"], capsys)
    assert isinstance(root.commands, LazyCommands) and list(root.commands.built) == ["profiles"]
    assert list(root.commands) == root.list_commands(None)  # type: ignore[arg-type]
    assert list(root.commands)[:6] == ["listen", "register", "command", "publish", "simulate", "probe"]
