"""The real peer packages, each in its own venv under .peers/ (built by `make peers`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.repository import ROOT

PEERS = ROOT / ".peers"
#: The scripts each peer's interpreter runs.
SCRIPTS = ROOT / "tests" / "peers"


def peer_python(name: str) -> Path:
    """The interpreter of a real peer's own venv, built by `make test` (`make peers`)."""
    path = PEERS / name / "bin" / "python"
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make peers` (make test builds it)")
    return path
