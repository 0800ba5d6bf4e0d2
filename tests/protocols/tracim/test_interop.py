"""Interop: the REAL tracim-daemon-sdk 1.0.3 (PyPI) as a client of `fieldctl simulate tracim`, in its
own venv and process (tests/peers/tracim_client.py, built by `make peers`), checked from fieldctl's
side; then fieldctl's own client through the same scenario. Every wait is on a condition."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers.peers import peer_python
from tests.helpers.processes import Proc, run_cli
from tests.helpers.repository import ROOT
from tests.helpers.tracim import is_msg, raw_of, start_client, start_daemon

PEER_SCRIPT = ROOT / "tests" / "peers" / "tracim_client.py"
EVENT = "content.created.html-document"
FIELDS = json.dumps({"author": {"public_name": "Ann <QA> & co"}, "content": {"label": "Zoé"}})


def publish_via(control: Path) -> None:
    result = run_cli("publish", "tracim", EVENT, "--data", FIELDS, "--via", str(control), "--json")
    assert result.returncode == 0, result.stderr


def check_daemon_side(daemon: Proc, client: Path, control: Path) -> None:
    """What any client must do, as `simulate tracim` sees it: register, get account info and the
    added broadcast, answer pings (and be acked), receive a Tracim event."""
    add = daemon.wait_json(lambda m: is_msg(m, "in", "daemon_client_add", client))
    assert add["error"] is None and add["payload"]["path"] == str(client) and add["payload"]["pid"].isdigit()
    daemon.wait_json(lambda m: is_msg(m, "out", "daemon_account_info", client))
    daemon.wait_json(lambda m: is_msg(m, "out", "daemon_client_added", client))
    for _ in range(2):
        daemon.wait_json(lambda m: is_msg(m, "out", "daemon_ping", client))
        pong = daemon.wait_json(lambda m: is_msg(m, "in", "daemon_pong", client))
        assert pong["error"] is None
        daemon.wait_json(lambda m: is_msg(m, "out", "daemon_ack", client))
    publish_via(control)
    event = daemon.wait_json(lambda m: is_msg(m, "out", EVENT, client))
    assert json.loads(json.loads(raw_of(event))["data"])["fields"]["author"]["public_name"] == "Ann <QA> & co"


def test_real_python_sdk_registers_pongs_and_receives_events(sockdir: Path) -> None:
    master, client, control = sockdir / "m.sock", sockdir / "sdk.sock", sockdir / "c.sock"
    daemon = start_daemon(master, "--no-timeline", "--control", str(control))
    peer = Proc([str(peer_python("tracim")), str(PEER_SCRIPT), "--master", str(master), "--client", str(client)])
    peer.wait_json(lambda m: m.get("ready") is True, timeout=20)
    check_daemon_side(daemon, client, control)
    # The SDK's own view: account info, its own client_added, pings (it pongs), the event decoded.
    seen = peer.wait_json(lambda m: m.get("event_type") == EVENT)
    assert seen["path"] == str(master) and isinstance(seen["event_id"], int)
    assert peer.wait_json(lambda m: str(m.get("log", "")).startswith("SOCKET: SEND: daemon_pong"))
    assert peer.stop() == 0
    # close() unregisters, and __del__ once more (spec §7): both reach the simulated daemon intact.
    for _ in range(2):
        delete = daemon.wait_json(lambda m: is_msg(m, "in", "daemon_client_delete", client))
        assert delete["error"] is None
        assert (
            raw_of(delete)
            == json.dumps(
                {
                    "path": str(client),
                    "type": "daemon_client_delete",
                    "data": {"path": str(client), "pid": delete["payload"]["pid"]},
                }
            ).encode()
        )
    assert daemon.stop() == 0
    assert not master.exists() and not client.exists() and not control.exists()


def test_python_sdk_bytes_are_its_json_dumps_layout(sockdir: Path) -> None:
    """The SDK writes `", "`/`": "` and `"data": null`; the simulated daemon takes both layouts."""
    master, client = sockdir / "m.sock", sockdir / "sdk.sock"
    daemon = start_daemon(master, "--no-timeline")
    peer = Proc([str(peer_python("tracim")), str(PEER_SCRIPT), "--master", str(master), "--client", str(client)])
    peer.wait_json(lambda m: m.get("ready") is True, timeout=20)
    add = daemon.wait_json(lambda m: is_msg(m, "in", "daemon_client_add", client))
    assert raw_of(add).startswith(b'{"path": "') and b'"pid": "' in raw_of(add)
    pong = daemon.wait_json(lambda m: is_msg(m, "in", "daemon_pong", client))
    assert raw_of(pong) == json.dumps({"path": str(client), "type": "daemon_pong", "data": None}).encode()
    peer.stop()
    daemon.stop()


def test_fieldctl_client_passes_the_same_scenario(sockdir: Path) -> None:
    master, client, control = sockdir / "m.sock", sockdir / "fc.sock", sockdir / "c.sock"
    daemon = start_daemon(master, "--no-timeline", "--control", str(control))
    plugin = start_client(master, client)
    check_daemon_side(daemon, client, control)
    seen = plugin.wait_json(lambda m: is_msg(m, "in", EVENT))
    assert seen["channel"] == "tracim" and seen["payload"]["fields"]["content"]["label"] == "Zoé"
    assert plugin.stop() == 0
    delete = daemon.wait_json(lambda m: is_msg(m, "in", "daemon_client_delete", client))
    assert raw_of(delete) == b'{"path":"%s","type":"daemon_client_delete","data":{"path":"%s","pid":"%d"}}' % (
        str(client).encode(),
        str(client).encode(),
        plugin.popen.pid,
    )
    assert daemon.stop() == 0
    assert not master.exists() and not client.exists() and not control.exists()
