"""Simulated devices of every profile on private loopback endpoints, for the fleet tools' tests
(probe --fleet, bench): one `fieldctl simulate` process per device, waited on until bound; and a
small fleet of several profiles with the fleet file that reaches it (the board, the exporter):
two autotrainer rigs, a one-liner server and one target nobody serves ("gone")."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fieldctl.profiles.targets import Target, write_fleet
from tests.helpers.autotrainer import Endpoints, start_simulator
from tests.helpers.ports import free_port
from tests.helpers.processes import FIELDCTL, Proc, cli_env

SECRET = "fleet-test-secret"
#: The secrets the simulators and their clients read (the profiles' [auth] references).
ENV = cli_env(SEPL_PASSWORD=SECRET, CONNECTOR_AUTH_TOKEN=SECRET)


def endpoint_urls(profile: str, folder: Path) -> dict[str, str]:
    """Private endpoints for one device of `profile`; `folder` holds its Unix sockets (keep it short)."""
    port = free_port()
    return {
        "autotrainer": {"events": f"tcp://127.0.0.1:{port}", "commands": f"tcp://127.0.0.1:{free_port()}"},
        "oneliner": {"calls": f"tcp://127.0.0.1:{port}", "streams": f"tcp://127.0.0.1:{free_port()}"},
        "tracim": {"master": f"unix://{folder}/master.sock"},
        "sepl": {"platform": f"ws://127.0.0.1:{port}"},
        "vantiq": {"server": f"ws://127.0.0.1:{port}/api/v1/wsock/websocket"},
    }[profile]


def endpoint_args(urls: dict[str, str]) -> list[str]:
    """Endpoints as --endpoint arguments."""
    return [arg for name, url in urls.items() for arg in ("--endpoint", f"{name}={url}")]


def endpoints(profile: str, folder: Path) -> list[str]:
    """Private endpoints for one device of `profile`, as --endpoint arguments."""
    return endpoint_args(endpoint_urls(profile, folder))


def start_device(profile: str, urls: dict[str, str], *extra: str) -> Proc:
    """`fieldctl simulate PROFILE` on these endpoints, once every one is bound."""
    proc = Proc([*FIELDCTL, "simulate", profile, "--json", *endpoint_args(urls), *extra], env=ENV)
    for name in urls:
        proc.wait_json(lambda m, name=name: m["channel"] == "link" and m["kind"] == "bound" and m["endpoint"] == name)
    return proc


#: Fast heartbeats, so STALE and the probe's thresholds (crit = stale_after_s) fit a test.
RIG_SETS = {"heartbeat.interval_s": 0.3, "heartbeat.stale_after_s": 3}
LIVE = ("rig-1", "rig-2", "one")
DOWN = "gone"


@dataclass
class Fleet:
    path: Path
    procs: list[Proc]


def start_fleet(folder: Path) -> Fleet:
    targets, procs = [], []
    for name in ("rig-1", "rig-2"):
        where = Endpoints()
        procs.append(start_simulator(where))
        targets.append(
            Target(
                name,
                "autotrainer",
                endpoints={"events": where.events, "commands": where.commands},
                sets=dict(RIG_SETS),
                groups=("room-1",),
            )
        )
    urls = endpoint_urls("oneliner", folder)
    procs.append(start_device("oneliner", urls))
    targets.append(Target("one", "oneliner", endpoints=urls, groups=("room-2",)))
    nowhere = Endpoints()  # free ports nobody listens on
    targets.append(
        Target(
            DOWN,
            "autotrainer",
            endpoints={"events": nowhere.events, "commands": nowhere.commands},
            sets=dict(RIG_SETS),
            groups=("room-2",),
        )
    )
    path = folder / "fleet.toml"
    write_fleet(path, targets)
    return Fleet(path, procs)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    started = start_fleet(tmp_path_factory.mktemp("fleet"))
    yield started
    for proc in started.procs:
        proc.stop()


def simulate_devices(profile: str, devices: int, folder: Path, interval_s: float = 0.5) -> tuple[Proc, list[Target]]:
    """`simulate PROFILE --devices N --write-fleet` in one process, bound, and the targets it wrote
    (sim-001 ...), heartbeats every `interval_s`."""
    from fieldctl.profiles.targets import load_fleet

    written = folder / f"{profile}.toml"
    proc = Proc(
        [
            *FIELDCTL,
            "simulate",
            profile,
            "--devices",
            str(devices),
            "--write-fleet",
            str(written),
            "--json",
            "--set",
            f"heartbeat.interval_s={interval_s}",
        ],
        env=ENV,
    )
    proc.wait_json(
        lambda m: m["channel"] == "link" and m["kind"] == "bound" and m["endpoint"] == "fleet",
        timeout=30 + devices * 0.1,
    )
    return proc, list(load_fleet(written).values())


@dataclass
class SimulatedFleet:
    """`simulate autotrainer --devices N` in one process, and its fleet file (targets sim-001 ...)."""

    path: Path
    proc: Proc


def start_simulated_fleet(folder: Path, devices: int, *extra: Target) -> SimulatedFleet:
    """N simulated devices; the fleet file holds their targets and `extra` ones besides."""
    proc, targets = simulate_devices("autotrainer", devices, folder)
    path = folder / "fleet.toml"
    write_fleet(path, [*targets, *extra])
    return SimulatedFleet(path, proc)
