"""Typer's pydantic conversion is skipped only where there is nothing to convert."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers.processes import run_cli

PROBE = """
import sys
from fieldctl.cli.app import app
try:
    app(["profiles", "show", "autotrainer"], standalone_mode=False)
finally:
    sys.stdout.flush()
    sys.stderr.write("pydantic imported\\n" if "pydantic" in sys.modules else "no pydantic\\n")
"""


def test_texts_need_no_pydantic() -> None:
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, check=False, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().endswith("no pydantic")


def test_numbers_keep_typers_conversion_and_messages() -> None:
    result = run_cli(
        "command", "autotrainer", "get-status", "--timeout", "-1", "--endpoint", "commands=tcp://127.0.0.1:9"
    )
    assert result.returncode == 2 and "greater than or equal to 0" in result.stderr
    result = run_cli("listen", "autotrainer", "--count", "x")
    assert result.returncode == 2 and "valid integer" in result.stderr
