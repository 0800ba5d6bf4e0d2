"""`probe --format prometheus` for every profile against its simulator: one naming scheme
(`fieldctl_` prefix, seconds), HELP and TYPE for every family, label values escaped, and the
whole text accepted by Prometheus' own parser (prometheus_client) and by the format's rules."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.exposition import strictly_valid
from tests.helpers.fleets import ENV, endpoints
from tests.helpers.ports import free_port
from tests.helpers.processes import FIELDCTL, Proc, run_cli

FAMILIES = {
    "fieldctl_probe_status",
    "fieldctl_probe_duration_seconds",
    "fieldctl_probe_warning_seconds",
    "fieldctl_probe_critical_seconds",
}


@pytest.fixture
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="fcprom", dir="/tmp") as path:  # short: Unix socket paths
        yield Path(path)


@pytest.mark.parametrize("profile", ["autotrainer", "oneliner", "tracim", "sepl", "vantiq"])
def test_every_profile_speaks_one_scheme(profile: str, folder: Path) -> None:
    where = endpoints(profile, folder)
    simulator = Proc([*FIELDCTL, "simulate", profile, "--json", *where], env=ENV)
    for name in (arg.split("=")[0] for arg in where[1::2]):
        simulator.wait_json(lambda m, n=name: m["channel"] == "link" and m["kind"] == "bound" and m["endpoint"] == n)
    result = run_cli("probe", profile, "--format", "prometheus", "--crit", "10", *where, env=ENV)
    simulator.stop()
    assert result.returncode == 0, result.stdout + result.stderr
    families = strictly_valid(result.stdout)
    assert set(families) <= FAMILIES and {"fieldctl_probe_status", "fieldctl_probe_duration_seconds"} <= set(families)
    assert [s.value for s in families["fieldctl_probe_status"]] == [0]
    assert all(s.labels["profile"] == profile for samples in families.values() for s in samples)
    steps = [s.labels["step"] for s in families["fieldctl_probe_duration_seconds"]]
    assert steps and all(re.fullmatch(r"[a-z_]+", step) and not step.endswith(("_s", "_seconds")) for step in steps)
    assert families["fieldctl_probe_critical_seconds"][0].value == 10


def test_a_hostile_profile_name_is_escaped(folder: Path) -> None:
    hostile = 'rig "7" \\ back\nslash # {x="y"} 1'
    path = folder / "hostile.toml"
    path.write_text(f'extends = "autotrainer"\nname = """{hostile.replace(chr(92), chr(92) * 2)}"""\n')
    port = free_port()
    result = run_cli(
        "probe",
        hostile,
        "--profile-file",
        str(path),
        "--format",
        "prometheus",
        "--crit",
        "0.5",
        "--endpoint",
        f"events=tcp://127.0.0.1:{port}",
        "--endpoint",
        f"commands=tcp://127.0.0.1:{port}",
    )
    assert result.returncode == 2, result.stdout + result.stderr  # CRITICAL: nobody there
    families = strictly_valid(result.stdout)
    # The newline written out as a terminal shows it (escape.visible), then the quotes and backslash escaped.
    assert [s.labels["profile"] for s in families["fieldctl_probe_status"]] == [hostile.replace("\n", "\\x0a")]
    assert families["fieldctl_probe_status"][0].value == 2
