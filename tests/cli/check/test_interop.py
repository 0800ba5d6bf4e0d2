"""`fieldctl check` against the REAL auto-trainer-api device package (its own venv and process, as
tests/protocols/autotrainer/test_interop_autotrainer.py runs it): the autotrainer example passes
against the device, not only against fieldctl's simulator of it."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers.autotrainer import Endpoints, start_device, stop_device
from tests.helpers.processes import run_cli
from tests.helpers.repository import ROOT

EXAMPLE = ROOT / "examples" / "checks" / "autotrainer.toml"


def test_the_autotrainer_example_passes_against_the_real_device(tmp_path: Path) -> None:
    endpoints = Endpoints()
    device = start_device(endpoints)
    try:
        report = tmp_path / "report.xml"
        result = run_cli("check", str(EXAMPLE), *endpoints.args, "--json", "--junit", str(report), timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        *steps, done = [json.loads(line) for line in result.stdout.splitlines()]
        assert [step["status"] for step in steps] == ["passed"] * len(steps) and done["exit"] == 0
        event = next(step for step in steps if step["action"] == "event")
        assert event["observed"]["payload"]["context"] == {"mode": 100}
        assert report.read_text().count("<testcase ") == len(steps)
    finally:
        stop_device(device)
