"""Nothing fieldctl creates outlives it: every role of every profile that has it, ended as it ends
(on its own, or by SIGTERM once it is up), leaves its temporary folder and its runtime folder as
it found them: no private folder of a demo, a check or a simulated fleet, no socket file. Each run
gets folders of its own (TMPDIR, XDG_RUNTIME_DIR), so what another test leaves cannot hide a leak."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.fleets import ENV, endpoint_args, endpoint_urls, start_device
from tests.helpers.ports import free_port
from tests.helpers.processes import FIELDCTL, Proc
from tests.helpers.repository import ROOT
from tests.helpers.terminals import Pty
from tests.helpers.waiting import holds_within

PROFILES = ("autotrainer", "oneliner", "tracim", "sepl", "vantiq")
LAMP = "dev-1:iot#type-lamp:Lamp 1"


@dataclass
class Device:
    """A simulator of one profile on private endpoints, with its control socket."""

    args: list[str]
    control: str
    proc: Proc


@pytest.fixture(scope="module")
def devices() -> Iterator[dict[str, Device]]:
    """One simulator a profile, in a folder of their own (short: Unix socket paths)."""
    base = Path(tempfile.mkdtemp(prefix="fcleak", dir="/tmp"))
    started: dict[str, Device] = {}
    try:
        for profile in PROFILES:
            folder = base / profile
            folder.mkdir()
            urls = endpoint_urls(profile, folder)
            control = str(folder / "control.sock")
            proc = start_device(profile, urls, "--control", control)
            proc.wait_json(lambda m: m["kind"] == "bound" and m["endpoint"] == "control")
            started[profile] = Device(endpoint_args(urls), control, proc)
        yield started
    finally:
        for device in started.values():
            device.proc.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def private() -> Iterator[dict[str, str]]:
    """The environment of one run: its own temporary and runtime folders, empty (short: a simulated
    fleet's Unix sockets go in a folder inside TMPDIR)."""
    base = Path(tempfile.mkdtemp(prefix="fcl", dir="/tmp"))
    for name in ("t", "r"):
        (base / name).mkdir(mode=0o700)
    yield {**ENV, "TMPDIR": str(base / "t"), "XDG_RUNTIME_DIR": str(base / "r"), "XDG_STATE_HOME": str(base / "s")}
    shutil.rmtree(base, ignore_errors=True)


def left_behind(env: dict[str, str]) -> list[str]:
    return sorted(entry for name in ("TMPDIR", "XDG_RUNTIME_DIR") for entry in os.listdir(env[name]))


def run(args: list[str], env: dict[str, str], codes: tuple[int, ...] = (0,)) -> None:
    """A role that ends by itself; it must end as `codes` says, having left nothing."""
    result = subprocess.run(
        [*FIELDCTL, *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        stdin=subprocess.DEVNULL,
        cwd=ROOT,
    )
    assert result.returncode in codes, f"{args}: {result.returncode}: {result.stdout[-1500:]}{result.stderr[-1500:]}"
    assert left_behind(env) == [], args


def stopped(args: list[str], env: dict[str, str], up: Callable[[str], bool]) -> None:
    """A streaming role, ended by SIGTERM once `up` holds for one of its lines: exit 0, nothing left."""
    proc = Proc([*FIELDCTL, *args], env=env)
    proc.wait_line(up, timeout=30)
    assert proc.stop(signal.SIGTERM, timeout=30) == 0, proc.stderr_now()
    assert left_behind(env) == [], args


def line(predicate: Callable[[dict[str, Any]], bool]) -> Callable[[str], bool]:
    """An NDJSON line `predicate` holds for."""

    def holds(text: str) -> bool:
        try:
            return bool(predicate(json.loads(text)))
        except (ValueError, KeyError, TypeError):
            return False

    return holds


def link(*states: str) -> Callable[[str], bool]:
    return line(lambda m: m["channel"] == "link" and m["kind"] in states)


# --- the other side: simulators, fleets of them, demo, check --simulate --------------------------


@pytest.mark.parametrize("profile", PROFILES)
def test_simulate_and_a_simulated_fleet(profile: str, private: dict[str, str], tmp_path: Path) -> None:
    sockets = tmp_path / "s"
    sockets.mkdir()
    control = ["--control", os.path.join(private["TMPDIR"], "c.sock")]  # the simulator removes it too
    stopped(
        ["simulate", profile, "--json", *endpoint_args(endpoint_urls(profile, sockets)), *control],
        private,
        link("bound"),
    )
    fleet = ["simulate", profile, "--devices", "3", "--json", "--write-fleet", str(tmp_path / "fleet.toml")]
    stopped(fleet, private, line(lambda m: m["endpoint"] == "fleet" and m["kind"] == "bound"))


@pytest.mark.parametrize("profile", PROFILES)
def test_demo_and_check_simulate(profile: str, private: dict[str, str], terminals: Callable[..., Pty]) -> None:
    run(["demo", profile, "--duration", "1"], private)
    demo = terminals([*FIELDCTL, "demo", profile], env=private)  # its table is drawn on a terminal only
    demo.wait_for(lambda text: re.search(r"\b(ready|registered)\b", text) is not None, timeout=30)  # it streams
    assert demo.stop(timeout=30) == 0, demo.text[-2000:]
    assert left_behind(private) == []
    run(["check", f"examples/checks/{profile}.toml", "--simulate", "--json", "--allow-exec"], private)
    # a private run's simulator is gone with it: no identity it assigned is kept (a sepl gateway)
    assert not Path(private["XDG_STATE_HOME"]).exists()


@pytest.mark.parametrize(
    "args",
    [
        ["simulate", "autotrainer", "--devices", "300", "--json"],
        ["demo", "tracim"],
        ["check", "examples/checks/tracim.toml", "--simulate", "--json"],
    ],
    ids=["simulate-devices", "demo", "check-simulate"],
)
def test_sigterm_while_starting(args: list[str], private: dict[str, str]) -> None:
    """SIGTERM the moment the private folder exists, before the run is up: the folder goes too
    (exit 143 as the shell reports SIGTERM, or 0 when the stream was already up)."""
    proc = subprocess.Popen(
        [*FIELDCTL, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=private, cwd=ROOT
    )

    def created() -> bool:
        assert proc.poll() is None, "ended before it made its private folder"
        return bool(os.listdir(private["TMPDIR"]))

    holds_within(created, 30, "a private folder", every=0.002)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode in (0, 143), (proc.returncode, stderr)
    assert "Traceback" not in stderr
    assert left_behind(private) == []


def test_a_fleet_that_cannot_start_says_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    """Every device fails alike (a socket path over the limit, from a long TMPDIR): one line, exit 2."""
    deep = tmp_path / ("t" * 60)
    deep.mkdir()
    env = {**ENV, "TMPDIR": str(deep), "XDG_RUNTIME_DIR": str(deep)}
    result = subprocess.run(
        [*FIELDCTL, "simulate", "tracim", "--devices", "3", "--json"],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1 and "over the 107-byte limit" in result.stderr, result.stderr
    assert left_behind(env) == []


# --- the client side: against a running simulator ------------------------------------------------


def test_autotrainer_clients(devices: dict[str, Device], private: dict[str, str]) -> None:
    device = devices["autotrainer"]
    run(["listen", "autotrainer", *device.args, "--count", "2", "--json"], private)
    stopped(["listen", "autotrainer", *device.args, "--json"], private, line(lambda m: m["channel"] == "heartbeat"))
    run(["command", "autotrainer", "get-status", *device.args], private)
    run(["publish", "autotrainer", "systemStatus", "--data", "{}", "--via", device.control], private)
    own = ["--endpoint", f"events=tcp://127.0.0.1:{free_port()}", "--wait", "0.2"]  # as the device: nobody listens
    run(["publish", "autotrainer", "systemStatus", "--data", "{}", *own], private, codes=(4,))
    run(["probe", "autotrainer", *device.args, "--crit", "10"], private)
    run(["bench", "autotrainer", *device.args, "command", "get-status", "--requests", "5", "--clients", "2"], private)


def test_oneliner_clients(devices: dict[str, Device], private: dict[str, str]) -> None:
    device = devices["oneliner"]
    run(["listen", "oneliner", *device.args, "--stream", "frame", "--count", "2", "--json"], private)
    stopped(["listen", "oneliner", *device.args, "--json"], private, line(lambda m: m["channel"] != "link"))
    run(["command", "oneliner", "version", *device.args], private)
    run(["publish", "oneliner", "frame", "--data", "1", "--via", device.control], private)
    run(["probe", "oneliner", *device.args], private)
    run(["bench", "oneliner", *device.args, "command", "version", "--requests", "5", "--clients", "2"], private)


def test_tracim_clients_remove_their_sockets(devices: dict[str, Device], private: dict[str, str]) -> None:
    device = devices["tracim"]
    stopped(["listen", "tracim", *device.args, "--json"], private, link("registered"))
    stopped(["register", "tracim", *device.args, "--json"], private, link("registered"))
    run(["command", "tracim", "get-clients", *device.args], private)
    run(["publish", "tracim", "ping", "--data", "null", *device.args], private)
    run(["probe", "tracim", *device.args, "--crit", "10"], private)
    run(["bench", "tracim", *device.args, "command", "ping", "--requests", "5", "--clients", "2"], private)


def test_sepl_clients(devices: dict[str, Device], private: dict[str, str]) -> None:
    device = devices["sepl"]
    stopped(["register", "sepl", *device.args, "--device", LAMP, "--json"], private, link("ready"))
    run(["publish", "sepl", "dev-1", "sepl_get", "--data", "1", *device.args], private, codes=(0, 1))
    run(["probe", "sepl", *device.args], private)


def test_vantiq_clients(devices: dict[str, Device], private: dict[str, str]) -> None:
    device = devices["vantiq"]
    stopped(["register", "vantiq", *device.args, "--source", "demoSource", "--json"], private, link("ready"))
    run(["publish", "vantiq", "demoSource", "--data", "{}", *device.args], private)
    run(["probe", "vantiq", *device.args, "--source", "demoSource"], private)


def test_a_leak_is_seen(private: dict[str, str]) -> None:
    """The count sees what a run leaves: a file in TMPDIR fails it."""
    Path(private["TMPDIR"], "fieldctl-fleet-left").mkdir()
    with pytest.raises(AssertionError):
        run(["--version"], private)
