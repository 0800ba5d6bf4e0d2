"""The tests' broker (a real mosquitto on a free loopback port, shared by the tests of this folder:
tests/helpers/mosquitto.py), and each test's device on it under a prefix of its own."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.helpers.mosquitto import Broker, mosquitto  # noqa: F401  (a fixture)
from tests.helpers.processes import _no_process_outlives_its_test, cli_env  # noqa: F401  (an autouse fixture)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """No fieldctl a test starts sees the developer's own profiles, targets or state."""
    return cli_env(
        **{name: str(tmp_path / name.lower()) for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME")}
    )


@pytest.fixture
def device(mosquitto: Broker) -> list[str]:  # noqa: F811
    """The arguments that put a test's device on the shared broker under a prefix of its own."""
    return [
        f"--endpoint=broker={mosquitto.url}",
        f"--set=mqtt.prefix=tests/{uuid.uuid4().hex}",
        "--set=heartbeat.interval_s=0.2",
    ]
