"""A real MQTT broker for the protocols whose device and clients meet at one (the MQTT plugin,
examples/mqtt): mosquitto (the Debian package; make tools installs it) from a generated config
file on a free loopback port, never the system service; one for the test session, stopped at its
end. Without /usr/sbin/mosquitto the tests that need it skip and say why."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.ports import free_port
from tests.helpers.waiting import holds_within

MOSQUITTO = Path("/usr/sbin/mosquitto")


@dataclass(frozen=True)
class Broker:
    url: str
    port: int


def _accepts(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def running_mosquitto(folder: Path, port: int) -> Iterator[Broker]:
    """mosquitto on 127.0.0.1:`port`, its config and log in `folder`, once it accepts connections."""
    if not MOSQUITTO.exists():
        pytest.skip(f"{MOSQUITTO} is missing: install the Debian package mosquitto (make tools does)")
    config = folder / "mosquitto.conf"
    # set_tcp_nodelay: the broker's side of Nagle's algorithm, so a reply is not held back for an ack
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\n")
    with (folder / "mosquitto.log").open("a") as log:
        proc = subprocess.Popen([str(MOSQUITTO), "-c", str(config)], stdout=log, stderr=subprocess.STDOUT)
        try:

            def listening() -> bool:
                assert proc.poll() is None, (folder / "mosquitto.log").read_text()
                return _accepts(port)

            holds_within(listening, 20, "mosquitto listening")
            yield Broker(f"mqtt://127.0.0.1:{port}", port)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    with running_mosquitto(tmp_path_factory.mktemp("mosquitto"), free_port()) as broker:
        yield broker
