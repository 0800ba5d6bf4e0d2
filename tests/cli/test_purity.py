"""cli/ holds no protocol knowledge: no system's name and no wire detail appears in its code.
Help texts, docstrings and comments may name them (they explain, they do not decide)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.helpers.repository import ROOT

CLI = ROOT / "cli"
#: The five systems, and wire details only one of them has (autotrainer's nonce, its channels and fields).
FORBIDDEN = re.compile(
    r"autotrainer|tracim|sepl|oneliner|vantiq|nonce|command_result|emergency|customCommand", re.IGNORECASE
)


def _explanations(tree: ast.AST) -> set[int]:
    """ids of the string nodes that only explain: docstrings and help= texts."""
    ids: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
        if isinstance(node, ast.keyword) and node.arg == "help":
            ids.update(id(sub) for sub in ast.walk(node.value))
    return ids


def _named(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every string constant or name in code that names a protocol or wire detail."""
    tree = ast.parse(path.read_text(), str(path))
    skip = _explanations(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            text = node.value
        elif isinstance(node, ast.Name):
            text = node.id
        elif isinstance(node, ast.Attribute):
            text = node.attr
        elif isinstance(node, ast.alias):
            text = node.name
        else:
            continue
        if FORBIDDEN.search(text):
            found.append((getattr(node, "lineno", 0), text))
    return found


@pytest.mark.parametrize("path", sorted(CLI.rglob("*.py")), ids=lambda p: str(p.relative_to(CLI)))
def test_cli_code_names_no_protocol(path: Path) -> None:
    found = _named(path)
    assert not found, f"cli/{path.relative_to(CLI)} names protocol details: {found}"


def test_the_guard_sees_a_protocol_name_in_code_and_not_in_help(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        '"""About vantiq."""\nimport typer\n'
        'opt = typer.Option("--x", help="e.g. tracim")\n'
        'if msg.channel == "command_result":\n    pass\n'
        'x = payload.get("nonce")\n'
    )
    assert [text for _, text in _named(sample)] == ["command_result", "nonce"]
