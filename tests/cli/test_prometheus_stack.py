"""The monitoring round trip: `simulate --devices` runs a fleet, `export prometheus` watches it, a real
Prometheus scrapes the exporter and evaluates examples/prometheus/alerts.yml; every check reads the
fieldctl series back through Prometheus' HTTP API. The fleet is one process, so the device that is
down is a fleet-file target on a port nobody listens on."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pytest
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from conftest import FIELDCTL, ROOT, Proc, free_port, run_cli
from fieldctl.profiles.targets import Target, load_fleet, write_fleet
from prometheus_helpers import Prometheus

JOB = "fieldctl"
ALERTS = ROOT / "examples" / "prometheus" / "alerts.yml"
DEVICES = 3


@dataclass
class Stack:
    """What Prometheus scrapes (host:port) and the targets the exporter reports on."""

    address: str
    live: list[str]
    dead: str


def check_round_trip(prometheus: Callable[..., Prometheus], stack: Stack) -> None:
    prom = prometheus([stack.address], job=JOB, rule_files=[ALERTS])
    prom.wait_for(f'up{{job="{JOB}"}}', lambda up: up == {stack.address: 1}, label="instance")

    expected = {**{name: 1.0 for name in stack.live}, stack.dead: 0.0}
    prom.wait_for("fieldctl_up", lambda up: up == expected)
    assert {entry["metric"]["profile"] for entry in prom.query("fieldctl_up")} == {"autotrainer"}
    assert {entry["metric"]["job"] for entry in prom.query("fieldctl_up")} == {JOB}

    rate = "sum by (target) (fieldctl_messages_total)"
    before = prom.wait_for(rate, lambda seen: set(stack.live) <= set(seen))
    prom.wait_for(rate, lambda now: all(now[name] > before[name] for name in stack.live))

    ages = prom.wait_for("fieldctl_heartbeat_age_seconds", lambda age: set(stack.live) <= set(age))
    assert all(0 <= ages[name] < 5 for name in stack.live), ages

    prom.wait_for("fieldctl_probe_status", lambda status: status == {**{n: 0.0 for n in stack.live}, stack.dead: 2.0})

    # The example alerts speak the exporter's names: the dead device's are pending (their `for` is minutes).
    for alert in ("FieldctlDeviceDown", "FieldctlProbeCritical"):
        prom.wait_for(f'ALERTS{{alertname="{alert}", alertstate="pending"}}', lambda fired: set(fired) == {stack.dead})
    assert prom.values('ALERTS{alertname="FieldctlHeartbeatStale"}') == {}


def wait_for_file(path: Path, writer: Proc, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if writer.popen.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"no {path.name} within {timeout} s; stderr: {writer.stderr_now()}")
        time.sleep(0.1)


@pytest.fixture
def fieldctl_stack(tmp_path: Path) -> Iterator[Stack]:
    """`simulate autotrainer --devices 3` and `export prometheus` over its fleet plus one dead target."""
    if run_cli("export", "--help").returncode != 0:
        pytest.skip("needs export prometheus")
    written = tmp_path / "simulated.toml"
    devices = Proc([*FIELDCTL, "simulate", "autotrainer", "--devices", str(DEVICES), "--write-fleet", str(written),
                    "--set", "heartbeat.interval_s=0.3", "--set", "simulate.event_interval_s=0.2"])
    wait_for_file(written, devices)
    live = load_fleet(written)
    assert len(live) == DEVICES
    nobody = {"events": f"tcp://127.0.0.1:{free_port()}", "commands": f"tcp://127.0.0.1:{free_port()}"}
    dead = Target("dead", "autotrainer", endpoints=nobody,  # crit after 2 s: the probe's verdict comes soon
                  sets={"heartbeat.interval_s": 0.5, "heartbeat.stale_after_s": 2})
    fleet = tmp_path / "fleet.toml"
    write_fleet(fleet, [*live.values(), dead])

    address = f"127.0.0.1:{free_port()}"
    exporter = Proc([*FIELDCTL, "export", "prometheus", "--fleet", str(fleet), "--listen", address,
                     "--probe-interval", "1"])
    bound = exporter.wait_line(lambda line: "http://" in line, timeout=30)
    assert re.search(rf"http://{re.escape(address)}\b", bound), bound
    yield Stack(address, list(live), dead.name)
    assert exporter.stop() == 0, exporter.stderr_now()
    devices.stop()


def test_prometheus_scrapes_the_exporter_over_a_simulated_fleet(prometheus: Callable[..., Prometheus],
                                                                fieldctl_stack: Stack) -> None:
    check_round_trip(prometheus, fieldctl_stack)


class StandIn:
    """The exporter's families and labels, for three live targets and a dead one, served by
    prometheus_client on loopback. It stands in for `fieldctl export prometheus` until that merges
    (the lead then deletes it, its test and the skip above)."""

    def __init__(self, live: list[str], dead: str) -> None:
        self.live, self.dead, self.started = live, dead, time.monotonic()

    def collect(self) -> Iterator[Metric]:
        elapsed = time.monotonic() - self.started
        labels = ["target", "profile"]
        up = GaugeMetricFamily("fieldctl_up", "1 while the target is reachable", labels=labels)
        age = GaugeMetricFamily("fieldctl_heartbeat_age_seconds", "since the last heartbeat", labels=labels)
        probe = GaugeMetricFamily("fieldctl_probe_status", "Nagios status of the last probe", labels=labels)
        messages = CounterMetricFamily("fieldctl_messages", "messages received", labels=[*labels, "channel", "kind"])
        for name in self.live:
            up.add_metric([name, "autotrainer"], 1)
            age.add_metric([name, "autotrainer"], elapsed % 0.3)
            probe.add_metric([name, "autotrainer"], 0)
            messages.add_metric([name, "autotrainer", "heartbeat", "heartbeat"], elapsed // 0.3)
        up.add_metric([self.dead, "autotrainer"], 0)
        probe.add_metric([self.dead, "autotrainer"], 2)
        yield from (up, age, probe, messages)


@pytest.fixture
def stand_in_stack() -> Iterator[Stack]:
    stack = Stack(f"127.0.0.1:{free_port()}", [f"sim-{n}" for n in range(DEVICES)], "dead")
    registry = CollectorRegistry()
    registry.register(StandIn(stack.live, stack.dead))
    host, port = stack.address.split(":")
    server, thread = start_http_server(int(port), host, registry)
    yield stack
    server.shutdown()
    server.server_close()
    thread.join(10)


def test_prometheus_round_trip_against_a_stand_in_exporter(prometheus: Callable[..., Prometheus],
                                                           stand_in_stack: Stack) -> None:
    check_round_trip(prometheus, stand_in_stack)
