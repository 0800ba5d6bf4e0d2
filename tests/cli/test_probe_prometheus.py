"""`probe --format prometheus` for every profile against its simulator: one naming scheme
(`fieldctl_` prefix, seconds), HELP and TYPE for every family, label values escaped, and the
whole text accepted by Prometheus' own parser (prometheus_client) and by the format's rules."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import FIELDCTL, Proc, free_port, run_cli
from fleet_helpers import ENV, endpoints
from prometheus_client.parser import text_string_to_metric_families

FAMILIES = {
    "fieldctl_probe_status",
    "fieldctl_probe_duration_seconds",
    "fieldctl_probe_warning_seconds",
    "fieldctl_probe_critical_seconds",
}

# The text exposition format, line by line (https://prometheus.io/docs/instrumenting/exposition_formats/).
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL_VALUE = r'"(?:[^"\\\n]|\\[\\"n])*"'
LABELS = rf"\{{(?:[a-zA-Z_][a-zA-Z0-9_]*={LABEL_VALUE}(?:,[a-zA-Z_][a-zA-Z0-9_]*={LABEL_VALUE})*)?\}}"
VALUE = r"(?:[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|Inf)|NaN)"
SAMPLE = re.compile(rf"^({NAME})(?:{LABELS})? {VALUE}$")
COMMENT = re.compile(rf"^# (HELP|TYPE) ({NAME}) (.*)$")


@pytest.fixture
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="fcprom", dir="/tmp") as path:  # short: Unix socket paths
        yield Path(path)


def strictly_valid(text: str) -> dict[str, list]:
    """Every line by the format's rules, then Prometheus' parser: family -> samples."""
    assert text.endswith("\n") and "\n\n" not in text
    typed: set[str] = set()
    helped: set[str] = set()
    for line in text.splitlines():
        comment = COMMENT.match(line)
        if comment:
            kind, name, rest = comment.groups()
            (typed if kind == "TYPE" else helped).add(name)
            assert kind != "TYPE" or rest in ("gauge", "counter", "untyped", "summary", "histogram"), line
            continue
        sample = SAMPLE.match(line)
        assert sample, f"not a valid sample line: {line!r}"
        assert sample.group(1) in typed and sample.group(1) in helped, f"{line!r} has no HELP and TYPE before it"
    families = {family.name: family.samples for family in text_string_to_metric_families(text)}
    assert set(families) == typed == helped
    return families


@pytest.mark.parametrize("profile", ["autotrainer", "oneliner", "tracim", "sepl", "vantiq"])
def test_every_profile_speaks_one_scheme(profile: str, folder: Path) -> None:
    where = endpoints(profile, folder)
    simulator = Proc([*FIELDCTL, "simulate", profile, "--json", *where], env=ENV)
    for name in where[1::2]:
        simulator.wait_json(
            lambda m, n=name.split("=")[0]: m["channel"] == "link" and m["kind"] == "bound" and m["endpoint"] == n
        )
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
    assert [s.labels["profile"] for s in families["fieldctl_probe_status"]] == [hostile]
    assert families["fieldctl_probe_status"][0].value == 2
