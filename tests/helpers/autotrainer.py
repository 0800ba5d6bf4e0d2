"""Autotrainer devices for tests: fieldctl's own simulator on free loopback ports, a raw publisher
that sends exactly the frames a test wants (hostile ones included), and the REAL auto-trainer-api
package run as a device in its own venv."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator

import pytest
import zmq

from tests.helpers.peers import SCRIPTS, peer_python
from tests.helpers.ports import free_port
from tests.helpers.processes import FIELDCTL, Proc

DEVICE_SCRIPT = SCRIPTS / "autotrainer_device.py"
IDENTIFIER = "interop-device-7"
HEARTBEAT_S = 0.3

HEARTBEAT, EVENT = 1001, 4001


class Endpoints:
    """Free loopback ports for one autotrainer device, as --endpoint arguments."""

    def __init__(self) -> None:
        self.pub, self.cmd = free_port(), free_port()
        self.events = f"tcp://127.0.0.1:{self.pub}"
        self.commands = f"tcp://127.0.0.1:{self.cmd}"

    @property
    def args(self) -> list[str]:
        return ["--endpoint", f"events={self.events}", "--endpoint", f"commands={self.commands}"]


@pytest.fixture
def endpoints() -> Endpoints:
    return Endpoints()


def start_simulator(endpoints: Endpoints, *extra: str) -> Proc:
    proc = Proc(
        [
            *FIELDCTL,
            "simulate",
            "autotrainer",
            "--json",
            *endpoints.args,
            "--set",
            "heartbeat.interval_s=0.3",
            "--set",
            "simulate.event_interval_s=0.2",
            *extra,
        ]
    )
    for name in ("events", "commands", *(("control",) if "--control" in extra else ())):
        proc.wait_json(lambda m, name=name: m["channel"] == "link" and m["kind"] == "bound" and m["endpoint"] == name)
    return proc


@pytest.fixture
def simulator(endpoints: Endpoints) -> Iterator[Proc]:
    proc = start_simulator(endpoints)
    yield proc
    proc.stop()


def topic(number: int) -> bytes:
    return number.to_bytes(4, "little")


class Device:
    """A device's PUB socket in the test (XPUB: it hears when a listener has subscribed), so a
    test sends exactly the frames it wants, hostile ones included."""

    def __init__(self) -> None:
        self.sock = zmq.Context.instance().socket(zmq.XPUB)
        self.sock.setsockopt(zmq.SNDHWM, 0)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.url = f"tcp://127.0.0.1:{free_port()}"
        self.sock.bind(self.url)

    @property
    def args(self) -> list[str]:
        return ["--endpoint", f"events={self.url}", "--endpoint", f"commands=tcp://127.0.0.1:{free_port()}"]

    def wait_subscriber(self, timeout: float = 20) -> None:
        assert self.sock.poll(int(timeout * 1000)), "no subscriber"
        assert self.sock.recv()[:1] == b"\x01"

    def send(self, number: int, body: bytes | dict) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.sock.send_multipart([topic(number), data])

    def close(self) -> None:
        self.sock.close(0)


@pytest.fixture
def device() -> Iterator[Device]:
    dev = Device()
    yield dev
    dev.close()


def event(kind: int = 1, index: int = 0) -> dict:
    return {"kind": kind, "when": time.time(), "index": index, "context": None}


def start_device(endpoints: Endpoints, *extra: str) -> Proc:
    """The real package as a device on the endpoints' ports; returns once both ports accept connections."""
    proc = Proc(
        [
            str(peer_python("autotrainer")),
            str(DEVICE_SCRIPT),
            "--pub-port",
            str(endpoints.pub),
            "--cmd-port",
            str(endpoints.cmd),
            "--identifier",
            IDENTIFIER,
            "--heartbeat-interval",
            str(HEARTBEAT_S),
            *extra,
        ],
        stdin=True,
    )
    try:
        proc.wait_line(lambda line: line == "READY", timeout=20)
    except BaseException:
        stop_device(proc)
        raise
    return proc


def stop_device(proc: Proc) -> None:
    if proc.popen.poll() is None:
        try:
            proc.write(json.dumps({"op": "stop"}) + "\n")
            proc.wait(10)
            return
        except (OSError, ValueError, subprocess.TimeoutExpired):  # broken pipe, or it did not stop in time
            pass
        proc.stop()
