"""A running simulator's control path (simulate --control, publish/command --via) and the Unix
socket rules it relies on: 0600, stale files replaced, live sockets never stolen, always removed."""

from __future__ import annotations

import os
import signal
import socket
import stat
from pathlib import Path

from tests.helpers.autotrainer import Endpoints, start_simulator
from tests.helpers.processes import FIELDCTL, Proc, run_cli


def test_publish_via_a_running_simulator(endpoints: Endpoints, tmp_path: Path) -> None:
    control = str(tmp_path / "sim.sock")
    sim = start_simulator(endpoints, "--no-timeline", "--control", control)
    listener = Proc(
        [
            *FIELDCTL,
            "listen",
            "autotrainer",
            "--json",
            "--count",
            "1",
            "--timeout",
            "20",
            "--filter",
            "channel=event",
            *endpoints.args,
        ]
    )
    try:
        assert stat.S_IMODE(os.stat(control).st_mode) == 0o600
        result = run_cli(
            "publish", "autotrainer", "trialStarted", "--data", '{"trialId": 9}', "--via", control, "--json"
        )
        assert result.returncode == 0, result.stderr
        assert '"kind":"trialStarted"' in result.stdout
        assert listener.wait(10) == 0
        unsupported = run_cli("command", "autotrainer", "get-status", "--via", control)
        assert unsupported.returncode == 2 and "does not take command requests" in unsupported.stderr
    finally:
        listener.stop()
        assert sim.stop(signal.SIGTERM) == 0
    assert not os.path.exists(control)


def test_via_a_missing_socket_exits_3(tmp_path: Path) -> None:
    result = run_cli("publish", "autotrainer", "tunnelEnter", "--via", str(tmp_path / "nobody.sock"), "--wait", "0.5")
    assert result.returncode == 3 and "cannot connect to" in result.stderr


def test_stale_socket_file_is_replaced_and_a_live_one_refused(endpoints: Endpoints, tmp_path: Path) -> None:
    path = str(tmp_path / "ctl.sock")
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(path)
    dead.close()  # the file stays behind, as after a crash
    sim = start_simulator(endpoints, "--no-timeline", "--control", path)
    try:
        live = Endpoints()
        refused = run_cli("simulate", "autotrainer", "--json", "--duration", "1", "--control", path, *live.args)
        assert refused.returncode == 3 and "in use by a running process" in refused.stderr
        assert os.path.exists(path)
    finally:
        sim.stop()
    not_a_socket = tmp_path / "plain"
    not_a_socket.write_text("keep me")
    result = run_cli(
        "simulate", "autotrainer", "--json", "--duration", "1", "--control", str(not_a_socket), *Endpoints().args
    )
    assert result.returncode == 2 and not_a_socket.read_text() == "keep me"
