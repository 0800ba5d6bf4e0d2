"""A small fleet of real simulators of several profiles, on free loopback ports, and the fleet
file that reaches them (profiles.targets.write_fleet): two autotrainer rigs, a one-liner server,
and one target nobody serves ("gone"), for the fleet board and the exporter."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from conftest import FIELDCTL, Endpoints, Proc, free_port, start_simulator
from fieldctl.profiles.targets import Target, write_fleet

#: Fast heartbeats, so STALE and the probe's thresholds (crit = stale_after_s) fit a test.
RIG_SETS = {"heartbeat.interval_s": 0.3, "heartbeat.stale_after_s": 3}
LIVE = ("rig-1", "rig-2", "one")
DOWN = "gone"


@dataclass
class Fleet:
    path: Path
    procs: list[Proc]


def _oneliner(calls: str, streams: str) -> Proc:
    proc = Proc([*FIELDCTL, "simulate", "oneliner", "--json", "--endpoint", f"calls={calls}",
                 "--endpoint", f"streams={streams}"])
    for name in ("streams", "calls"):
        proc.wait_json(lambda m, name=name: m["channel"] == "link" and m["kind"] == "bound" and m["endpoint"] == name)
    return proc


def start_fleet(folder: Path) -> Fleet:
    targets, procs = [], []
    for name in ("rig-1", "rig-2"):
        where = Endpoints()
        procs.append(start_simulator(where))
        targets.append(Target(name, "autotrainer", endpoints={"events": where.events, "commands": where.commands},
                              sets=dict(RIG_SETS), groups=("room-1",)))
    calls, streams = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    procs.append(_oneliner(calls, streams))
    targets.append(Target("one", "oneliner", endpoints={"calls": calls, "streams": streams}, groups=("room-2",)))
    nowhere = Endpoints()  # free ports nobody listens on
    targets.append(Target(DOWN, "autotrainer", endpoints={"events": nowhere.events, "commands": nowhere.commands},
                          sets=dict(RIG_SETS), groups=("room-2",)))
    path = folder / "fleet.toml"
    write_fleet(path, targets)
    return Fleet(path, procs)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    started = start_fleet(tmp_path_factory.mktemp("fleet"))
    yield started
    for proc in started.procs:
        proc.stop()
