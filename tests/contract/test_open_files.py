"""`Driver.open_files`, held against every installed protocol: what `simulate --devices`, `listen
--fleet` and `probe --fleet` really hold open (counted in /proc) stays within what the fleets
multiply, so no fleet the limit admits runs out. That every role a driver plays declares its
figure is the conformance kit's `roles` check (fieldctl.testing)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from fieldctl.profiles import load_profile
from fieldctl.protocols.runtime.open_files import per_run
from fieldctl.protocols.runtime.registry import driver_class, protocol_names
from fieldctl.protocols.runtime.simulated_fleet import device_names
from tests.helpers.fleets import ENV
from tests.helpers.processes import FIELDCTL, Proc

PROTOCOLS = protocol_names()
#: Devices, and targets: more than the slack below, so one descriptor a target too few shows.
DEVICES = 12
#: What a fieldctl process holds besides its devices or targets (about a dozen, measured).
BASE = 16


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class Peak:
    """The most descriptors a process held, sampled from a thread until it ends (a sample may
    miss a moment: the figure is never above the truth)."""

    def __init__(self, proc: Proc) -> None:
        self.proc, self.most = proc, 0
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        while self.proc.popen.poll() is None:
            try:
                self.most = max(self.most, open_files(self.proc.popen.pid))
            except OSError:  # it ended between the poll and the count
                return
            time.sleep(0.002)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_fleet_holds_no_more_open_files_than_its_driver_declares(
    protocol: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    driver = driver_class(protocol)
    fleet = tmp_path / "fleet.toml"
    simulate = ["simulate", protocol, "--devices", str(DEVICES), "--write-fleet", str(fleet), "--json"]
    brokers = load_profile(protocol).broker_endpoints  # the devices share the tests' broker
    simulate += [f"--endpoint={name}={request.getfixturevalue('mosquitto').url}" for name in brokers]
    simulator = Proc([*FIELDCTL, *simulate, "--set", "heartbeat.interval_s=0.5"], env=ENV)
    simulator.wait_json(lambda m: m["channel"] == "link" and m["endpoint"] == "fleet", timeout=60)
    assert open_files(simulator.popen.pid) <= BASE + DEVICES * per_run(driver, "simulate")

    prober = Proc([*FIELDCTL, "probe", "--fleet", str(fleet), "--crit", "5", "--format", "json"], env=ENV)
    probes = Peak(prober)
    if per_run(driver, "listen"):
        follower = Proc([*FIELDCTL, "listen", "--fleet", str(fleet), "--json", "--duration", "60"], env=ENV)
        listens = Peak(follower)
        unheard = set(device_names(DEVICES))
        while unheard:
            heard = follower.wait_json(lambda m: m["channel"] != "link" and m["target"] in unheard, timeout=30)
            unheard.discard(heard["target"])
        follower.stop()
        listens.thread.join(5)
        assert 0 < listens.most <= BASE + DEVICES * per_run(driver, "listen")
    prober.wait(30)
    probes.thread.join(5)
    assert 0 < probes.most <= BASE + DEVICES * per_run(driver, "probe")
    assert simulator.stop() == 0
