"""The Driver contract, held against every installed protocol: the five built-ins and any plugin
(make test installs examples/plugin). Each protocol is exercised through its own-named profile,
as a user would, in real subprocesses on private loopback addresses."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from fieldctl.profiles import available_profiles, load_profile
from fieldctl.protocols.runtime.endpoints import is_wildcard, private_endpoints
from fieldctl.protocols.runtime.registry import declared_options, driver_class, protocol_names
from fieldctl.protocols.sdk.contract import BaseDriver
from fieldctl.protocols.sdk.options import KINDS, PARAMS, ROLES
from tests.helpers.mosquitto import broker_endpoints
from tests.helpers.processes import FIELDCTL, Proc, cli_env, run_cli

PROTOCOLS = protocol_names()


def test_the_builtins_and_the_example_plugin_are_registered() -> None:
    assert {"autotrainer", "oneliner", "sepl", "tracim", "vantiq", "linejson"} <= set(PROTOCOLS)
    assert set(PROTOCOLS) <= set(available_profiles()), "every protocol ships a profile of its own name"


class Side:
    """One profile on private addresses: its overrides, its environment, its simulator."""

    def __init__(self, name: str, folder: Path) -> None:
        self.name, self.folder = name, folder
        profile = load_profile(name)
        self.sets = ["heartbeat.interval_s=0.5", *profile.setting("demo.set", [])]
        self.endpoints = private_endpoints(load_profile(name, sets=self.sets), str(folder))
        self.env = cli_env(XDG_CONFIG_HOME=str(folder / "config"))
        for ref in profile.auth.values():
            if ref.env:
                self.env[ref.env] = "fieldctl-contract"

    def args(self, endpoints: dict[str, str] | None = None) -> list[str]:
        overrides = [f"--endpoint={key}={url}" for key, url in (endpoints or self.endpoints).items()]
        return [*overrides, *(f"--set={s}" for s in self.sets)]

    def simulate(self, *extra: str) -> tuple[Proc, dict[str, str]]:
        """A running simulator and the endpoints that reach it, once it has announced them."""
        proc = Proc([*FIELDCTL, "simulate", self.name, "--json", *self.args(), *extra], env=self.env)
        reached = dict(self.endpoints)
        while any(is_wildcard(url) for url in reached.values()):
            bound = proc.wait_json(
                lambda m: (
                    m["channel"] == "link" and m["kind"] == "bound" and is_wildcard(reached.get(m["endpoint"], ""))
                )
            )
            reached[bound["endpoint"]] = bound["payload"]["url"]
        if not any(url != self.endpoints[key] for key, url in reached.items()):
            proc.wait_json(lambda m: m["channel"] == "link" and m["kind"] == "bound")
        return proc, reached


@pytest.fixture(params=PROTOCOLS)
def side(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Side]:
    (tmp_path / "config").mkdir()
    side = Side(request.param, tmp_path)
    side.brokers = broker_endpoints(load_profile(request.param).data)
    if side.brokers:  # both sides connect to a broker: the tests' own mosquitto
        url = request.getfixturevalue("mosquitto").url
        side.endpoints.update(dict.fromkeys(side.brokers, url))
    yield side


def test_simulate_announces_bound_and_ends_cleanly(side: Side) -> None:
    proc, _ = side.simulate()
    assert proc.stop() == 0
    assert "Traceback" not in proc.popen.stderr.read()


def test_demo_runs_and_ends_by_itself(side: Side) -> None:
    brokers = side.args({name: side.endpoints[name] for name in side.brokers}) if side.brokers else []
    result = run_cli("demo", side.name, *brokers, "--duration", "2", env=side.env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_probe_is_ok_against_the_simulator_and_critical_without(side: Side) -> None:
    proc, reached = side.simulate()
    ok = run_cli(
        "probe",
        side.name,
        *side.args(reached),
        "--warn",
        "5",
        "--crit",
        "8",
        "--format",
        "json",
        env=side.env,
        timeout=60,
    )
    assert proc.stop() == 0
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert json.loads(ok.stdout)["status"] == "OK"
    down = run_cli("probe", side.name, *side.args(reached), "--crit", "2", env=side.env, timeout=60)
    assert down.returncode == 2, down.stdout + down.stderr
    assert "CRITICAL" in down.stdout


def test_client_traffic_reads_back_as_a_scenario(side: Side) -> None:
    """What a client role records is NDJSON that simulate --scenario reads back."""
    driver = driver_class(side.name)
    role = "listen" if driver.listen is not BaseDriver.listen else "register"
    proc, reached = side.simulate()
    record = side.folder / "record.ndjson"
    client = run_cli(
        role,
        side.name,
        *side.args(reached),
        "--json",
        "--count",
        "1",
        "--timeout",
        "30",
        "--record",
        str(record),
        env=side.env,
        timeout=60,
    )
    assert proc.stop() == 0
    assert client.returncode == 0, client.stderr
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    assert any(line["channel"] != "link" for line in lines)
    assert all({"ts", "channel", "kind", "payload", "raw"} <= set(line) for line in lines)
    replay, _ = side.simulate("--scenario", str(record), "--no-timeline")
    assert replay.stop() == 0
    assert "Traceback" not in replay.popen.stderr.read()


@pytest.fixture(scope="module")
def helps() -> dict[str, dict[str, str]]:
    """role -> the entries of `fieldctl ROLE --help` under its protocol options: first word -> text."""
    entries: dict[str, dict[str, str]] = {}
    for role in ROLES:
        text = run_cli(role, "--help").stdout
        assert "Protocol options" in text, f"{role} --help lists no protocol options"
        rows: dict[str, str] = {}
        for line in text.split("Protocol options", 1)[1].splitlines()[1:]:
            if re.match(r"  \S", line):  # an entry starts at the indentation, its wrapped text goes deeper
                head = line.split()[0]
                rows[head] = line
            elif line.strip() and rows:
                rows[head] += " " + line.strip()
        entries[role] = rows
    return entries


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_protocol_options_are_listed_in_the_subcommands_help(protocol: str, helps: dict[str, dict[str, str]]) -> None:
    """Each declared option is a real option of its role's subcommand, labelled with its protocol,
    under the protocol options (not hidden by one of the subcommand's own)."""
    declared = declared_options(protocol)
    assert set(declared) <= set(ROLES), f"{protocol} declares options for unknown roles"
    for role, specs in declared.items():
        for flag, spec in specs.items():
            assert spec.kind in KINDS, f"{protocol} {role} {flag}: kind {spec.kind!r}"
            assert flag == PARAMS or re.fullmatch(r"--[a-z0-9][a-z0-9-]*", flag), f"{protocol}: {flag!r} is no --option"
            shown = "[ARGS]..." if flag == PARAMS else flag
            entry = helps[role].get(shown, "")
            assert re.search(rf"\[[^\]]*\b{re.escape(protocol)}\b[^\]]*\]", entry), (
                f"{role} --help does not list {shown} for {protocol}: {entry!r}"
            )


def _published(line: str, marker: str) -> bool:
    return marker in line and json.loads(line)["direction"] == "in"


def test_a_publication_reaches_the_other_side(side: Side) -> None:
    """`publish PROFILE KIND --data` arrives where the protocol sends it: at a listener when
    publish plays the publishing side itself (it binds, and announces where), else at the
    simulator it connects to, or through the simulator at a listener. KIND is the profile's first
    event kind, or its first channel where kinds are open-ended (a stream, a subject)."""
    driver = driver_class(side.name)
    if driver.listen is BaseDriver.listen or driver.publish is BaseDriver.publish:
        pytest.skip(f"{side.name} has no listen/publish pair (its register and publish roles have their own tests)")
    profile = load_profile(side.name)
    kind = next(iter([*profile.events, *profile.channels]))
    marker = f"contract-{uuid.uuid4().hex}"
    publish = ["publish", side.name, kind, "--data", json.dumps({"contract": marker}), "--wait", "20", "--json"]

    def listener(endpoints: dict[str, str]) -> Proc:
        return Proc([*FIELDCTL, "listen", side.name, *side.args(endpoints), "--json", "--duration", "40"], env=side.env)

    if not side.brokers:  # at a broker, publish connects as the device would, like every other role
        publisher = Proc([*FIELDCTL, *publish, *side.args()], env=side.env)
        try:
            bound = publisher.wait_json(lambda m: m["channel"] == "link" and m["kind"] == "bound", timeout=15)
        except AssertionError:  # it ended: a client with nobody to connect to
            assert publisher.wait() == 3, publisher.stderr_now()
        else:
            follower = listener({**side.endpoints, bound["endpoint"]: bound["payload"]["url"]})
            follower.wait_line(lambda line: _published(line, marker), timeout=25)
            assert publisher.wait(25) == 0
            follower.stop()
            return
    proc, reached = side.simulate("--no-timeline")
    follower = listener(reached)
    follower.wait_json(lambda m: m["channel"] == "link" and m["kind"] in ("ready", "connected", "registered"))
    sent = run_cli(*publish, *side.args(reached), env=side.env, timeout=60)
    assert sent.returncode == 0, sent.stderr
    try:  # a simulator that relays (a hub), else the simulator itself is the other side
        follower.wait_line(lambda line: _published(line, marker), timeout=10)
    except AssertionError:
        proc.wait_line(lambda line: _published(line, marker), timeout=10)
    follower.stop()
    assert proc.stop() == 0
