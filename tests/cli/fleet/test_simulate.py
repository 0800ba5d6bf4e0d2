"""`simulate PROFILE --devices N --write-fleet FILE`: N devices in one process, for every installed
protocol, and a fleet file whose targets reach each one (a client names the target, as a user
would once the fleet is their targets.toml)."""

from __future__ import annotations

import itertools
import json
import random
import re
import socket
import stat
from pathlib import Path
from typing import Any

import pytest

from fieldctl.profiles import load_profile
from fieldctl.profiles.targets import load_fleet
from fieldctl.protocols.runtime.registry import protocol_names
from tests.helpers.ports import free_port
from tests.helpers.processes import FIELDCTL, Proc, cli_env, invoke, lines_of, run_cli
from tests.helpers.terminals import last_frame

PROTOCOLS = protocol_names()
#: How each device is asked to show it was reached: a probe, except where a probe leaves no trace
#: on the device's side (the plugin's hub only sends, the MQTT device is only read; a command shows there).
POKE = {"linejson": ["command", "{target}", "ping"], "mqtt": ["command", "{target}", "ping"]}


def is_summary(line: dict[str, Any]) -> bool:
    return line["channel"] == "link" and line["kind"] == "bound" and line["endpoint"] == "fleet"


class Fleet:
    """A `simulate --devices` process whose fleet file is the saved targets of the clients' config."""

    def __init__(self, profile: str, folder: Path, devices: int, *extra: str) -> None:
        self.profile, self.devices = profile, devices
        self.env = cli_env(XDG_CONFIG_HOME=str(folder / "config"))
        for ref in load_profile(profile).auth.values():
            if ref.env:
                self.env[ref.env] = "fieldctl-fleet-test"
        self.file = folder / "config" / "fieldctl" / "targets.toml"
        self.proc = Proc(
            [
                *FIELDCTL,
                "simulate",
                profile,
                "--devices",
                str(devices),
                "--write-fleet",
                str(self.file),
                "--json",
                "--set",
                "heartbeat.interval_s=0.5",
                *extra,
            ],
            env=self.env,
        )
        self.summary = self.proc.wait_json(is_summary, timeout=30 + devices * 0.1)

    def cli(self, *args: str) -> Any:
        return run_cli(*args, env=self.env, timeout=60)


@pytest.mark.parametrize("profile", PROTOCOLS)
def test_each_target_of_the_fleet_file_reaches_its_own_device(
    profile: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    brokers = load_profile(profile).broker_endpoints  # the devices share the tests' broker
    shared = [f"--endpoint={name}={request.getfixturevalue('mosquitto').url}" for name in brokers]
    fleet = Fleet(profile, tmp_path, 3, "--group", "bench-room", *shared)
    assert fleet.summary["payload"] == {"devices": 3, "fleet": str(fleet.file)}
    targets = load_fleet(fleet.file, group="bench-room")
    assert list(targets) == ["sim-001", "sim-002", "sim-003"]
    assert {target.profile for target in targets.values()} == {profile}
    if brokers:
        sets = [target.sets for target in targets.values()]
        assert all(one["heartbeat.interval_s"] == 0.5 for one in sets)
        assert len({tuple(sorted(one.items())) for one in sets}) == len(sets), "every device its own settings"
    else:
        assert all(target.sets == {"heartbeat.interval_s": 0.5} for target in targets.values())
        urls = [url for target in targets.values() for url in target.endpoints.values()]
        assert len(set(urls)) == len(urls), "every device on its own addresses"
    for name in reversed(targets):
        poke = [part.format(target=name) for part in POKE.get(profile, ["probe", "{target}", "--crit", "8"])]
        result = fleet.cli(*poke)
        assert result.returncode == 0, result.stdout + result.stderr
        reached = fleet.proc.wait_json(lambda m, name=name: m.get("target") == name and m["direction"] == "in")
        assert reached["profile"] == profile
    assert fleet.proc.stop() == 0
    assert "Traceback" not in fleet.proc.popen.stderr.read()


def test_listen_through_a_target_hears_that_device(tmp_path: Path) -> None:
    """autotrainer heartbeats carry an identifier: each device sends its own name."""
    record = tmp_path / "record.ndjson"
    fleet = Fleet("autotrainer", tmp_path, 3, "--no-timeline", "--record", str(record))
    result = fleet.cli(
        "listen", "sim-002", "--json", "--count", "1", "--filter", "channel=heartbeat", "--timeout", "20"
    )
    assert result.returncode == 0, result.stderr
    beat = json.loads(result.stdout.splitlines()[-1])
    assert beat["payload"]["identifier"] == "sim-002"
    beating = {"sim-001", "sim-002", "sim-003"}
    while beating:  # every device has beaten (and so is in the record) before the fleet stops
        beating.discard(
            fleet.proc.wait_json(lambda m: m["channel"] == "heartbeat" and m.get("target") in beating, timeout=20)[
                "target"
            ]
        )
    assert fleet.proc.stop() == 0
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    assert sum(map(is_summary, lines)) == 1, "one bound line for the fleet, none per device"
    assert {line.get("target") for line in lines if not is_summary(line)} == {"sim-001", "sim-002", "sim-003"}


def test_the_fleet_file_is_its_owners_and_replaces_a_link_at_its_name(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    planted = tmp_path / "config" / "fieldctl" / "targets.toml"
    planted.parent.mkdir(parents=True)
    planted.symlink_to(victim)
    fleet = Fleet("autotrainer", tmp_path, 2, "--no-timeline")
    assert victim.read_text() == "precious\n"
    assert not fleet.file.is_symlink() and stat.S_IMODE(fleet.file.stat().st_mode) == 0o600
    assert list(load_fleet(fleet.file)) == ["sim-001", "sim-002"]
    assert fleet.proc.stop() == 0
    assert sorted(path.name for path in fleet.file.parent.iterdir()) == ["targets.toml"]


def test_two_hundred_devices_bind_and_beat(tmp_path: Path) -> None:
    fleet = Fleet("autotrainer", tmp_path, 200, "--no-timeline")
    targets = load_fleet(fleet.file)
    assert len(targets) == 200 and list(targets)[-1] == "sim-200"
    beating = set(targets)
    while beating:
        beat = fleet.proc.wait_json(lambda m: m["channel"] == "heartbeat" and m.get("target") in beating, timeout=20)
        assert beat["payload"]["identifier"] == beat["target"]
        beating.discard(beat["target"])
    result = fleet.cli("probe", "sim-150", "--crit", "8")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "sim-150" in result.stdout
    assert fleet.proc.stop() == 0


@pytest.mark.parametrize(
    "args, named",
    [
        (["--write-fleet", "f.toml"], "--devices"),
        (["--devices", "2", "--control", "c.sock"], "--control"),
        (["--devices", "2", "--host", "0.0.0.0"], "--host"),
        (["--devices", "2", "--endpoint", "events=tcp://127.0.0.1:9"], "--endpoint events: --devices puts events"),
        (["--devices", "0"], "--devices"),
        (
            [
                "--devices",
                "2",
                "--base-port",
                "7000",
                "--set",
                "topology.events=broker",
                "--set=topology.commands=broker",
            ],
            "--base-port: the autotrainer devices bind no port (they share the broker at commands, events)",
        ),
    ],
)
def test_fleet_options_that_do_not_go_together(args: list[str], named: str, tmp_path: Path) -> None:
    result = invoke(  # in this process: refused before anything binds
        "simulate", "autotrainer", *(str(tmp_path / a) if a.endswith((".toml", ".sock")) else a for a in args)
    )
    assert result.returncode == 2 and named in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_base_port_gives_consecutive_ports_and_a_busy_one_is_a_usage_error(tmp_path: Path) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    busy = holder.getsockname()[1]
    holder.listen()
    try:
        refused = run_cli("simulate", "autotrainer", "--devices", "2", "--base-port", str(busy), "--duration", "1")
        assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and f"port {busy} " in refused.stderr
    finally:
        holder.close()
    start = free_run(4)
    fleet = Fleet("oneliner", tmp_path, 2, "--base-port", str(start))
    try:
        ports = [
            int(url.rsplit(":", 1)[1])
            for target in load_fleet(fleet.file).values()
            for url in target.endpoints.values()
        ]
        assert ports == list(range(start, start + 4))
        assert fleet.cli("probe", "sim-002", "--crit", "8").returncode == 0
    finally:
        fleet.proc.stop()


def test_the_fleet_file_points_every_target_at_the_shared_broker(tmp_path: Path) -> None:
    """autotrainer's events marked a broker's (its simulator binds it, so one device): the target
    keeps the line's URL and the topology, and a client of the target hears the device there."""
    url = f"tcp://127.0.0.1:{free_port()}"
    fleet = Fleet("autotrainer", tmp_path, 1, "--set", "topology.events=broker", "--endpoint", f"events={url}")
    try:
        (target,) = load_fleet(fleet.file).values()
        assert target.endpoints["events"] == url and target.endpoints["commands"] != url
        assert target.sets == {"heartbeat.interval_s": 0.5, "topology.events": "broker"}
        heard = fleet.cli("listen", "sim-001", "--json", "--count", "1", "--filter", "channel=heartbeat")
        assert heard.returncode == 0, heard.stderr
        assert any(line["kind"] == "connected" and line["payload"]["url"] == url for line in lines_of(heard.stdout))
    finally:
        fleet.proc.stop()


def test_a_fleet_whose_endpoints_are_all_a_brokers_keeps_them_all(tmp_path: Path) -> None:
    """Every endpoint a broker's (autotrainer's simulator binds them, so one device): the target
    carries the line's URLs, and reaches the device there."""
    start = free_run(2)
    urls = {"events": f"tcp://127.0.0.1:{start}", "commands": f"tcp://127.0.0.1:{start + 1}"}
    shared = [
        arg for name, url in urls.items() for arg in ("--set", f"topology.{name}=broker", "--endpoint", f"{name}={url}")
    ]
    fleet = Fleet("autotrainer", tmp_path, 1, *shared)
    try:
        assert fleet.summary["payload"]["devices"] == 1
        assert load_fleet(fleet.file)["sim-001"].endpoints == urls
        assert fleet.cli("probe", "sim-001", "--crit", "8").returncode == 0
    finally:
        fleet.proc.stop()


def free_run(length: int) -> int:
    """The first of `length` consecutive ports free now, below the ephemeral range (the system
    hands out ports there to any socket at any time; a run taken from it raced other tests). Where
    the search starts is the system's randomness, not `random`'s, which pytest-randomly reseeds
    from the run's seed before every test (two runs given one seed would start alike)."""
    for start in range(random.SystemRandom().randrange(20000, 30000, 16), 32000, 16):
        sockets = []
        try:
            for port in range(start, start + length):
                sockets.append(socket.socket())
                sockets[-1].bind(("127.0.0.1", port))
            return start
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise AssertionError(f"no {length} consecutive free ports between 20000 and 32000")


def fleet_events(seed: int) -> dict[str, list[dict[str, Any]]]:
    """The built-in timeline's events of a 5-device autotrainer fleet over 2.5 s, per device."""
    result = run_cli(
        "simulate",
        "autotrainer",
        "--devices",
        "5",
        "--json",
        "--duration",
        "2.5",
        "--set",
        "simulate.event_interval_s=0.2",
        "--set",
        f"simulate.seed={seed}",
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    events: dict[str, list[dict[str, Any]]] = {}
    for line in map(json.loads, result.stdout.splitlines()):
        if line["channel"] == "event":
            events.setdefault(line["target"], []).append(line)
    assert sorted(events) == ["sim-001", "sim-002", "sim-003", "sim-004", "sim-005"]
    return events


def sequence(events: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    """What a device's timeline said, without when: each event's kind and session."""
    return [(event["kind"], (event["payload"]["context"] or {}).get("sessionId")) for event in events[:6]]


def test_a_simulated_fleets_devices_each_live_their_own_repeatable_timeline() -> None:
    """Each device its own sessions and its own phase, not one device's events N times at once;
    the same seed gives every device the same run again, another seed another one."""
    first = fleet_events(7)
    sessions = {name: next(s for _, s in sequence(events) if s) for name, events in first.items()}
    assert len(set(sessions.values())) == 5, sessions
    starts = sorted(events[0]["ts"] for events in first.values())
    assert all(later - earlier > 0.001 for earlier, later in itertools.pairwise(starts)), starts
    assert starts[-1] - starts[0] > 0.02, "spread over the interval, not started together"
    again = fleet_events(7)
    assert {name: sequence(events) for name, events in again.items()} == {
        name: sequence(events) for name, events in first.items()
    }
    other = fleet_events(8)
    assert not {next(s for _, s in sequence(events) if s) for events in other.values()} & set(sessions.values())


@pytest.mark.parametrize("cols", [160, 80, 60])
def test_the_panel_sums_up_the_fleet(cols: int, terminals, tmp_path: Path) -> None:
    """On a terminal: how many devices are up, the messages per second, how many devices have a
    client (one `listen` here, at full width) and the errors; not one device's heartbeat."""
    env = cli_env(XDG_CONFIG_HOME=str(tmp_path / "config"))
    fleet_file = tmp_path / "config" / "fieldctl" / "targets.toml"
    argv = [*FIELDCTL, "simulate", "autotrainer", "--devices", "5", "--write-fleet", str(fleet_file)]
    term = terminals([*argv, "--set", "heartbeat.interval_s=0.5"], cols=cols, env=env)

    def panel(text: str) -> str:
        title = "fieldctl simulate autotrainer"
        return " ".join(last_frame(text, title).split()) if title in text else ""

    term.wait_for(lambda text: "5 of 5 up" in panel(text) and "on 0 of 5 devices" in panel(text), timeout=30)
    frame = panel(term.text)
    assert re.search(r"messages [1-9]\d*/s", frame) and "errors 0 (malformed 0, warnings 0)" in frame, frame
    assert "sim-001 0.12.0 sent age" not in frame, "no single device's heartbeat stands for the fleet"
    if cols == 160:
        client = Proc([*FIELDCTL, "listen", "sim-002", "--json"], env=env)
        try:
            term.wait_for(lambda text: "on 1 of 5 devices" in panel(text), timeout=30)
        finally:
            client.stop()
    assert term.stop() == 0
