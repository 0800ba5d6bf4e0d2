"""The captured wire bytes in tests/fixtures (data), and the project's own protocol notes."""

from __future__ import annotations

import json
from typing import Any

from tests.helpers.repository import ROOT

FIXTURES = ROOT / "tests" / "fixtures"  # captured wire bytes, copied into the repository (data)
PROTOCOL_NOTES = ROOT / "docs" / "protocols"  # the project's own protocol notes


def load_fixture(profile: str, name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / profile / name).read_text())


def frames_of(entry: dict[str, Any]) -> list[bytes]:
    return [bytes.fromhex(frame["hex"]) for frame in entry["frames"]]
