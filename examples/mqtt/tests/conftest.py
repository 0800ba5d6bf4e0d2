"""A real mosquitto on a free loopback port, started by the tests from a generated config file
(never the system service), shared by the tests of this folder and stopped at the end."""

from __future__ import annotations

import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.ports import free_port
from tests.helpers.processes import _no_process_outlives_its_test, cli_env  # noqa: F401  (an autouse fixture)

MOSQUITTO = Path("/usr/sbin/mosquitto")


@dataclass
class Broker:
    url: str
    port: int


def _accepts(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    if not MOSQUITTO.exists():
        pytest.skip(f"{MOSQUITTO} is missing: install the Debian package mosquitto (make tools does)")
    folder = tmp_path_factory.mktemp("mosquitto")
    port = free_port()
    config = folder / "mosquitto.conf"
    # set_tcp_nodelay: the broker's side of Nagle's algorithm, so a reply is not held back for an ack
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\n")
    log = (folder / "mosquitto.log").open("w")
    proc = subprocess.Popen([str(MOSQUITTO), "-c", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while not _accepts(port):
            assert proc.poll() is None, (folder / "mosquitto.log").read_text()
            assert time.monotonic() < deadline, "mosquitto did not listen within 20 s"
            time.sleep(0.05)
        yield Broker(f"mqtt://127.0.0.1:{port}", port)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """No fieldctl a test starts sees the developer's own profiles, targets or state."""
    return cli_env(
        **{name: str(tmp_path / name.lower()) for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME")}
    )


@pytest.fixture
def device(broker: Broker) -> list[str]:
    """The arguments that put a test's device on the shared broker under a prefix of its own."""
    return [
        f"--endpoint=broker={broker.url}",
        f"--set=mqtt.prefix=tests/{uuid.uuid4().hex}",
        "--set=heartbeat.interval_s=0.2",
    ]
