"""examples/prometheus/ as Prometheus itself reads it: promtool checks the site and central configs
(their commented alerting and remote-write blocks too) and the rules, and runs the rules' unit tests."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from tests.helpers.prometheus import prometheus_tool
from tests.helpers.repository import ROOT

EXAMPLES = ROOT / "examples" / "prometheus"


def promtool(*args: str | Path) -> str:
    done = subprocess.run(
        [prometheus_tool("promtool"), *map(str, args)], capture_output=True, check=False, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def test_site_and_central_configs_are_valid() -> None:
    out = promtool("check", "config", EXAMPLES / "site.yml", EXAMPLES / "central.yml")
    assert "SUCCESS: 2 rule files found" in out  # site.yml loads alerts.yml and recording.yml


def test_the_commented_blocks_are_valid(tmp_path: Path) -> None:
    """site.yml's commented alerting and remote_write blocks, uncommented, are a valid config too."""
    for name in ("alerts.yml", "recording.yml"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    text = (EXAMPLES / "site.yml").read_text()
    blocks = re.compile(r"(?m)^# (?:alerting|remote_write):\n(?:#   .*\n)+")
    assert len(blocks.findall(text)) == 2
    (tmp_path / "site.yml").write_text(blocks.sub(lambda block: re.sub(r"(?m)^# ", "", block.group(0)), text))
    assert "remote_write:\n" in (tmp_path / "site.yml").read_text()
    promtool("check", "config", tmp_path / "site.yml")


def test_rules_are_valid() -> None:
    out = promtool("check", "rules", EXAMPLES / "alerts.yml", EXAMPLES / "recording.yml")
    assert out.count("SUCCESS") == 2


def test_every_alert_has_unit_tests_and_they_pass() -> None:
    alerts = set(re.findall(r"(?m)^\s*- alert: (\w+)$", (EXAMPLES / "alerts.yml").read_text()))
    tested = set(re.findall(r"(?m)^\s*alertname: (\w+)$", (EXAMPLES / "alerts_test.yml").read_text()))
    assert alerts == tested, f"alerts without unit tests: {alerts - tested}"
    assert {"FieldctlDeviceDown", "FieldctlHeartbeatStale", "FieldctlMalformedRate", "FieldctlProbeCritical"} <= alerts
    assert "SUCCESS" in promtool("test", "rules", EXAMPLES / "alerts_test.yml")


def test_every_recording_rule_has_unit_tests_and_they_pass() -> None:
    recorded = set(re.findall(r"(?m)^\s*- record: (\S+)$", (EXAMPLES / "recording.yml").read_text()))
    tested = set(re.findall(r"(?m)^\s*- expr: (\S+)$", (EXAMPLES / "recording_test.yml").read_text()))
    assert recorded == tested, f"recording rules without unit tests: {recorded - tested}"
    assert "SUCCESS" in promtool("test", "rules", EXAMPLES / "recording_test.yml")
