"""Where the repository is, and the fence that keeps every test inside it.

Loaded with `-p` (pyproject.toml's addopts) before pytest imports tests/conftest.py, so the fence
stands before any test module is read, and `tests` names this clone's tests/ by then."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


class OutsideRepository(RuntimeError):
    """A test read beside the repository. Not an OSError, so no `except OSError` can swallow it."""


class Fence:
    """Refuses file access beside the repository, so that tests behave as in a fresh clone with nothing
    beside it: the `shared` folder next to it always, and every sibling directory existing at start-up.
    Left open: directories created later, hidden ones (user config and caches of a clone in a home
    directory), pytest's temp roots (`pytest-of-USER`, siblings of a clone in /tmp), and any that holds
    or lies inside the interpreter, the venv, a sys.path entry or an installed plugin's package."""

    def __init__(self, root: Path, allowed: list[str]) -> None:
        here = str(root)
        keep = [k for k in map(os.path.abspath, allowed) if not here.startswith(k.rstrip(os.sep) + os.sep)]

        def fenced(path: str) -> bool:
            name = os.path.basename(path)
            return not (
                name.startswith((".", "pytest-of-"))
                or path == here
                or any(k == path or k.startswith(path + os.sep) or path.startswith(k + os.sep) for k in keep)
            )

        beside = os.path.dirname(here)
        siblings = {e.path for e in os.scandir(beside) if e.is_dir()}
        self.blocked = tuple({os.path.join(beside, "shared"), *filter(fenced, siblings)})
        self.violations: list[str] = []

    def check(self, path: Any) -> None:
        if isinstance(path, int) or path is None:
            return
        where = os.path.abspath(os.fsdecode(path))
        if any(where == b or where.startswith(b + os.sep) for b in self.blocked):
            self.violations.append(where)
            raise OutsideRepository(f"{where} is outside the repository: copy what the test needs into it")

    def hook(self, event: str, args: tuple[Any, ...]) -> None:
        if event in ("open", "os.listdir", "os.scandir") and args:
            self.check(args[0])


def plugin_folders() -> list[str]:
    """The folders of the packages the installed protocols and profiles come from: a plugin
    installed with `pip install -e` from beside the repository is on no sys.path entry (its
    editable finder maps it), yet a test that runs its protocol reads its files."""
    from importlib.util import find_spec

    from fieldctl.protocols.core import entry_points

    folders: list[str] = []
    for group in (entry_points.PROTOCOLS, entry_points.PROFILES):
        for point in entry_points.group(group).values():
            spec = find_spec(point.module.partition(".")[0])
            if spec is not None:
                folders += spec.submodule_search_locations or [os.path.dirname(spec.origin or "")]
    return folders


FENCE = Fence(ROOT, [sys.prefix, sys.base_prefix, sys.exec_prefix, *filter(None, sys.path), *plugin_folders()])
sys.addaudithook(FENCE.hook)


@pytest.fixture(autouse=True)
def _stays_inside_the_repository() -> Iterator[None]:
    """Fails a test that touched a fenced path, even if it caught the error."""
    before = len(FENCE.violations)
    yield
    assert FENCE.violations[before:] == [], f"read outside the repository: {FENCE.violations[before:]}"
