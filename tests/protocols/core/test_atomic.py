"""Files fieldctl writes: whole or not at all, with the mode asked for, nothing left behind (the
links planted where a file is written: tests/profiles/test_targets.py, and where each writer is
tested)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from fieldctl.protocols.core.atomic import PRIVATE, PUBLIC, write_atomically


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.mark.parametrize("wanted", [PRIVATE, PUBLIC])
def test_the_file_has_the_mode_asked_for_and_nothing_is_left_beside_it(tmp_path: Path, wanted: int) -> None:
    path = tmp_path / "dir" / "fleet.toml"
    write_atomically(path, "a = 1\n", wanted)
    write_atomically(path, "a = 2\n", wanted)
    assert path.read_text() == "a = 2\n" and mode(path) == wanted
    assert os.listdir(path.parent) == ["fleet.toml"]


def test_a_failed_write_leaves_nothing_behind(tmp_path: Path) -> None:
    path = tmp_path / "taken"
    path.mkdir()  # a directory cannot be replaced by a file
    with pytest.raises(OSError):
        write_atomically(path, "a = 1\n", PRIVATE)
    assert os.listdir(tmp_path) == ["taken"] and os.listdir(path) == []
