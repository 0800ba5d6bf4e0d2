"""The repository stands alone: a fresh clone with nothing beside it passes `make test`.

Two guards: no test, build file or README names a path outside the repository, and the fence in
conftest.py refuses, during the session, any file access to the `shared` folder beside it or to a directory that sat
beside the repository when the session started. No sockets, no sleeps.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.helpers.fixture_files import FIXTURES, PROTOCOL_NOTES
from tests.helpers.repository import FENCE, ROOT, Fence, OutsideRepository, plugin_folders

PROFILES = ("autotrainer", "tracim", "sepl", "oneliner", "vantiq")
# Written split, so this file can scan itself.
REACHING_OUT = re.compile(
    "|".join(
        [
            r"\.\./" + "shared",
            r"parent\s*/\s*['\"]" + "shared",
            r"ROOT\." + "parent",
            r"(?<![\w/])" + "shared/(?:fixtures|protocols)",
        ]
    )
)


def scanned() -> list[Path]:
    """Every text file of tests/ (captured fixtures are data, not paths) and the top-level build files."""
    tests = [
        p
        for p in (ROOT / "tests").rglob("*")
        if p.is_file() and FIXTURES not in p.parents and p.suffix in (".py", ".txt", ".md", ".toml", ".cfg", ".ini")
    ]
    return [*tests, ROOT / "Makefile", ROOT / "pyproject.toml", ROOT / "README.md"]


@pytest.mark.parametrize("path", scanned(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_path_reaches_outside_the_repository(path: Path) -> None:
    hits = [
        f"{n}: {line.strip()}" for n, line in enumerate(path.read_text().splitlines(), 1) if REACHING_OUT.search(line)
    ]
    assert hits == []


@pytest.mark.parametrize("profile", PROFILES)
def test_fixtures_and_notes_live_in_the_repository(profile: str) -> None:
    assert (FIXTURES / profile / "README.md").is_file()
    assert len(list((FIXTURES / profile).glob("*.json"))) >= 10
    assert f"](docs/protocols/{profile}.md)" in (ROOT / "README.md").read_text()
    assert len((PROTOCOL_NOTES / f"{profile}.md").read_text().splitlines()) >= 80


def test_the_fence_refuses_shared_beside_the_repository() -> None:
    target = os.path.join(os.path.dirname(ROOT), "shared", "fixtures", "autotrainer", "README.md")
    with pytest.raises(OutsideRepository):
        open(target)  # noqa: SIM115 - refused before the file system is asked
    with pytest.raises(OutsideRepository):
        os.listdir(os.path.dirname(target))
    assert FENCE.violations[-2:] == [target, os.path.dirname(target)]
    del FENCE.violations[-2:]


def test_the_fence_blocks_only_what_stood_beside_the_repository(tmp_path: Path) -> None:
    for name in ("repo/tests", "other/data", ".config/fieldctl", "venvs/py/bin", "pytest-of-me/x"):
        (tmp_path / name).mkdir(parents=True)
    fence = Fence(tmp_path / "repo", [str(tmp_path / "venvs" / "py"), str(tmp_path)])
    (tmp_path / "later").mkdir()
    for refused in ("shared/capture/a.json", "shared", "other/data/b.json"):
        with pytest.raises(OutsideRepository):
            fence.check(str(tmp_path / refused))
    for allowed in (
        "repo/tests/c.json",
        "later/d",
        ".config/fieldctl/e.toml",
        "venvs/py/bin/python",
        "pytest-of-me/x/f",
        "file-beside.txt",
    ):
        fence.check(str(tmp_path / allowed))
    fence.check(3)  # an open file descriptor is no path
    fence.check("/usr/lib/os.py")
    assert len(fence.violations) == 3


def test_the_fence_leaves_open_the_packages_of_installed_plugins() -> None:
    """make test installs examples/plugin with `pip install -e`, as a plugin's author does from
    wherever it lies: its editable finder, not a sys.path entry, says where its package is."""
    assert str(ROOT / "examples" / "plugin" / "fieldctl_linejson") in plugin_folders()
