"""Profiles are data: discovery, overrides, validation with file/field/reason, secret references."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from fieldctl.profiles import available_profiles, load_profile
from fieldctl.profiles.loader import ProfileError, check_file
from fieldctl.profiles.secrets import Secret, SecretRef
from fieldctl.protocols.core.errors import UsageError
from fieldctl.protocols.runtime.registry import declared_settings
from tests.helpers.processes import FIELDCTL, cli_env, one_line, run_cli
from tests.helpers.repository import ROOT
from tests.helpers.terminals import Pty


@pytest.fixture(autouse=True)
def isolated_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path / "config" / "fieldctl" / "profiles"


def test_builtin_autotrainer_profile() -> None:
    prof = load_profile("autotrainer")
    assert prof.source == "built-in"
    assert prof.endpoints == {"events": "tcp://127.0.0.1:5556", "commands": "tcp://127.0.0.1:5557"}
    assert prof.commands["get-configuration"].code == 300
    assert prof.commands["set-application-mode"].payload == {"mode": "int"}
    assert prof.events["trialStarted"] == 1301 and prof.channels["heartbeat"] == 1001
    assert (prof.heartbeat.interval_s, prof.heartbeat.stale_after_s) == (5, 15)


def test_overrides_host_endpoint_and_set() -> None:
    prof = load_profile(
        "autotrainer",
        host="10.1.2.3",
        endpoints=["commands=tcp://127.0.0.1:9"],
        sets=["heartbeat.interval_s=1", "simulate.identifier=rig-7"],
    )
    assert prof.endpoints == {"events": "tcp://10.1.2.3:5556", "commands": "tcp://127.0.0.1:9"}
    assert prof.heartbeat.interval_s == 1 and prof.setting("simulate.identifier") == "rig-7"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"endpoints": ["nope=tcp://x:1"]}, "--endpoint nope: profile autotrainer has no such endpoint"),
        ({"endpoints": ["events"]}, "expected NAME=URL"),
        ({"sets": ["heartbeat.interval_s=-1"]}, "heartbeat.interval_s: expected a number of seconds above 0"),
        ({"sets": ["novalue"]}, "expected dotted.key=value"),
    ],
)
def test_bad_overrides_are_usage_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        load_profile("autotrainer", **kwargs)


def test_unknown_profile_lists_the_known_ones() -> None:
    with pytest.raises(ProfileError, match=r"unknown profile 'nope' \(available: .*autotrainer"):
        load_profile("nope")


def test_user_profile_extends_builtin(isolated_config: Path) -> None:
    isolated_config.mkdir(parents=True)
    (isolated_config / "rig7.toml").write_text(
        'extends = "autotrainer"\nname = "rig7"\n[defaults]\nhost = "10.0.0.7"\n'
    )
    assert "rig7" in available_profiles()
    prof = load_profile("rig7")
    assert prof.endpoints["events"] == "tcp://10.0.0.7:5556" and prof.commands["get-status"].code == 400


def test_validate_reports_every_problem_with_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'name = "bad"\nprotocol = "nosuch"\n[endpoints]\nevents = "nourl"\n'
        '[commands.GetStatus]\ncode = true\n[auth]\ntoken = "plaintext-secret"\n'
    )
    problems = check_file(bad, declared_settings)
    text = "\n".join(problems)
    for field in (
        "endpoints.events",
        "commands.GetStatus: command names are kebab-case",
        "commands.GetStatus.code",
        "auth.token: secrets are references",
        "protocol: unknown protocol 'nosuch'",
    ):
        assert f"{bad}: {field}" in text
    assert "plaintext-secret" not in text


def test_topology_says_who_binds_each_endpoint(tmp_path: Path) -> None:
    tracim = load_profile("tracim")
    assert (tracim.topology("client"), tracim.topology("master")) == ("client", "simulator")
    assert tracim.broker_endpoints == frozenset()
    brokered = load_profile("autotrainer", sets=["topology.events=broker"])
    assert brokered.broker_endpoints == {"events"} and brokered.topology("commands") == "simulator"
    file = tmp_path / "hub.toml"
    file.write_text('extends = "autotrainer"\nname = "hub"\n[topology]\nevnts = "broker"\ncommands = "brokr"\n')
    text = "\n".join(check_file(file, declared_settings))
    assert f"{file}: topology.evnts: no such endpoint (did you mean events?)" in text
    assert (
        f"{file}: topology.commands: expected one of simulator, client, broker, got 'brokr' (did you mean broker?)"
        in text
    )
    result = run_cli("listen", "autotrainer", "--set", "topology.event=broker", "--count", "1")
    assert result.returncode == 2, result.stderr
    assert one_line(result.stderr) == "fieldctl: --set topology.event: no such endpoint (did you mean events?)"


def test_validate_cli_exit_codes(tmp_path: Path) -> None:
    good = ROOT / "profiles" / "builtin" / "autotrainer.toml"
    assert run_cli("profiles", "validate", str(good)).returncode == 0
    broken = tmp_path / "broken.toml"
    broken.write_text("name = [\n")
    result = run_cli("profiles", "validate", str(broken))
    assert result.returncode == 2 and "not valid TOML" in result.stderr and "Traceback" not in result.stderr
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes('name = "caf\u00e9"\n'.encode("latin-1"))
    result = run_cli("profiles", "validate", str(latin1))
    assert (
        result.returncode == 2
        and f"{latin1}: not UTF-8 text" in result.stderr
        and "internal error" not in result.stderr
    )


def test_profiles_list_and_show_as_json(tmp_path: Path) -> None:
    env = cli_env(XDG_CONFIG_HOME=str(tmp_path))
    listed = run_cli("profiles", "list", "--json", env=env)
    assert listed.returncode == 0 and '"name": "autotrainer"' in listed.stdout
    shown = run_cli("profiles", "show", "autotrainer", "--json", env=env)
    assert shown.returncode == 0 and '"get-configuration"' in shown.stdout


def test_secret_references_never_show_the_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIELDCTL_TEST_TOKEN", "s3cr3t")
    secret = SecretRef(env="FIELDCTL_TEST_TOKEN").resolve()
    assert secret.reveal() == "s3cr3t"
    assert "s3cr3t" not in f"{secret} {secret!r} {secret:>20}"
    (tmp_path / "token").write_text("from-file\n")
    assert SecretRef(file=str(tmp_path / "token")).resolve().reveal() == "from-file"
    with pytest.raises(UsageError, match="FIELDCTL_MISSING is not set: the profile reads a secret from this"):
        SecretRef(env="FIELDCTL_MISSING").resolve()
    assert isinstance(secret, Secret)


BUILTIN = ROOT / "profiles" / "builtin"
PROFILES = ("autotrainer", "tracim", "sepl", "oneliner", "vantiq")


def test_unknown_keys_are_errors_with_a_did_you_mean(tmp_path: Path) -> None:
    typos = tmp_path / "typos.toml"
    typos.write_text(
        'name = "typos"\nprotocl = "autotrainer"\nprotocol = "autotrainer"\n[endpoints]\nevents = "tcp://{host}:1"\n'
        '[heartbeet]\ninterval_s = 1\n[heartbeat]\nstale_afer_s = 3\n[simulate]\nidentifer = "rig"\n'
        "[limits]\nmax_dept = 3\n[nothing_like_it]\nx = 1\n"
    )
    result = run_cli("profiles", "validate", str(typos))
    assert result.returncode == 2 and "ok" not in result.stdout and "Traceback" not in result.stderr
    for line in (
        "protocl: unknown key (did you mean protocol?)",
        "heartbeet: unknown key (did you mean heartbeat?)",
        "heartbeat.stale_afer_s: unknown key (did you mean heartbeat.stale_after_s?)",
        "simulate.identifer: unknown key (did you mean simulate.identifier?)",
        "limits.max_dept: unknown key (did you mean limits.max_depth?)",
        "nothing_like_it: unknown key\n",
    ):
        assert f"{typos}: {line}" in result.stderr + "\n"


def test_declared_settings_are_typed(tmp_path: Path) -> None:
    typed = tmp_path / "typed.toml"
    typed.write_text(
        'extends = "sepl"\nname = "typed"\n[limits]\nmax_frame_bytes = 0\nmax_depth = "deep"\n'
        '[timeouts]\nlogin_s = -1\n[simulate]\nsend = "carrier-pigeon"\nservices = "sepl_get"\n'
    )
    text = "\n".join(check_file(typed, declared_settings))
    for line in (
        "limits.max_frame_bytes: expected a positive integer, at most 1073741824, got 0",
        "limits.max_depth: expected a positive integer, at most 200, got 'deep'",
        "timeouts.login_s: expected a number of seconds above 0, at most 86400, got -1",
        "simulate.send: expected one of text, binary, got 'carrier-pigeon'",
        "simulate.services: expected a list of strings, got 'sepl_get'",
    ):
        assert f"{typed}: {line}" in text


def test_a_run_refuses_a_declared_setting_of_the_wrong_type_and_a_misspelt_core_key() -> None:
    result = run_cli("listen", "autotrainer", "--json", "--set", "timeouts.command_s=soon", "--timeout", "1")
    assert (
        result.returncode == 2
        and "timeouts.command_s: expected a number of seconds above 0, at most 86400, got 'soon'" in result.stderr
    )
    with pytest.raises(
        ProfileError, match=r"heartbeat.stale_afer_s: unknown key \(did you mean heartbeat.stale_after_s\?\)"
    ):
        load_profile("autotrainer", sets=["heartbeat.stale_afer_s=3"])


@pytest.mark.parametrize(
    "assignment, line",
    [
        ("heartbeat.intervl_s=1", "--set heartbeat.intervl_s: unknown key (did you mean heartbeat.interval_s?)"),
        (
            "heartbeat.interval_s=abc",
            "--set heartbeat.interval_s: expected a number of seconds above 0, at most 86400, got 'abc'",
        ),
        ("connector.pol_s=1", "--set connector.pol_s: unknown key (did you mean connector.poll_s?)"),
        (
            "connector.poll_s=abc",
            "--set connector.poll_s: expected a number of seconds above 0, at most 86400, got 'abc'",
        ),
    ],
)
def test_a_bad_set_is_told_as_the_sets_before_anything_is_sent(assignment: str, line: str) -> None:
    """The core tables' keys and a protocol's declared ones alike: the --set is named, with the
    whole dotted key to type instead; a key nobody reads is refused, not ignored."""
    result = run_cli(
        "register", "sepl", "--set", assignment, "--endpoint", "platform=ws://127.0.0.1:1", "--timeout", "1"
    )
    assert result.returncode == 2 and one_line(result.stderr) == f"fieldctl: {line}", result.stderr


@pytest.mark.parametrize("name", PROFILES)
def test_builtin_profiles_and_their_demo_overrides_validate(name: str) -> None:
    from fieldctl.protocols.runtime.registry import driver_for

    assert check_file(BUILTIN / f"{name}.toml", declared_settings) == []
    # what `fieldctl demo` sets (cli/roles/demo.py), on top of the profile's own [demo] set
    lively = ["heartbeat.interval_s=1", "heartbeat.stale_after_s=3"]
    if load_profile(name).setting("simulate.event_interval_s") is not None:
        lively.append("simulate.event_interval_s=0.4")
    driver_for(load_profile(name, sets=lively + load_profile(name).setting("demo.set", [])), print)


def test_every_setting_a_protocol_reads_is_declared() -> None:
    """grep-level guard: a `setting("x.y")` key in protocols/ must be declared for its protocol."""
    import re

    from fieldctl.profiles.schema import CORE

    root = ROOT / "protocols"
    for name in PROFILES:
        declared = {**CORE, **declared_settings(name)}
        text = "\n".join(path.read_text() for path in (root / name).rglob("*.py"))
        keys = set(re.findall(r'setting\(f?"([a-z_.]+)"', text))
        keys |= {f"timeouts.{key}" for key in re.findall(r'timeout\("([a-z_]+)"', text)}
        tables = {".".join(key.split(".")[:n]) for key in declared for n in range(1, key.count(".") + 1)}
        missing = {key for key in keys if not key.endswith(".") and key not in declared and key not in tables}
        assert not missing, f"{name} reads undeclared settings {missing}"


def test_a_protocol_declares_the_endpoints_it_needs(tmp_path: Path) -> None:
    lacking = tmp_path / "lacking.toml"
    lacking.write_text('name = "lacking"\nprotocol = "autotrainer"\n[endpoints]\nevent = "tcp://{host}:5556"\n')
    assert check_file(lacking, declared_settings) == [
        f"{lacking}: endpoints.events: is required",
        f"{lacking}: endpoints.commands: is required",
    ]
    result = run_cli("listen", "lacking", "--profile-file", str(lacking))
    assert (
        result.returncode == 2 and "endpoints.events: is required" in result.stderr and "Traceback" not in result.stderr
    )


@pytest.mark.parametrize("protocol", ["transport", "driver", "a.b", "../x"])
def test_a_package_that_is_no_protocol_is_an_unknown_protocol(tmp_path: Path, protocol: str) -> None:
    odd = tmp_path / "odd.toml"
    odd.write_text(f'name = "odd"\nprotocol = "{protocol}"\n[endpoints]\nx = "tcp://{{host}}:1"\n')
    result = run_cli("profiles", "validate", str(odd))
    assert result.returncode == 2
    assert result.stderr.startswith(f"{odd}: protocol: unknown protocol '{protocol}' (installed: autotrainer, ")


def test_a_profiles_text_is_shown_as_text(tmp_path: Path, terminals: Callable[..., Pty]) -> None:
    """A profile file is hostile too: its description, names and keys reach a terminal with control
    characters written out and no rich markup read."""
    folder = tmp_path / "config" / "fieldctl" / "profiles"
    folder.mkdir(parents=True)
    hostile = "\\u001b]0;owned\\u0007 [bold red]loud[/]"
    (folder / "loud.toml").write_text(
        f'extends = "autotrainer"\nname = "loud"\ndescription = "{hostile}"\n'
        f'[commands.get-status]\ncode = 400\nhelp = "{hostile}"\n'
    )
    env = cli_env(XDG_CONFIG_HOME=str(tmp_path / "config"))
    for args in (["profiles", "list"], ["profiles", "show", "loud"]):
        term = terminals([*FIELDCTL, *args], env=env)
        assert term.wait(30) == 0
        assert b"\x1b]0;owned" not in term.raw and "\\x1b]0;owned\\x07 [bold red]loud[/]" in term.text
    bad = tmp_path / "bad.toml"
    bad.write_text(f'extends = "autotrainer"\nname = "bad"\n["{hostile}"]\nx = 1\n')
    validated = run_cli("profiles", "validate", str(bad))
    assert validated.returncode == 2 and "\x1b" not in validated.stderr and "\\x1b]0;owned" in validated.stderr
