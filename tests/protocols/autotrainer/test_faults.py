"""What must not stop or fool `listen`: garbage frames, a dying device, a signal; and what a
person at a terminal sees (run in a real pseudo-terminal)."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import termios
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import zmq
import zmq.asyncio

from tests.helpers.autotrainer import Endpoints, start_simulator
from tests.helpers.processes import FIELDCTL, Proc, cli_env

Step = tuple[str, Callable[[], None] | None]


def run_in_pty(
    argv: list[str], steps: list[Step], timeout: float = 20, env: dict[str, str] | None = None, interrupt: bool = True
) -> tuple[str, int]:
    """Runs argv on a 160x40 pseudo-terminal; for each step waits until its text is on screen,
    then runs its action. Afterwards sends SIGINT (unless told not to) and returns (screen, exit code)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    proc = subprocess.Popen(
        argv, stdin=slave, stdout=slave, stderr=slave, close_fds=True, env=env or cli_env(TERM="xterm-256color")
    )
    os.close(slave)
    screen = b""

    def read(until: bytes | None, deadline: float) -> None:
        nonlocal screen
        while (until is None or until not in screen) and time.monotonic() < deadline:
            if select.select([master], [], [], 0.1)[0]:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the process ended and closed the terminal
                    return
                if not chunk:
                    return
                screen += chunk

    try:
        for text, action in steps:
            read(text.encode(), time.monotonic() + timeout)
            assert text.encode() in screen, f"{text!r} never showed; screen tail: {screen[-2000:]!r}"
            if action is not None:
                action()
        if interrupt and proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        read(None, time.monotonic() + timeout)
        code = proc.wait(15)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    return screen.decode("utf-8", "replace"), code


def test_garbage_frames_are_shown_counted_and_the_stream_goes_on(endpoints: Endpoints) -> None:
    ctx = zmq.asyncio.Context()
    pub = ctx.socket(zmq.XPUB)
    pub.bind(endpoints.events)  # before listen starts: a refused connection would end it (exit 3)

    async def publish() -> None:
        try:
            await asyncio.wait_for(pub.recv(), 15)  # the listener's subscription: nothing is lost now
            event = b"\xa1\x0f\x00\x00"
            for frames in (
                [b"lonely"],
                [event, b"{}", b"extra"],
                [b"\xa1\x0f\x00", b"{}"],
                [event, b"not json"],
                [event, b"[1, 2]"],
                [b"\x61\x1e\x00\x00", b'{"kind": 5}'],
                [event, b'{"kind": 424242, "when": 1.0, "index": 1, "context": null}'],
                [event, b'{"kind": 1101, "when": 1.0, "index": 2, "context": null}'],
            ):
                await pub.send_multipart(frames)
        finally:
            pub.close(linger=1000)
            ctx.term()

    listener = Proc([*FIELDCTL, "listen", "autotrainer", "--json", "--count", "3", "--timeout", "20", *endpoints.args])
    asyncio.run(publish())
    assert listener.wait(20) == 0
    got = [json.loads(line) for line in listener.output() if '"channel":"link"' not in line]
    errors = [m["error"] for m in got]
    assert errors[:5] == [
        "expected 2 frames, got 1",
        "expected 2 frames, got 3",
        "topic frame is 3 bytes, expected 4",
        errors[3],
        "expected a JSON object, got list",
    ]
    assert errors[3].startswith("not JSON")
    assert [m["channel"] for m in got[5:]] == ["7777", "event", "event"]
    assert [m["kind"] for m in got[5:]] == [5, 424242, "tunnelEnter"] and errors[5:] == [None, None, None]


def test_killed_device_goes_stale_then_alive_again(endpoints: Endpoints) -> None:
    device = start_simulator(endpoints, "--no-timeline")
    listener = Proc(
        [*FIELDCTL, "listen", "autotrainer", "--json", *endpoints.args, "--set", "heartbeat.stale_after_s=1"]
    )
    try:
        listener.wait_json(lambda m: m["channel"] == "heartbeat")
        device.stop(signal.SIGKILL)
        killed = time.monotonic()
        stale = listener.wait_json(lambda m: m["channel"] == "link" and m["kind"] == "stale", timeout=5)
        assert stale["endpoint"] == "heartbeat" and time.monotonic() - killed < 3
        device = start_simulator(endpoints, "--no-timeline")
        listener.wait_json(lambda m: m["channel"] == "link" and m["kind"] == "alive", timeout=10)
    finally:
        device.stop()
        assert listener.stop(signal.SIGINT) == 0


def test_terminal_shows_the_table_then_a_killed_device_as_stale(endpoints: Endpoints) -> None:
    device = start_simulator(endpoints)
    argv = [*FIELDCTL, "listen", "autotrainer", *endpoints.args, "--set", "heartbeat.stale_after_s=1"]
    try:
        # the first heartbeat may come after the first event: kill only once the header shows one
        screen, code = run_in_pty(
            argv, [("trialStarted", None), ("  age ", lambda: device.stop(signal.SIGKILL)), ("STALE", None)]
        )
    finally:
        device.stop()
    assert code == 0
    for text in (
        "fieldctl listen autotrainer",
        "fieldctl-sim 0.12.0",
        "received",
        "duplicates dropped",
        "STALE (> 1 s)",
    ):
        assert text in screen


def test_sigint_ends_listen_cleanly_with_the_record_intact(
    simulator: Proc, endpoints: Endpoints, tmp_path: Path
) -> None:
    record = tmp_path / "rec.ndjson"
    listener = Proc([*FIELDCTL, "listen", "autotrainer", "--json", "--record", str(record), *endpoints.args])
    listener.wait_json(lambda m: m["channel"] == "event")
    assert listener.stop(signal.SIGINT) == 0
    lines = record.read_text().splitlines()
    assert lines and all(json.loads(line)["profile"] == "autotrainer" for line in lines)


def test_no_color_is_honoured(simulator: Proc, endpoints: Endpoints) -> None:
    argv = [*FIELDCTL, "listen", "autotrainer", *endpoints.args]
    colour = re.compile(r"\x1b\[[0-9;]*(3[0-9]|9[0-7])m")
    screen, _ = run_in_pty(argv, [("fieldctl-sim", None)], env=cli_env(TERM="xterm-256color", NO_COLOR="1"))
    assert "fieldctl-sim" in screen and not colour.search(screen)


def test_demo_shows_a_live_table_and_ends_by_itself() -> None:
    screen, code = run_in_pty([*FIELDCTL, "demo", "--duration", "3"], [], interrupt=False)
    assert code == 0
    assert "fieldctl demo autotrainer" in screen and "fieldctl-sim" in screen and "event" in screen


@pytest.mark.parametrize(
    "profile, shows",
    [("tracim", "clients"), ("oneliner", "frame_2"), ("sepl", "commit"), ("vantiq", "configureExtension")],
)
def test_demo_works_for_every_profile(profile: str, shows: str, tmp_path: Path) -> None:
    env = {
        key: value
        for key, value in cli_env(TERM="xterm-256color").items()
        if key not in ("SEPL_PASSWORD", "CONNECTOR_AUTH_TOKEN")
    }
    env["XDG_CONFIG_HOME"] = str(tmp_path)  # no user profile or daemon config of this machine
    screen, code = run_in_pty([*FIELDCTL, "demo", profile, "--duration", "2"], [], interrupt=False, env=env)
    assert code == 0, screen[-2000:]
    assert f"fieldctl demo {profile}" in screen and shows in screen and "Traceback" not in screen


class Flood:
    """A raw publisher that sends events as fast as it can from a thread, until stopped."""

    def __init__(self, url: str) -> None:
        import threading

        self.ctx = zmq.Context()
        self.pub = self.ctx.socket(zmq.PUB)
        self.pub.bind(url)
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        body = b'{"kind": 1101, "when": 1.0, "index": 1, "context": null}'
        while self.running:
            self.pub.send_multipart([b"\xa1\x0f\x00\x00", body])

    def stop(self) -> None:
        self.running = False
        self.thread.join(5)
        self.pub.close(linger=0)
        self.ctx.term()


def test_count_and_signals_work_under_a_flood(endpoints: Endpoints) -> None:
    flood = Flood(endpoints.events)
    try:
        started = time.monotonic()
        counted = subprocess.run(
            [*FIELDCTL, "listen", "autotrainer", "--json", "--count", "2000", "--timeout", "20", *endpoints.args],
            capture_output=True,
            check=False,
            text=True,
            timeout=30,
            env=cli_env(),
        )
        assert counted.returncode == 0, counted.stderr
        assert len([line for line in counted.stdout.splitlines() if '"channel":"event"' in line]) == 2000
        assert time.monotonic() - started < 15
        listener = Proc([*FIELDCTL, "listen", "autotrainer", "--json", *endpoints.args])
        listener.wait_json(lambda m: m["channel"] == "event")
        assert listener.stop(signal.SIGINT, timeout=5) == 0
    finally:
        flood.stop()


def test_a_reader_that_goes_away_ends_listen_quietly(simulator: Proc, endpoints: Endpoints) -> None:
    proc = subprocess.Popen(
        [*FIELDCTL, "listen", "autotrainer", "--json", *endpoints.args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=cli_env(),
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # as `| head -1` does
    assert proc.wait(10) == 0
    assert proc.stderr.read() == b""
