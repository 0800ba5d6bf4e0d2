"""Shared test harness: real loopback sockets, real subprocesses, waits on conditions."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fuzzing  # noqa: F401  the hypothesis profile, for every fuzz test (the plugin's too)
import pytest

#: Fixtures every test may ask for: `device` (a raw autotrainer publisher), `terminals` (a pty),
#: `prometheus` (a real Prometheus server on loopback).
pytest_plugins = ["autotrainer_helpers", "terminal_helpers", "prometheus_helpers"]

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"  # captured wire bytes, copied into the repository (data)
PROTOCOL_NOTES = ROOT / "docs" / "protocols"  # the project's own protocol notes
FIELDCTL = [sys.executable, "-m", "fieldctl"]
PEERS = ROOT / ".peers"


def pytest_configure(config: pytest.Config) -> None:
    """No test, and no fieldctl it starts, sees the developer's own profiles, saved targets, default
    target or installed completions: XDG_CONFIG_HOME and XDG_DATA_HOME point into a fresh folder (a test that
    needs its own still passes it)."""
    base = tempfile.mkdtemp(prefix="fieldctl-tests-")
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME"):
        os.environ[name] = os.path.join(base, name.lower())
    os.environ.pop("FIELDCTL_TARGET", None)  # a default target moves every PROFILE-less line's arguments
    config.add_cleanup(lambda: shutil.rmtree(base, ignore_errors=True))


class OutsideRepository(RuntimeError):
    """A test read beside the repository. Not an OSError, so no `except OSError` can swallow it."""


class Fence:
    """Refuses file access beside the repository, so that tests behave as in a fresh clone with nothing
    beside it: the `shared` folder next to it always, and every sibling directory existing at start-up.
    Left open: directories created later, hidden ones (user config and caches of a clone in a home
    directory), pytest's temp roots (`pytest-of-USER`, siblings of a clone in /tmp), and any that holds
    or lies inside the interpreter, the venv or a sys.path entry."""

    def __init__(self, root: Path, allowed: list[str]) -> None:
        here = str(root)
        keep = [k for k in map(os.path.abspath, allowed) if not here.startswith(k.rstrip(os.sep) + os.sep)]

        def fenced(path: str) -> bool:
            name = os.path.basename(path)
            return not (
                name.startswith((".", "pytest-of-"))
                or path == here
                or any(k == path or k.startswith(path + os.sep) or path.startswith(k + os.sep) for k in keep)
            )

        beside = os.path.dirname(here)
        siblings = {e.path for e in os.scandir(beside) if e.is_dir()}
        self.blocked = tuple({os.path.join(beside, "shared"), *filter(fenced, siblings)})
        self.violations: list[str] = []

    def check(self, path: Any) -> None:
        if isinstance(path, int) or path is None:
            return
        where = os.path.abspath(os.fsdecode(path))
        if any(where == b or where.startswith(b + os.sep) for b in self.blocked):
            self.violations.append(where)
            raise OutsideRepository(f"{where} is outside the repository: copy what the test needs into it")

    def hook(self, event: str, args: tuple[Any, ...]) -> None:
        if event in ("open", "os.listdir", "os.scandir") and args:
            self.check(args[0])


FENCE = Fence(ROOT, [sys.prefix, sys.base_prefix, sys.exec_prefix, *filter(None, sys.path)])
sys.addaudithook(FENCE.hook)


@pytest.fixture(autouse=True)
def _stays_inside_the_repository() -> Iterator[None]:
    """Fails a test that touched a fenced path, even if it caught the error."""
    before = len(FENCE.violations)
    yield
    assert FENCE.violations[before:] == [], f"read outside the repository: {FENCE.violations[before:]}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
        text=True,
        timeout=timeout,
        input=input,
        env=env or cli_env(),
        stdin=None if input is not None else subprocess.DEVNULL,
    )


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


def peak_rss_kib(pid: int) -> int:
    """A running process's peak resident memory (VmHWM), from the kernel, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmHWM for pid {pid}")


def peer_python(name: str) -> Path:
    """The interpreter of a real peer's own venv, built by `make test` (`make peers`)."""
    path = PEERS / name / "bin" / "python"
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make peers` (make test builds it)")
    return path


def load_fixture(profile: str, name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / profile / name).read_text())


def frames_of(entry: dict[str, Any]) -> list[bytes]:
    return [bytes.fromhex(frame["hex"]) for frame in entry["frames"]]
