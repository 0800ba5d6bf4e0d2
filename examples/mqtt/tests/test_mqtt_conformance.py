"""mqtt passes fieldctl's conformance kit with its broker endpoint at the tests' own mosquitto:
each check a test of its own, so a failing one names itself and says why."""

from __future__ import annotations

import pytest

from fieldctl.testing import CHECKS, conformance_failures
from tests.helpers.mosquitto import Broker


@pytest.mark.parametrize("check", CHECKS)
def test_mqtt_passes_the_conformance_check(check: str, mosquitto: Broker) -> None:
    assert conformance_failures("mqtt", [check], endpoints={"broker": mosquitto.url}) == []
