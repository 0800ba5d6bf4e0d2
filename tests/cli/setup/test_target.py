"""`fieldctl target add|list|show|remove|use`, a target wherever a PROFILE goes, FIELDCTL_TARGET and
the current target."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.helpers.autotrainer import Endpoints, start_simulator
from tests.helpers.imports import HEAVY, completing, imported
from tests.helpers.processes import FIELDCTL, cli_env, one_line, run_cli
from tests.helpers.terminals import Pty


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return cli_env(XDG_CONFIG_HOME=str(tmp_path / "config"))


def target(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("target", *args, env=env)


def test_add_list_show_remove(env: dict[str, str], tmp_path: Path) -> None:
    added = target(
        env,
        "add",
        "rig-3",
        "autotrainer",
        "--host",
        "10.0.4.3",
        "--endpoint",
        "commands=tcp://10.0.4.3:7001",
        "--set",
        "heartbeat.interval_s=1",
        "--group",
        "room-1",
    )
    assert added.returncode == 0, added.stderr
    assert (tmp_path / "config" / "fieldctl" / "targets.toml").is_file()
    assert target(env, "add", "rig-4", "tracim").returncode == 0

    listed = [json.loads(line) for line in target(env, "list", "--json").stdout.splitlines()]
    assert [row["name"] for row in listed] == ["rig-3", "rig-4"]
    assert listed[0] == {
        "name": "rig-3",
        "profile": "autotrainer",
        "host": "10.0.4.3",
        "groups": ["room-1"],
        "endpoints": {"commands": "tcp://10.0.4.3:7001"},
        "set": {"heartbeat.interval_s": "1"},
        "current": False,
    }

    shown = json.loads(target(env, "show", "rig-3", "--json").stdout)
    assert shown["resolved_endpoints"] == {"events": "tcp://10.0.4.3:5556", "commands": "tcp://10.0.4.3:7001"}

    assert target(env, "remove", "rig-3").returncode == 0
    assert [json.loads(line)["name"] for line in target(env, "list", "--json").stdout.splitlines()] == ["rig-4"]
    gone = target(env, "show", "rig-3")
    assert gone.returncode == 2 and gone.stderr.count("\n") == 1 and "no saved target 'rig-3'" in gone.stderr


def test_show_keeps_secrets_as_references(env: dict[str, str]) -> None:
    assert target(env, "add", "plant", "sepl", "--set", "auth.password.env=PLANT_PASSWORD").returncode == 0
    shown = target(env, "show", "plant", "--json").stdout
    assert json.loads(shown)["auth"]["password"] == "env:PLANT_PASSWORD"
    env = {**env, "PLANT_PASSWORD": "hunter2-very-secret"}
    for args in (("show", "plant"), ("show", "plant", "--json"), ("list",)):
        assert "hunter2" not in target(env, *args).stdout


@pytest.mark.parametrize(
    "args, problem",
    [
        (("autotrainer", "tracim"), "may not shadow"),
        (("rig", "no-such-profile"), "unknown profile 'no-such-profile'"),
        (("rig", "autotrainer", "--endpoint", "nope=tcp://127.0.0.1:1"), "no such endpoint"),
        (("rig", "autotrainer", "--set", "heartbeat.interval_s=soon"), "heartbeat.interval_s"),
        (("bad name", "autotrainer"), "target name"),
        (("rig", "autotrainer", "--group", "room 1"), "group label 'room 1'"),
        (("rig", "sepl", "--set", "connector.password=hunter2"), "secrets stay references"),
        (("rig", "sepl", "--set", "connector.pol_s=1"), "--set connector.pol_s: unknown key (did you mean"),
    ],
)
def test_add_refuses_what_would_not_resolve(env: dict[str, str], args: tuple[str, ...], problem: str) -> None:
    result = target(env, "add", *args)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert problem in result.stderr
    assert target(env, "list", "--json").stdout == ""


def test_a_saved_targets_bad_set_is_told_as_the_targets(env: dict[str, str], tmp_path: Path) -> None:
    """A `set` in targets.toml edited by hand is not a --set of this command line."""
    (tmp_path / "config" / "fieldctl").mkdir(parents=True)
    (tmp_path / "config" / "fieldctl" / "targets.toml").write_text(
        '[targets.rig]\nprofile = "sepl"\nset = { "connector.pol_s" = 1 }\n'
    )
    result = run_cli("register", "rig", "--timeout", "1", env=env)
    assert result.returncode == 2, result.stderr
    assert one_line(result.stderr) == (
        "fieldctl: target rig: set connector.pol_s: unknown key (did you mean connector.poll_s?)"
    )
    typo = run_cli("register", "rig", "--timeout", "1", "--set", "heartbeat.intervl_s=1", env=env)
    assert one_line(typo.stderr).startswith("fieldctl: --set heartbeat.intervl_s: unknown key"), typo.stderr


def test_add_twice_needs_force(env: dict[str, str]) -> None:
    assert target(env, "add", "rig", "autotrainer").returncode == 0
    again = target(env, "add", "rig", "tracim")
    assert again.returncode == 2 and "exists" in again.stderr
    assert target(env, "add", "rig", "tracim", "--force").returncode == 0
    assert json.loads(target(env, "list", "--json").stdout)["profile"] == "tracim"


def test_a_target_works_where_a_profile_does_and_as_the_default(env: dict[str, str]) -> None:
    endpoints = Endpoints()
    sim = start_simulator(endpoints)
    try:
        assert target(env, "add", "rig-3", "autotrainer", *endpoints.args).returncode == 0
        named = run_cli("command", "rig-3", "get-status", "--json", env=env)
        assert named.returncode == 0, named.stderr
        default = {**env, "FIELDCTL_TARGET": "rig-3"}
        by_default = run_cli("command", "get-status", "--json", env=default)
        assert by_default.returncode == 0, by_default.stderr
        assert json.loads(by_default.stdout.splitlines()[0])["kind"] == "get-status"
        assert run_cli("probe", env=default).stdout.startswith("RIG-3 OK")
        assert run_cli("probe", "rig-3", env=default).returncode == 0  # named as well as defaulted
    finally:
        sim.stop()


def test_no_profile_and_no_default_is_a_usage_error(env: dict[str, str]) -> None:
    result = run_cli("command", env=env)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "FIELDCTL_TARGET" in result.stderr
    missing = run_cli("command", "autotrainer", env=env)
    assert missing.returncode == 2 and "missing argument NAME" in missing.stderr
    probe = run_cli("probe", env=env)
    assert probe.returncode == 3 and probe.stdout.startswith("PROBE UNKNOWN - missing PROFILE")  # stays Nagios


def test_completion_offers_targets_with_profiles_and_stays_quick(env: dict[str, str]) -> None:
    assert target(env, "add", "rig-3", "autotrainer").returncode == 0
    offered = run_cli(env={**env, **completing("fieldctl listen ")}).stdout.split()
    assert "rig-3" in offered and "autotrainer" in offered
    commands = run_cli(env={**env, **completing("fieldctl command rig-3 get-")}).stdout.split()
    assert {"get-configuration", "get-status"} <= set(commands)
    for line in ("fieldctl listen r", "fieldctl command rig-3 get-"):
        modules = imported([], {"XDG_CONFIG_HOME": env["XDG_CONFIG_HOME"], **completing(line)})
        assert not [m for m in modules if any(m == name or m.startswith(name + ".") for name in HEAVY)], line


def test_a_password_in_a_url_is_refused_and_never_repeated(env: dict[str, str], tmp_path: Path) -> None:
    password = "hunter2-in-a-url"
    url = f"ws://admin:{password}@127.0.0.1:8093"
    added = target(env, "add", "plant", "sepl", "--endpoint", f"platform={url}")
    assert added.returncode == 2 and added.stderr.count("\n") == 1, added.stderr
    assert "--endpoint platform: a URL holds no password" in added.stderr and "[auth]" in added.stderr
    assert not (tmp_path / "config" / "fieldctl" / "targets.toml").exists()
    listened = run_cli("listen", "sepl", "--endpoint", f"platform={url}", env=env)
    assert listened.returncode == 2 and "a URL holds no password" in listened.stderr

    saved = tmp_path / "config" / "fieldctl" / "targets.toml"
    saved.parent.mkdir(parents=True)
    saved.write_text(f'[targets.plant]\nprofile = "sepl"\nendpoints = {{ platform = "{url}" }}\n')
    listed = target(env, "list")
    assert listed.returncode == 2
    assert listed.stderr == f"fieldctl: {saved}: targets.plant.endpoints.platform: " + (
        "a URL holds no password (URLs are saved and shown): give the secret as the profile's [auth] reference\n"
    )
    for result in (added, listened, listed):
        assert password not in result.stdout + result.stderr


def test_target_use_chooses_the_current_target_as_the_readme_shows(env: dict[str, str], tmp_path: Path) -> None:
    """README: `target use rig-3`, then `command get-status` acts on rig-3; `target use -` goes back."""
    env = {**env, "XDG_STATE_HOME": str(tmp_path / "state")}
    endpoints = Endpoints()
    sim = start_simulator(endpoints)
    try:
        assert target(env, "add", "rig-3", "autotrainer", *endpoints.args).returncode == 0
        assert target(env, "add", "rig-4", "tracim").returncode == 0
        assert target(env, "use").stderr == "no current target\n"
        chosen = target(env, "use", "rig-3")
        assert chosen.returncode == 0 and chosen.stderr.startswith("current target: rig-3")
        saved = tmp_path / "state" / "fieldctl" / "current-target"
        assert (saved.stat().st_mode & 0o777) == 0o600 and saved.read_text() == "rig-3\n\n"
        assert target(env, "use").stdout == "rig-3\n"
        status = run_cli("command", "get-status", "--json", env=env)
        assert status.returncode == 0, status.stderr
        assert run_cli("probe", env=env).stdout.startswith("RIG-3 OK")
        listed = [json.loads(line) for line in target(env, "list", "--json").stdout.splitlines()]
        assert [(row["name"], row["current"]) for row in listed] == [("rig-3", True), ("rig-4", False)]
        console = run_cli("console", env=env, input="status\n")  # the console starts on it: its prompt names it
        assert console.returncode == 0 and console.stdout.startswith("rig-3 │"), console.stdout + console.stderr

        assert target(env, "use", "rig-4").returncode == 0
        winner = run_cli("probe", env={**env, "FIELDCTL_TARGET": "rig-3"})  # the variable wins over it
        assert winner.stdout.startswith("RIG-3 OK"), winner.stdout
        back = target(env, "use", "-")
        assert back.returncode == 0 and target(env, "use").stdout == "rig-3\n"
        assert target(env, "use", "-").returncode == 0 and target(env, "use").stdout == "rig-4\n"
    finally:
        sim.stop()


def test_target_use_of_an_unknown_name_is_refused_with_a_did_you_mean(env: dict[str, str], tmp_path: Path) -> None:
    env = {**env, "XDG_STATE_HOME": str(tmp_path / "state")}
    assert target(env, "add", "rig-3", "autotrainer").returncode == 0
    refused = target(env, "use", "rig-33")
    assert (
        refused.returncode == 2
        and refused.stderr == "fieldctl: unknown target or profile 'rig-33' (did you mean rig-3?)\n"
    )
    assert target(env, "use", "-").returncode == 2  # no previous one
    assert not (tmp_path / "state" / "fieldctl" / "current-target").exists()  # nothing written


def test_removing_the_current_target_leaves_none_and_clear_forgets_it(env: dict[str, str], tmp_path: Path) -> None:
    env = {**env, "XDG_STATE_HOME": str(tmp_path / "state")}
    assert target(env, "add", "rig-3", "autotrainer").returncode == 0
    assert target(env, "use", "rig-3").returncode == 0
    assert target(env, "remove", "rig-3").returncode == 0
    result = run_cli("command", env=env)
    assert result.returncode == 2 and "target use NAME" in result.stderr
    assert target(env, "use", "autotrainer").returncode == 0  # a profile may be current too
    assert target(env, "use", "--clear").stderr == "no current target\n"
    assert target(env, "use").stderr == "no current target\n"


def test_target_use_completes_targets_and_profiles(env: dict[str, str]) -> None:
    assert target(env, "add", "rig-3", "autotrainer").returncode == 0
    offered = run_cli(env={**env, **completing("fieldctl target use ")}).stdout.split()
    assert "rig-3" in offered and "autotrainer" in offered


def test_target_list_on_a_terminal_marks_the_current_target(env: dict[str, str], tmp_path: Path) -> None:
    env = {**env, "XDG_STATE_HOME": str(tmp_path / "state")}
    for name in ("rig-3", "rig-4"):
        assert target(env, "add", name, "autotrainer").returncode == 0
    assert target(env, "use", "rig-4").returncode == 0
    term = Pty([*FIELDCTL, "target", "list"], cols=80, env=env)
    try:
        assert term.wait() == 0
        rows = [row.strip() for row in term.text.splitlines() if "rig-" in row]
        assert rows[0].startswith("rig-3") and rows[1].startswith("*  rig-4"), term.text
    finally:
        term.close()
