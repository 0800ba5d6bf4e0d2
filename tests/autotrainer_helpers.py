"""A raw autotrainer publisher for tests that must send exactly the frames they want, hostile
ones included."""

from __future__ import annotations

import json
import time
from typing import Iterator

import pytest
import zmq

from conftest import free_port

HEARTBEAT, EVENT = 1001, 4001


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


def lines_of(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def event(kind: int = 1, index: int = 0) -> dict:
    return {"kind": kind, "when": time.time(), "index": index, "context": None}
