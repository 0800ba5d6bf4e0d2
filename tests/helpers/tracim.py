"""Shared by the tracim CLI and interop tests: short socket paths, a simulated daemon, raw documents."""

from __future__ import annotations

import base64
import contextlib
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.processes import FIELDCTL, Proc

#: Fast keep-alive for tests: pings every 0.4 s; a client hearing nothing for 1.5 s registers again.
FAST = ["--set", "keepalive.interval_s=0.4", "--set", "heartbeat.stale_after_s=1.5", "--set", "timeouts.retry_s=0.2"]


@pytest.fixture
def sockdir() -> Iterator[Path]:
    """A short directory: pytest's tmp_path can push a socket path over 107 bytes."""
    path = Path(tempfile.mkdtemp(prefix="trc", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def start_daemon(master: Path, *extra: str) -> Proc:
    proc = Proc([*FIELDCTL, "simulate", "tracim", "--json", "--master", str(master), *FAST, *extra])
    proc.wait_json(lambda m: m["channel"] == "link" and m["kind"] == "bound" and m["endpoint"] == "master")
    if "--control" in extra:
        proc.wait_json(lambda m: m["channel"] == "link" and m["kind"] == "bound" and m["endpoint"] == "control")
    return proc


def start_client(master: Path, client: Path, role: str = "register", *extra: str) -> Proc:
    proc = Proc(
        [
            *FIELDCTL,
            role,
            "tracim",
            "--json",
            "--master",
            str(master),
            "--endpoint",
            f"client=unix://{client}",
            *FAST,
            *extra,
        ]
    )
    proc.wait_json(lambda m: m["channel"] == "link" and m["kind"] == "registered")
    return proc


def raw_of(msg: dict[str, Any]) -> bytes:
    return base64.b64decode(msg["raw"][0])


def is_msg(msg: dict[str, Any], direction: str, kind: str, peer: str | Path | None = None) -> bool:
    return msg["direction"] == direction and msg["kind"] == kind and (peer is None or msg["id"] == str(peer))


def send_raw(path: Path, data: bytes) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(str(path))
        sock.sendall(data)


def send_hostile(path: Path, data: bytes, *, finish: bool = True) -> socket.socket | None:
    """Writes `data` (tolerating being cut off); with finish=False the connection stays open."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(20)
    sock.connect(str(path))
    with contextlib.suppress(OSError):
        sock.sendall(data)
    if finish:
        sock.close()
        return None
    return sock
