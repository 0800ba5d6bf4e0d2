"""fieldctl.sdk is the one module a protocol plugin imports: every name it lists resolves to the
object of its home, docs/plugins.md documents each, and the example plugins import nothing else."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

from fieldctl import sdk

ROOT = Path(__file__).resolve().parents[1]
PUBLIC = {"fieldctl.sdk", "fieldctl.testing"}


@pytest.mark.parametrize("name", sdk.__all__)
def test_every_name_is_its_homes(name: str) -> None:
    home = importlib.import_module(sdk._HOMES[name])
    assert getattr(sdk, name) is (home if home.__name__.endswith(f".{name}") else getattr(home, name))


def test_the_names_and_their_homes_agree() -> None:
    assert sorted(sdk._HOMES) == sorted(sdk.__all__)


def test_plugins_md_documents_every_name() -> None:
    text = (ROOT / "docs" / "plugins.md").read_text()
    undocumented = [name for name in sdk.__all__ if not re.search(rf"`{re.escape(name)}[`(\[. ]", text)]
    assert not undocumented, f"docs/plugins.md does not document {undocumented}"


def _fieldctl_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "fieldctl":
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.split(".")[0] == "fieldctl"]
    return found


EXAMPLE_SOURCES = sorted(
    path for path in (ROOT / "examples").rglob("*.py") if not any(part.endswith(".egg-info") for part in path.parts)
)


@pytest.mark.parametrize("path", EXAMPLE_SOURCES, ids=lambda path: str(path.relative_to(ROOT)))
def test_example_plugins_import_only_the_sdk_and_the_kit(path: Path) -> None:
    assert set(_fieldctl_imports(path)) <= PUBLIC
