"""`probe --fleet FILE`: every target at once against simulators of several profiles, a line per
target, the worst status as exit code, and json/prometheus with a `target` label."""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fieldctl.profiles.targets import Target, load_fleet, write_fleet
from tests.helpers.exposition import strictly_valid
from tests.helpers.fleets import ENV, endpoint_urls, start_device
from tests.helpers.ports import free_port
from tests.helpers.processes import FIELDCTL, Proc, run_cli

PROFILES = {"at-1": "autotrainer", "at-2": "autotrainer", "tr-1": "tracim", "se-1": "sepl", "va-1": "vantiq"}


@pytest.fixture(scope="module")
def fleet() -> Iterator[Path]:
    """A fleet file of healthy simulated devices (group `up`) and one nobody serves (group `down`)."""
    with tempfile.TemporaryDirectory(prefix="fcfleet", dir="/tmp") as base:  # short: Unix socket paths
        folder = Path(base)
        targets, devices = [], []
        for name, profile in PROFILES.items():
            (folder / name).mkdir()
            urls = endpoint_urls(profile, folder / name)
            devices.append(start_device(profile, urls))
            targets.append(Target(name, profile, endpoints=urls, groups=("up", "all")))
        dead = {"events": f"tcp://127.0.0.1:{free_port()}", "commands": f"tcp://127.0.0.1:{free_port()}"}
        targets.append(Target("gone", "autotrainer", endpoints=dead, groups=("down", "all")))
        write_fleet(folder / "fleet.toml", targets)
        yield folder / "fleet.toml"
        for device in devices:
            device.stop()


def probe(fleet: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("probe", "--fleet", str(fleet), "--crit", "10", *args, env=ENV, timeout=60)


def test_a_healthy_group_is_ok_with_a_line_per_target(fleet: Path) -> None:
    result = probe(fleet, "--group", "up")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"FLEET OK - {len(PROFILES)} targets: {len(PROFILES)} OK"
    assert [line.split(" ")[:2] for line in lines[1:]] == [[name.upper(), "OK"] for name in PROFILES]


def test_one_target_down_makes_the_fleet_critical_and_it_is_quick(fleet: Path) -> None:
    started = time.monotonic()
    result = probe(fleet, "--format", "json")
    assert time.monotonic() - started < 30  # concurrent: not one probe after another
    assert result.returncode == 2, result.stdout + result.stderr
    rows = {row["target"]: row for row in map(json.loads, result.stdout.splitlines())}
    assert set(rows) == {*PROFILES, "gone"}
    assert rows["gone"]["status"] == "CRITICAL" and "cannot connect" in rows["gone"]["summary"]
    assert all(rows[name]["status"] == "OK" and rows[name]["profile"] == profile for name, profile in PROFILES.items())


def test_prometheus_has_a_target_label(fleet: Path) -> None:
    result = probe(fleet, "--format", "prometheus")
    assert result.returncode == 2
    families = strictly_valid(result.stdout)
    status = {sample.labels["target"]: sample.value for sample in families["fieldctl_probe_status"]}
    assert status == {**dict.fromkeys(PROFILES, 0), "gone": 2}
    assert all("target" in s.labels and "profile" in s.labels for samples in families.values() for s in samples)
    assert {s.labels["target"] for s in families["fieldctl_probe_duration_seconds"]} == set(PROFILES)


@pytest.mark.parametrize(
    "args, problem",
    [
        (("--group", "nobody"), "no target in group 'nobody'"),
        (("--endpoint", "events=tcp://127.0.0.1:1"), "--host and --endpoint"),
    ],
)
def test_fleet_usage_errors_are_unknown(fleet: Path, args: tuple[str, ...], problem: str) -> None:
    result = probe(fleet, *args)
    assert result.returncode == 3 and result.stdout.startswith("FLEET UNKNOWN - ") and problem in result.stdout


def test_a_missing_fleet_file_is_unknown(tmp_path: Path) -> None:
    result = run_cli("probe", "--fleet", str(tmp_path / "nope.toml"))
    assert result.returncode == 3 and "cannot read: No such file" in result.stdout


#: More targets than a wave of the exporter's 32: probed one wave after another, each waiting up to a
#: heartbeat interval (5 s), they took over 14 s; together, about one interval.
MANY = 96


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """`simulate autotrainer --devices MANY` and a fleet file of its devices plus two nobody serves."""
    folder = tmp_path_factory.mktemp("many")
    simulated = folder / "simulated.toml"
    argv = [*FIELDCTL, "simulate", "autotrainer", "--devices", str(MANY), "--no-timeline", "--json"]
    sim = Proc([*argv, "--write-fleet", str(simulated)], env=ENV)
    try:
        sim.wait_json(lambda m: m["endpoint"] == "fleet" and m["kind"] == "bound", timeout=60)
        targets = list(load_fleet(simulated).values())
        targets += [Target(name, "autotrainer", endpoints=dead_endpoints()) for name in ("sim-gone-7", "sim-gone-9")]
        write_fleet(folder / "fleet.toml", targets)
        yield folder / "fleet.toml"
    finally:
        sim.stop()


def dead_endpoints() -> dict[str, str]:
    return {"events": f"tcp://127.0.0.1:{free_port()}", "commands": f"tcp://127.0.0.1:{free_port()}"}


def test_a_large_fleet_is_probed_at_once_and_its_summary_names_the_failing_targets(many: Path) -> None:
    started = time.monotonic()
    result = run_cli("probe", "--fleet", str(many), env=ENV, timeout=60)
    took = time.monotonic() - started
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"FLEET CRITICAL - {MANY + 2} targets: {MANY} OK, 2 CRITICAL (sim-gone-7, sim-gone-9)"
    assert [line.split(" ")[:2] for line in lines[1:3]] == [["SIM-GONE-7", "CRITICAL"], ["SIM-GONE-9", "CRITICAL"]]
    assert all(" OK - " in line for line in lines[3:]) and len(lines) == MANY + 3
    assert took < 10, f"{MANY} probes took {took:.1f} s: not at once"


def test_the_summary_names_a_few_targets_and_counts_the_rest(tmp_path: Path) -> None:
    names = [f"down-{number}" for number in range(1, 8)]
    write_fleet(tmp_path / "fleet.toml", [Target(name, "autotrainer", endpoints=dead_endpoints()) for name in names])
    result = run_cli("probe", "--fleet", str(tmp_path / "fleet.toml"), "--crit", "3", env=ENV, timeout=60)
    assert result.returncode == 2
    assert result.stdout.splitlines()[0] == (
        "FLEET CRITICAL - 7 targets: 7 CRITICAL (down-1, down-2, down-3, down-4, down-5 and 2 more)"
    )


def test_json_lines_put_the_problems_first(fleet: Path) -> None:
    result = probe(fleet, "--format", "json")
    assert [json.loads(line)["target"] for line in result.stdout.splitlines()] == ["gone", *PROFILES]
