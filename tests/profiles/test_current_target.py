"""The current target as the state dir remembers it (`target use`): read within limits, a file
that is not what fieldctl writes remembers none, and each choice keeps the one before it."""

from __future__ import annotations

from pathlib import Path

import pytest

from fieldctl.profiles.targets import choose_target, chosen_targets, default_target


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    monkeypatch.delenv("FIELDCTL_TARGET", raising=False)
    return tmp_path / "fieldctl" / "current-target"


def test_each_choice_keeps_the_one_before_it(state: Path) -> None:
    assert chosen_targets() == (None, None) and default_target() is None
    choose_target("rig-1")
    choose_target("rig-2")
    assert chosen_targets() == ("rig-2", "rig-1") and default_target() == "rig-2"
    choose_target("rig-2")  # the same again: the previous one stays
    assert chosen_targets() == ("rig-2", "rig-1")
    choose_target(None)
    assert chosen_targets() == (None, "rig-2")
    assert oct(state.stat().st_mode & 0o777) == oct(0o600)


def test_the_variable_wins_over_the_current_target(state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    choose_target("rig-1")
    monkeypatch.setenv("FIELDCTL_TARGET", "rig-9")
    assert default_target() == "rig-9"


@pytest.mark.parametrize(
    "content, chosen",
    [
        (b"rig-1\n", ("rig-1", None)),
        (b"rig 1\nrig-2\n", (None, "rig-2")),  # not a name
        (b"\x1b]0;x\x07\n", (None, None)),
        (b"a\nb\nc\n", (None, None)),  # more than two lines
        (b"r" * 4096, (None, None)),  # too long: never read whole
        (b"", (None, None)),
    ],
)
def test_a_file_that_is_not_two_names_remembers_none(
    state: Path, content: bytes, chosen: tuple[str | None, ...]
) -> None:
    state.parent.mkdir(parents=True)
    state.write_bytes(content)
    assert chosen_targets() == chosen
