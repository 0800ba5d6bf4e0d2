"""Fleets on a machine whose soft limit on open files is the common 1,024: `listen --fleet` and the
exporter raise it to the hard limit and follow 2,000 simulated autotrainer targets; and every role
that runs many at once refuses, at start and in one line, what even the hard limit cannot hold."""

from __future__ import annotations

import json
import resource
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from fieldctl.profiles.targets import Target, write_fleet
from fieldctl.protocols.runtime.open_files import PROCESS, per_run
from fieldctl.protocols.runtime.registry import driver_class
from tests.helpers.ports import free_port
from tests.helpers.processes import FIELDCTL, Proc, cli_env, one_line
from tests.helpers.waiting import holds_within

TARGETS = 2000
#: A soft limit many machines start processes with.
COMMON_SOFT_LIMIT = 1024


def limited(soft: int, hard: int | None = None) -> list[str]:
    """A command line's prefix that runs it with RLIMIT_NOFILE's soft limit at `soft`, and its
    hard limit at `hard` (left as it is without)."""
    limits = f"ulimit -Sn {soft}" + (f" && ulimit -Hn {hard}" if hard is not None else "")
    return ["sh", "-c", f'{limits} && exec "$@"', "sh"]


@pytest.fixture(scope="module")
def big_fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """`simulate autotrainer --devices 2000 --write-fleet F` (it raises its own limit), once F is
    written (all bound). Its NDJSON goes nowhere: 2,000 heartbeats a second are not this test's."""
    device = per_run(driver_class("autotrainer"), "simulate")
    needed = TARGETS * (device + 1) + PROCESS  # its sockets, a follower's connection each, a wave of probes
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(f"the hard limit on open files ({hard}) cannot hold {TARGETS} simulated devices ({needed})")
    folder = tmp_path_factory.mktemp("big-fleet")
    path, log = folder / "fleet.toml", folder / "simulate.stderr"
    with log.open("w") as stderr:  # a file, not a pipe nobody reads: the simulator never blocks on it
        simulator = subprocess.Popen(
            [
                *FIELDCTL,
                "simulate",
                "autotrainer",
                "--devices",
                str(TARGETS),
                "--write-fleet",
                str(path),
                "--no-timeline",
                "--set",
                "heartbeat.interval_s=1",
            ],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env=cli_env(),
        )
    try:

        def bound() -> bool:  # the file is written at once (a rename) when every device is bound
            assert simulator.poll() is None, log.read_text()
            return path.exists()

        holds_within(bound, 120, f"{TARGETS} devices bound")
        yield path
    finally:
        simulator.terminate()
        simulator.wait(60)


def test_listen_follows_two_thousand_targets_under_a_soft_limit_of_1024(big_fleet: Path) -> None:
    result = subprocess.run(
        [
            *limited(COMMON_SOFT_LIMIT),
            *FIELDCTL,
            "listen",
            "--fleet",
            str(big_fleet),
            "--json",
            "--count",
            str(5 * TARGETS),  # five heartbeats a target: every one is heard long before
            "--timeout",
            "150",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env=cli_env(),
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    heard = {line["target"] for line in map(json.loads, result.stdout.splitlines()) if line["channel"] != "link"}
    assert len(heard) == TARGETS
    assert "Too many open files" not in result.stderr


def test_the_exporter_serves_two_thousand_targets_under_a_soft_limit_of_1024(big_fleet: Path) -> None:
    exporter = Proc(
        [
            *limited(COMMON_SOFT_LIMIT),
            *FIELDCTL,
            "export",
            "prometheus",
            "--fleet",
            str(big_fleet),
            "--listen",
            "127.0.0.1:0",
        ]
    )
    url = exporter.wait_line(lambda text: text.startswith("serving http://"), timeout=120).split()[1]
    holds_within(lambda: targets_up(url) == TARGETS, 120, f"{TARGETS} targets up", every=0.5)
    assert exporter.stop() == 0
    assert "Too many open files" not in exporter.popen.stderr.read()


def targets_up(url: str) -> int:
    """How many targets /metrics shows with fieldctl_up 1."""
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    return sum(
        sample.value == 1
        for family in text_string_to_metric_families(text)
        if family.name == "fieldctl_up"
        for sample in family.samples
    )


@pytest.fixture
def unreachable_fleet(tmp_path: Path) -> Path:
    """100 autotrainer targets on loopback ports nobody listens on: nothing is reached before the refusal."""
    path = tmp_path / "fleet.toml"
    port = free_port()
    write_fleet(
        path,
        [
            Target(
                f"rig-{n}",
                "autotrainer",
                endpoints={"events": f"tcp://127.0.0.1:{port}", "commands": f"tcp://127.0.0.1:{port}"},
            )
            for n in range(100)
        ],
    )
    return path


@pytest.mark.parametrize(
    "args, code",
    [
        (["listen", "--fleet", "{fleet}", "--json", "--timeout", "5"], 2),
        (["export", "prometheus", "--fleet", "{fleet}", "--listen", "127.0.0.1:0"], 2),
        (["probe", "--fleet", "{fleet}", "--crit", "2"], 3),  # Nagios: a fleet that cannot run is UNKNOWN
        (["simulate", "autotrainer", "--devices", "100", "--duration", "5"], 2),
        (["bench", "autotrainer", "command", "get-status", "--clients", "100", "--timeout", "2"], 2),
    ],
)
def test_what_the_hard_limit_cannot_hold_is_refused_at_start(
    args: list[str], code: int, unreachable_fleet: Path
) -> None:
    """soft = hard = 256: each says, in one line, how many it needs and how to raise the limit."""
    argv = [arg.format(fleet=unreachable_fleet) for arg in args]
    result = subprocess.run(
        [*limited(256, 256), *FIELDCTL, *argv],
        capture_output=True,
        text=True,
        timeout=30,
        env=cli_env(),
        check=False,
    )
    assert result.returncode == code, result.stdout + result.stderr
    line = one_line(result.stdout if code == 3 else result.stderr)
    assert "may open at most 256" in line and "ulimit -n" in line and "LimitNOFILE=" in line, line
    assert "need about" in line, line
