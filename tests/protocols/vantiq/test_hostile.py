"""`simulate vantiq` against hostile peers on real loopback sockets, and fieldctl's connector
against nothing at all: a bad peer gets a warning line and an error answer, costs at most its own
connection, and every other connector is still served; memory stays bounded however many
notifications arrive; a refused connection is one line and exit 3, at once."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from fieldctl.protocols.core import redact
from tests.helpers.ports import free_port
from tests.helpers.processes import FIELDCTL, cli_env, one_line, peak_rss_kib, run_cli
from tests.helpers.vantiq import TOKEN, is_link, is_msg, start_connector, start_server, token_env, write_server_config

VALIDATE = json.dumps({"op": "validate", "resourceName": "system.credentials", "object": TOKEN})


def connect_source(ws, source: str = "peerSource", secret: str = "x") -> None:
    ws.send(
        json.dumps(
            {
                "op": "connectExtension",
                "resourceName": "sources",
                "resourceId": source,
                "parameters": {"reconnectSecret": secret},
            }
        )
    )
    assert json.loads(ws.recv(timeout=10)) == {"status": 200}
    assert json.loads(ws.recv(timeout=10))["op"] == "configureExtension"


HOSTILE = [
    "[" * 100_000 + "]" * 100_000,  # RecursionError before
    '{"op": "notification", "resourceId": "peerSource", "object": ' + "[" * 5000 + "]" * 5000 + "}",
    '{"status": ' + "7" * 5000 + "}",  # int over 4300 digits
    '{"op": "notification", "resourceId": "peerSource", "object": "\\ud800"}',  # not Unicode
    '{"op": "notification", "resourceId": ["peerSource"], "object": {}}',
    '{"op": "connectExtension", "resourceId": "peerSource", "parameters": {"reconnectSecret": {"a": 1}}}',
    '{"status": 200, "headers": {"X-Reply-Address": [1]}}',
    '{"op": {"x": 1}}',
]


def test_hostile_peers_cost_only_their_own_connection(workdir: Path) -> None:
    server, url = start_server(workdir, "--set", "limits.max_frame_bytes=300000")
    port = int(url.split(":")[2].split("/")[0])
    good = start_connector(workdir, url)
    good.wait_json(lambda m: is_link(m, "ready"))
    # Not WebSocket at all.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(b"\x16\x03\x01\x00\xff garbage\r\n\r\n" * 50)
        raw.recv(1000)
    # A nested first frame instead of validate: refused like any other non-validate; a token that
    # is a list or an object, like a wrong one (it was a TypeError that dropped the connection).
    with connect(url, max_size=None) as ws:
        for _ in range(3):
            ws.send("[" * 100_000)
            assert json.loads(ws.recv(timeout=10))["status"] == 401
        for token in ([TOKEN], {"token": TOKEN}):
            ws.send(json.dumps({"op": "validate", "resourceName": "system.credentials", "object": token}))
            assert json.loads(ws.recv(timeout=10))["status"] == 401
        ws.send(VALIDATE)
        assert json.loads(ws.recv(timeout=10))["status"] == 200
    # Authenticated, then every kind of bad frame: each gets a 400 and the session goes on.
    with connect(url, max_size=None) as ws:
        ws.send(VALIDATE)
        assert json.loads(ws.recv(timeout=10))["status"] == 200
        for frame in HOSTILE:
            ws.send(frame)
            answer = json.loads(ws.recv(timeout=10))
            assert answer["status"] == 400 and answer["body"][0]["code"] == "io.vantiq.message.malformed", frame[:80]
        ws.send("x" * 400_000)  # over the profile's limit: only this connection ends (1009)
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    # The connector that was there all along is still served...
    result = run_cli(
        "command", "vantiq", "query", "--data", '{"params": {"id": 1}}', "--via", str(workdir / "ctl.sock"), "--json"
    )
    assert result.returncode == 0, result.stderr
    # ...and so is a new, well-behaved one.
    good.stop()
    with connect(url) as ws:
        ws.send(VALIDATE)
        assert json.loads(ws.recv(timeout=10))["status"] == 200
        connect_source(ws)
        ws.send(json.dumps({"op": "notification", "resourceName": "sources", "resourceId": "peerSource", "object": {}}))
        assert json.loads(ws.recv(timeout=10)) == {"status": 200}
    assert server.popen.poll() is None
    assert server.stop() == 0
    lines = [json.loads(line) for line in server.output()]
    assert sum(1 for m in lines if m["error"] is not None and m["direction"] == "in") >= len(HOSTILE) + 1
    stderr = server.popen.stderr.read()
    assert "Traceback" not in stderr and "over 300000 bytes closed it (1009)" in stderr
    assert stderr.count("malformed frame") == 1, stderr  # one warning line for that peer, not one per frame
    assert stderr.count("authentication refused") == 1, stderr


def test_simulator_memory_stays_bounded_however_many_notifications(workdir: Path) -> None:
    """1,000 connectors notifying for an hour was 1.3 GB: nothing is kept without a scenario."""
    url = f"ws://127.0.0.1:{free_port()}/api/v1/wsock/websocket"
    sim = subprocess.Popen(
        [
            *FIELDCTL,
            "simulate",
            "vantiq",
            "--json",
            "--endpoint",
            f"server={url}",
            "--token-file",
            str(workdir / "tokens"),
            "--source",
            "peerSource",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=cli_env(),
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                ws = connect(url)
                break
            except OSError:
                assert time.monotonic() < deadline and sim.poll() is None, "simulator did not start"
                time.sleep(0.05)
        note = json.dumps(
            {
                "op": "notification",
                "resourceName": "sources",
                "resourceId": "peerSource",
                "object": {"blob": "n" * 4000},
            }
        )

        def notify(count: int) -> None:
            for _ in range(count // 100):
                for _ in range(100):
                    ws.send(note)
                for _ in range(100):
                    assert json.loads(ws.recv(timeout=20)) == {"status": 200}

        with ws:
            ws.send(VALIDATE)
            ws.recv(timeout=10)
            connect_source(ws)
            notify(2000)
            baseline = peak_rss_kib(sim.pid)
            notify(20_000)  # about 80 MB of notification objects, 180 MB if kept as Messages
            grown = peak_rss_kib(sim.pid) - baseline
        assert grown < 30_000, f"simulator grew by {grown} KiB"
    finally:
        sim.terminate()
        assert sim.wait(10) == 0
    assert "Traceback" not in sim.stderr.read().decode()


def test_nothing_listening_is_one_line_and_exit_3_after_the_grace_a_peer_gets(workdir: Path) -> None:
    url = f"ws://127.0.0.1:{free_port()}/api/v1/wsock/websocket"
    config = str(write_server_config(workdir, url))
    for args in (
        ["register", "vantiq", "--config", config],
        ["register", "vantiq", "--source", "s", "--endpoint", f"server={url}"],
        ["publish", "vantiq", "peerSource", "--data", "{}", "--config", config, "--wait", "20"],
    ):
        start = time.monotonic()
        result = run_cli(*args, "--json", env=token_env())
        assert result.returncode == 3, (args, result.stderr)
        assert "cannot connect" in one_line(result.stderr) and time.monotonic() - start < 12
        assert result.stdout.count("retrying") <= 5  # no retry storm: the grace a peer gets, then exit 3
    probe = run_cli("probe", "vantiq", "--endpoint", f"server={url}", "--source", "s", env=token_env())
    assert probe.returncode == 2 and probe.stdout.startswith("VANTIQ CRITICAL") and "cannot connect" in probe.stdout
    assert len(probe.stdout.strip().splitlines()) == 1 and probe.stderr == ""  # Nagios: CRITICAL when unreachable


def test_refused_credentials_are_exit_3_for_publish_too(workdir: Path) -> None:
    server, url = start_server(workdir, control=False)
    config = str(write_server_config(workdir, url))
    result = run_cli(
        "publish",
        "vantiq",
        "peerSource",
        "--data",
        "{}",
        "--config",
        config,
        env={**token_env(), "CONNECTOR_AUTH_TOKEN": "wrong-token-x"},
    )
    assert result.returncode == 3 and "refused the access token" in one_line(result.stderr)
    server.stop()


def test_a_lost_server_is_still_retried_once_connected(workdir: Path) -> None:
    """Exit 3 at once is for a server never reached; losing a working one means backing off."""
    port = free_port()
    server, url = start_server(workdir, port=port, control=False)
    connector = start_connector(workdir, url)
    connector.wait_json(lambda m: is_link(m, "ready"))
    server.stop()
    connector.wait_json(lambda m: is_link(m, "retrying"), timeout=10)
    server, _ = start_server(workdir, port=port, control=False)
    connector.wait_json(lambda m: is_link(m, "ready"), timeout=20)
    assert connector.stop() == 0 and server.stop() == 0
    assert any(is_msg(json.loads(line), "in", "connectExtension") for line in server.output())


@pytest.mark.parametrize(
    "role", [["simulate", "vantiq"], ["register", "vantiq", "--source", "s"], ["probe", "vantiq", "--source", "s"]]
)
def test_a_broken_server_url_is_a_usage_error_on_one_line(role: list[str]) -> None:
    result = run_cli(*role, "--endpoint", "server=http://[bad", env=token_env())
    if role[0] == "probe":
        assert result.returncode == 3 and result.stdout.startswith("VANTIQ UNKNOWN")  # Nagios: the check could not run
    else:
        assert result.returncode == 2 and "Invalid IPv6 URL" in one_line(result.stderr), result.stderr


def test_wrong_tokens_of_megabytes_leave_the_simulators_memory_flat(workdir: Path) -> None:
    """200 failed validates with distinct 4 MiB tokens took the simulator from 43 MB to 1.7 GB: it
    kept each one to mask it wherever it turned up. One that long is never searched for (the
    validate frame hides it anyway); the reconnect secret of a connector still connected is,
    however many other secrets came and went meanwhile."""
    server, url = start_server(workdir, control=False)
    held = "rs-held-while-connected-4711"
    with connect(url, max_size=None) as live:
        live.send(VALIDATE)
        assert json.loads(live.recv(timeout=10))["status"] == 200
        connect_source(live, secret=held)
        idle = peak_rss_kib(server.popen.pid)
        with connect(url, max_size=None) as ws:
            tokens = [f"{n:04d}" + "t" * (4 << 20) for n in range(40)]
            tokens += [f"wrong-token-{n:04d}" for n in range(2 * redact.RECENT)]  # more than the window keeps
            for token in tokens:
                ws.send(json.dumps({"op": "validate", "resourceName": "system.credentials", "object": token}))
                assert json.loads(ws.recv(timeout=20))["status"] == 401
        grown = peak_rss_kib(server.popen.pid) - idle
        note = {"op": "notification", "resourceName": "sources", "resourceId": "peerSource", "object": f"echo {held}"}
        live.send(json.dumps(note))
        assert json.loads(live.recv(timeout=10)) == {"status": 200}
        shown = server.wait_json(lambda m: is_msg(m, "in", "notification"))
    server.stop()
    assert grown < 65_536, f"the simulator grew by {grown} KiB"
    assert shown["payload"] == "echo ***"
    assert held not in "\n".join([*server.output(), server.popen.stderr.read()])
