"""Saved targets and fleet files: one schema, round trips through write_fleet, resolution order."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from fieldctl.profiles.loader import ProfileError
from fieldctl.profiles.targets import Target, load_fleet, resolve, saved_targets, targets_path, write_fleet
from fieldctl.protocols.core.errors import UsageError


@pytest.fixture(autouse=True)
def isolated_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


FLEET = [
    Target(
        "a-1", "autotrainer", "10.0.0.1", {"commands": "tcp://10.0.0.1:7000"}, {"heartbeat.interval_s": 1}, ("room-1",)
    ),
    Target("t.2", "tracim", groups=("room-1", "room-2")),
    Target("s_3", "sepl", sets={"connector.user": 'we "quote"'}),
]


def test_a_fleet_file_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "fleet.toml"
    write_fleet(path, FLEET)
    assert list(load_fleet(path).values()) == FLEET
    assert list(load_fleet(path, "room-2")) == ["t.2"]
    with pytest.raises(UsageError, match="no target in group 'room-9'"):
        load_fleet(path, "room-9")


def test_saved_targets_are_a_fleet_and_resolve_with_overrides() -> None:
    assert saved_targets() == {}
    write_fleet(targets_path(), FLEET)
    assert list(saved_targets()) == ["a-1", "t.2", "s_3"]
    prof = resolve("a-1", endpoints=["events=tcp://127.0.0.1:9"])
    assert prof.name == "autotrainer" and prof.heartbeat.interval_s == 1
    assert prof.endpoints == {"events": "tcp://127.0.0.1:9", "commands": "tcp://10.0.0.1:7000"}
    assert resolve("a-1", host="10.9.9.9").host == "10.9.9.9"
    assert resolve("autotrainer").endpoints["commands"] == "tcp://127.0.0.1:5557"
    with pytest.raises(ProfileError, match=r"unknown profile or target 'nope'.*targets: a-1, t\.2, s_3"):
        resolve("nope")


@pytest.mark.parametrize(
    "text, problem",
    [
        ('[targets.x]\nhost = "h"\n', "targets.x.profile: required"),
        ('[targets.x]\nprofile = "tracim"\ncolour = 1\n', "targets.x.colour: unknown key"),
        ('[targets."bad name"]\nprofile = "tracim"\n', "not a valid target name"),
        ('[targets.x]\nprofile = "tracim"\ngroup = 3\n', "targets.x.group"),
        ("[fleet]\n", "unknown key"),
        ('[targets.x]\nprofile = "sepl"\nset = { "connector.password" = "hunter2" }\n', "secrets stay references"),
    ],
)
def test_a_bad_fleet_file_says_where(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "fleet.toml"
    path.write_text(text)
    with pytest.raises(UsageError, match=problem.replace(".", r"\.")):
        load_fleet(path)


def test_saved_targets_are_their_owners_alone() -> None:
    write_fleet(targets_path(), FLEET)
    assert stat.S_IMODE(targets_path().stat().st_mode) == 0o600


def test_a_link_planted_at_the_temporary_name_is_not_followed(tmp_path: Path) -> None:
    """`.NAME.PID` was the temporary's name: a link there had its target overwritten, and the
    fleet file became the link."""
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    path = tmp_path / "fleet.toml"
    (tmp_path / f".fleet.toml.{os.getpid()}").symlink_to(victim)
    write_fleet(path, FLEET)
    assert victim.read_text() == "precious\n"
    assert not path.is_symlink() and list(load_fleet(path).values()) == FLEET


def test_a_link_at_the_destination_is_replaced_not_written_through(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    path = tmp_path / "fleet.toml"
    path.symlink_to(victim)
    write_fleet(path, FLEET)
    assert victim.read_text() == "precious\n"
    assert not path.is_symlink() and stat.S_IMODE(path.stat().st_mode) == 0o600
