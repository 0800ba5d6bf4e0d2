"""Programs on a real pseudo-terminal (a pty, or a tmux pane), and what they drew read back without
rich's own controls."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import signal
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from tests.helpers.processes import cli_env

#: What rich itself writes (CSI sequences, charset selection); anything else that starts with ESC,
#: and every OSC (ESC ]) or BEL, could only have come from the wire.
_RICH_CONTROLS = re.compile(rb"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]")


class Pty:
    """A subprocess on a pseudo-terminal it has as its controlling terminal (pty.fork), as an
    operator's shell would start it; a thread collects everything it draws."""

    def __init__(self, argv: list[str], rows: int = 45, cols: int = 160, env: dict[str, str] | None = None) -> None:
        environment = {**(env or cli_env()), "TERM": "xterm-256color", "LINES": str(rows), "COLUMNS": str(cols)}
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: exec at once
            os.execvpe(argv[0], argv, environment)
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.data = bytearray()
        self.lock = threading.Lock()
        self.code: int | None = None
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            with self.lock:
                self.data += chunk

    @property
    def raw(self) -> bytes:
        with self.lock:
            return bytes(self.data)

    @property
    def text(self) -> str:
        """What was drawn, rich's own control sequences removed."""
        return _RICH_CONTROLS.sub(b"", self.raw).decode("utf-8", "replace")

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.text
            if predicate(text):
                return text
            if self.poll() is not None:
                raise AssertionError(f"exited {self.code}: {self.text[-2000:]}")
            time.sleep(0.05)
        raise AssertionError(f"not drawn within {timeout} s: {self.text[-3000:]}")

    def poll(self) -> int | None:
        if self.code is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.code = os.waitstatus_to_exitcode(status)
        return self.code

    def wait(self, timeout: float = 20) -> int:
        deadline = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"still running after {timeout} s: {self.text[-2000:]}")
            time.sleep(0.05)
        self.reader.join(5)
        return self.code  # type: ignore[return-value]

    def stop(self, timeout: float = 20) -> int:
        if self.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
        return self.wait(timeout)

    def close(self) -> None:
        if self.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
            self.wait()
        os.close(self.fd)


@pytest.fixture
def terminals() -> Iterator[Callable[[list[str]], Pty]]:
    started: list[Pty] = []

    def start(argv: list[str], **kwargs: object) -> Pty:
        started.append(Pty(argv, **kwargs))  # type: ignore[arg-type]
        return started[-1]

    yield start
    for term in started:
        term.close()


def last_frame(text: str, title: str) -> str:
    """The most recent redraw of a live view: from its panel title on."""
    return text[text.rindex(title) :]


def assert_nothing_obeyed(raw: bytes) -> None:
    rest = _RICH_CONTROLS.sub(b"", raw)
    assert b"\x1b" not in rest and b"\x07" not in rest and b"\xc2\x9b" not in rest, rest[-1500:]


class Tmux:
    """A command in a tmux pane, on a tmux server of its own (a shared server exits with its last
    session, and a test starting then failed with "server exited unexpectedly"); driven by
    send-keys, its screen read back, waits are on what it shows."""

    def __init__(self, script: str, rows: int = 50, cols: int = 160) -> None:
        self.name = f"fieldctl-test-{time.monotonic_ns()}"
        self.run("new-session", "-d", "-x", str(cols), "-y", str(rows), "-s", self.name, script)

    def run(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-L", self.name, *args], capture_output=True, text=True, check=True, timeout=10
        ).stdout

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", self.name, *keys)

    def type(self, line: str) -> None:
        self.keys(line, "Enter")

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", self.name)

    def wait_until(self, done: Callable[[str], bool], what: str = "the expected screen", timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if done(screen):
                return screen
            time.sleep(0.1)  # polling the screen for a condition, with a deadline
        raise AssertionError(f"{what} not on screen within {timeout} s:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.name, "kill-server"], capture_output=True, check=False, timeout=10)
