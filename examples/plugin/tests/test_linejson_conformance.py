"""linejson passes fieldctl's conformance kit: each check a test of its own, so a failing one
names itself and says why."""

from __future__ import annotations

import pytest

from fieldctl.testing import CHECKS, conformance_failures


@pytest.mark.parametrize("check", CHECKS)
def test_linejson_passes_the_conformance_check(check: str) -> None:
    assert conformance_failures("linejson", [check]) == []
