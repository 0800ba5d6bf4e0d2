"""The monitoring round trip: `simulate --devices` runs fleets of two profiles, `export prometheus`
watches them, a real Prometheus scrapes the exporter and evaluates examples/prometheus/'s rules, a
second one federates it as a central would; every check reads the fieldctl series back through
Prometheus' HTTP API. A simulated fleet is one process, so the device that is down is a fleet-file
target on ports nobody listens on."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from fieldctl.profiles.targets import Target, write_fleet
from tests.helpers.autotrainer import Endpoints
from tests.helpers.fleets import simulate_devices
from tests.helpers.ports import free_port
from tests.helpers.processes import FIELDCTL, Proc
from tests.helpers.prometheus import Prometheus
from tests.helpers.repository import ROOT

JOB = "fieldctl"
SITE = "room-1"
EXAMPLES = ROOT / "examples" / "prometheus"
#: The simulated fleet: profile -> devices (the names in its fleet file become PROFILE-N).
DEVICES = {"autotrainer": 3, "oneliner": 2}


@dataclass
class Stack:
    """What Prometheus scrapes (host:port) and the targets the exporter reports on: name -> profile."""

    address: str
    profiles: dict[str, str]
    dead: str

    @property
    def live(self) -> list[str]:
        return [name for name in self.profiles if name != self.dead]


def federated() -> list[str]:
    """central.yml's match[] selectors (one quoted YAML scalar a line, no escapes)."""
    block = (EXAMPLES / "central.yml").read_text().split('"match[]":\n', 1)[1]
    selectors = []
    for line in block.splitlines():
        item = re.match(r"\s+- (['\"])(.*?)\1\s*(?:#.*)?$", line)
        if item is None:
            break
        selectors.append(item.group(2))
    assert selectors, "central.yml federates match[] selectors"
    return selectors


def check_round_trip(prometheus: Callable[..., Prometheus], stack: Stack) -> None:
    prom = prometheus(
        [stack.address], job=JOB, rule_files=[EXAMPLES / "alerts.yml", EXAMPLES / "recording.yml"], site=SITE
    )
    prom.wait_for(f'up{{job="{JOB}"}}', lambda up: up == {stack.address: 1}, label="instance")

    expected = {**dict.fromkeys(stack.live, 1.0), stack.dead: 0.0}
    prom.wait_for("fieldctl_up", lambda up: up == expected)
    series = prom.query("fieldctl_up")
    assert {entry["metric"]["target"]: entry["metric"]["profile"] for entry in series} == stack.profiles
    assert {entry["metric"]["job"] for entry in series} == {JOB}

    count = "sum by (target) (fieldctl_messages_total)"
    before = prom.wait_for(count, lambda seen: set(stack.live) <= set(seen))
    prom.wait_for(count, lambda now: all(now[name] > before[name] for name in stack.live))

    beating = [name for name in stack.live if stack.profiles[name] == "autotrainer"]
    ages = prom.wait_for("fieldctl_heartbeat_age_seconds", lambda age: set(beating) <= set(age))
    assert all(0 <= ages[name] < 5 for name in beating), ages

    prom.wait_for("fieldctl_probe_status", lambda status: status == {**dict.fromkeys(stack.live, 0.0), stack.dead: 2.0})

    # The example alerts speak the exporter's names: the dead device's are pending (their `for` is longer).
    for alert in ("FieldctlDeviceDown", "FieldctlProbeCritical", "FieldctlHeartbeatStale"):
        prom.wait_for(f'ALERTS{{alertname="{alert}", alertstate="pending"}}', lambda fired: set(fired) == {stack.dead})

    # Above the site, a central Prometheus pulls its /federate as examples/prometheus/central.yml does.
    central = prometheus([prom.address], job="fieldctl-sites", federate=federated())
    summary = {
        profile: float(sum(1 for name in stack.live if stack.profiles[name] == profile))
        for profile in set(stack.profiles.values())
    }
    central.wait_for(f'profile:fieldctl_up:sum{{site="{SITE}"}}', lambda up: up == summary, label="profile")
    central.wait_for(f'fieldctl_up{{site="{SITE}", job="{JOB}"}}', lambda up: up == expected)
    central.wait_for(
        f'ALERTS{{site="{SITE}", alertname="FieldctlDeviceDown"}}', lambda fired: set(fired) == {stack.dead}
    )


def simulate(profile: str, devices: int, folder: Path) -> tuple[Proc, list[Target]]:
    """`simulate PROFILE --devices N --write-fleet`, its targets renamed PROFILE-N (each fleet names its
    devices sim-001...)."""
    proc, targets = simulate_devices(profile, devices, folder, 0.3)
    assert len(targets) == devices
    return proc, [replace(target, name=f"{profile}-{n}") for n, target in enumerate(targets, 1)]


@pytest.fixture
def fieldctl_stack(tmp_path: Path) -> Iterator[Stack]:
    """Simulated fleets of two profiles and one dead target, with `export prometheus` over them all."""
    devices, targets = [], []
    for profile, count in DEVICES.items():
        proc, simulated = simulate(profile, count, tmp_path)
        devices.append(proc)
        targets += simulated
    nowhere = Endpoints()  # ports nobody listens on; stale and CRITICAL after 2 s, not the profile's 15
    targets.append(
        Target(
            "dead",
            "autotrainer",
            endpoints={"events": nowhere.events, "commands": nowhere.commands},
            sets={"heartbeat.interval_s": 0.3, "heartbeat.stale_after_s": 2},
        )
    )
    fleet = tmp_path / "fleet.toml"
    write_fleet(fleet, targets)

    address = f"127.0.0.1:{free_port()}"
    exporter = Proc(
        [*FIELDCTL, "export", "prometheus", "--fleet", str(fleet), "--listen", address, "--probe-interval", "1"]
    )
    bound = exporter.wait_line(lambda line: "http://" in line, timeout=30)
    assert re.search(rf"http://{re.escape(address)}\b", bound), bound
    yield Stack(address, {target.name: target.profile for target in targets}, "dead")
    assert exporter.stop() == 0, exporter.stderr_now()
    for proc in devices:
        proc.stop()


def test_prometheus_scrapes_the_exporter_over_simulated_fleets(
    prometheus: Callable[..., Prometheus], fieldctl_stack: Stack
) -> None:
    check_round_trip(prometheus, fieldctl_stack)
