"""fieldctl (and other programs) as real subprocesses: one-shot runs, and background processes whose
output lines a test waits on; none outlives its test. And fieldctl's command line run in this
process, for what needs no process of its own."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

FIELDCTL = [sys.executable, "-m", "fieldctl"]


def cli_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("NO_COLOR", None)
    env.update({"PYTHONUNBUFFERED": "1", "COLUMNS": "160"}, **extra)
    return env


def run_cli(
    *args: str, timeout: float = 30, input: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FIELDCTL, *args],
        capture_output=True,
        check=False,
        text=True,
        timeout=timeout,
        input=input,
        env=env or cli_env(),
        stdin=None if input is not None else subprocess.DEVNULL,
    )


def invoke(*args: str) -> subprocess.CompletedProcess[str]:
    """`fieldctl ARGS` in this process, through the same main() (the one place an exception becomes
    an exit code): for the command line's own logic, which needs no device, no socket and no
    process. Typer's runner swaps stdin, stdout and stderr for buffers meanwhile."""
    from fieldctl.cli.app import main

    code: int | str | None = 0
    with CliRunner().isolation() as (out, err, _):
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            stdout, stderr = out.getvalue().decode(), err.getvalue().decode()
    assert isinstance(code, int), code
    return subprocess.CompletedProcess(["fieldctl", *args], code, stdout, stderr)


_running: list[Proc] = []


@pytest.fixture(autouse=True)
def _no_process_outlives_its_test() -> Iterator[None]:
    """Kills what a failed test left running; processes of wider-scoped fixtures started earlier."""
    before = len(_running)
    yield
    while len(_running) > before:
        proc = _running.pop()
        if proc.popen.poll() is None:
            proc.popen.kill()
            proc.popen.wait(10)


class Proc:
    """A background process whose stdout lines are collected by a thread, so tests can wait on them."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None, stdin: bool = False) -> None:
        self.popen = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            env=env or cli_env(),
        )
        _running.append(self)
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_line(self, predicate: Callable[[str], bool], timeout: float = 15) -> str:
        deadline = time.monotonic() + timeout
        while True:
            for line in self.lines:
                if predicate(line):
                    self.lines.remove(line)
                    return line
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching line within {timeout} s; stderr: {self.stderr_now()}")
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"process ended (rc={self.popen.wait()}); stderr: {self.stderr_now()}")
            self.lines.append(line)

    def wait_json(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 15) -> dict[str, Any]:
        def matches(line: str) -> bool:
            try:
                return predicate(json.loads(line))
            except (ValueError, KeyError, TypeError, AttributeError):
                return False

        return json.loads(self.wait_line(matches, timeout))

    def output(self, timeout: float = 15) -> list[str]:
        """Every stdout line, once the process has ended."""
        self.wait(timeout)
        while (line := self._queue.get(timeout=timeout)) is not None:
            self.lines.append(line)
        self._queue.put(None)
        return list(self.lines)

    def write(self, text: str) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.write(text)
        self.popen.stdin.flush()

    def stderr_now(self) -> str:
        if self.popen.poll() is None:
            return "<running>"
        assert self.popen.stderr is not None
        return self.popen.stderr.read()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            raise AssertionError(f"process did not stop within {timeout} s after signal {sig}") from None

    def wait(self, timeout: float = 15) -> int:
        return self.popen.wait(timeout)


def lines_of(stdout: str) -> list[dict]:
    """A process's NDJSON output, a dict per line."""
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def one_line(stderr: str) -> str:
    """A failure's stderr, asserted to be the one line the exit-code contract promises: no traceback."""
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1, stderr
    return stderr.strip()


def peak_rss_kib(pid: int) -> int:
    """A running process's peak resident memory (VmHWM), from the kernel, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmHWM for pid {pid}")
