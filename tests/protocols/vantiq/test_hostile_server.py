"""fieldctl's connector (`register vantiq`) against a hostile server on loopback: bad frames are
shown and the session goes on; a flood of queries runs at most answers.concurrency answering
commands at once, and every query is still answered; a flood of anything ends no role late."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.server import ServerConnection, serve

from fieldctl.protocols.transport.websocket import CLOSE_TIMEOUT_S
from tests.helpers.flooding import FloodingPeer, overrun_s
from tests.helpers.processes import FIELDCTL, Proc, one_line, run_cli
from tests.helpers.vantiq import is_link, token_env, write_server_config

QUERIES = 24
BAD = [
    "[" * 100_000,
    '{"status": ' + "9" * 5000 + "}",
    '{"op": "publish", "object": "\\udc00"}',
    '{"op": "query", "messageHeaders": {"REPLY_ADDR_HEADER": {"a": 1}}}',
    "\xff not json",
]

ANSWER = """
import json, os, sys, time
json.load(sys.stdin)
running = os.path.join(os.environ["RUNNING"], str(os.getpid()))
open(running, "w").close()
with open(os.environ["RUNNING"] + ".log", "a") as log:
    log.write(f"{len(os.listdir(os.environ['RUNNING']))}\\n")
time.sleep(0.15)
os.remove(running)
print(json.dumps({"pid": os.getpid()}))
"""


class Flooding:
    """Configures the source, sends garbage, then QUERIES queries at once; collects the answers."""

    def __init__(self) -> None:
        self.finals: dict[str, int] = {}
        self.server = serve(self.handle, "127.0.0.1", 0)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"ws://127.0.0.1:{self.server.socket.getsockname()[1]}/api/v1/wsock/websocket"

    def handle(self, ws: ServerConnection) -> None:
        ws.recv()
        ws.send(json.dumps({"status": 200}))
        ws.recv()
        ws.send(
            json.dumps(
                {
                    "op": "configureExtension",
                    "resourceName": "sources",
                    "resourceId": "peerSource",
                    "object": {"config": {}},
                }
            )
        )
        for frame in BAD:
            ws.send(frame)
        for number in range(QUERIES):
            ws.send(
                json.dumps(
                    {
                        "op": "query",
                        "resourceName": "sources",
                        "resourceId": "peerSource",
                        "object": {},
                        "messageHeaders": {"REPLY_ADDR_HEADER": f"q{number}"},
                    }
                )
            )
        while len(self.finals) < QUERIES:
            answer = json.loads(ws.recv(timeout=60))
            if answer.get("status") != 100:
                self.finals[answer["headers"]["X-Reply-Address"]] = answer["status"]
        ws.send(json.dumps({"op": "testRequestsClientClose"}))
        ws.recv()


def test_a_query_flood_is_answered_a_few_at_a_time(workdir: Path) -> None:
    (workdir / "answer.py").write_text(ANSWER)
    (workdir / "running").mkdir()
    server = Flooding()
    config = write_server_config(workdir, server.url)
    connector = Proc(
        [
            *FIELDCTL,
            "register",
            "vantiq",
            "--json",
            "--config",
            str(config),
            "--set",
            "answers.concurrency=3",
            "--answer-with",
            f"{sys.executable} {workdir / 'answer.py'}",
        ],
        env={**token_env(), "RUNNING": str(workdir / "running")},
    )
    assert connector.wait(90) == 0, connector.stderr_now()  # the server's testRequestsClientClose ends it
    server.server.shutdown()
    assert server.finals == {f"q{n}": 200 for n in range(QUERIES)}
    at_once = [int(line) for line in (workdir / "running.log").read_text().split()]
    assert len(at_once) == QUERIES and max(at_once) <= 3
    lines = [json.loads(line) for line in connector.output()]
    assert sum(1 for m in lines if m["error"] is not None) == len(BAD)
    assert sum(1 for m in lines if is_link(m, "ready")) == 1  # the bad frames did not cost the session
    assert "Traceback" not in connector.popen.stderr.read()


class Oversending:
    """Its first connection publishes a `size` frame, then every connection is told to stop
    (testRequestsClientClose)."""

    def __init__(self, size: int) -> None:
        self.size, self.connections = size, 0
        self.server = serve(self.handle, "127.0.0.1", 0, max_size=None)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"ws://127.0.0.1:{self.server.socket.getsockname()[1]}/api/v1/wsock/websocket"

    def handle(self, ws: ServerConnection) -> None:
        self.connections += 1
        ws.recv()
        ws.send(json.dumps({"status": 200}))
        ws.recv()
        ws.send(
            json.dumps(
                {
                    "op": "configureExtension",
                    "resourceName": "sources",
                    "resourceId": "peerSource",
                    "object": {"config": {}},
                }
            )
        )
        if self.connections == 1:
            ws.send(
                json.dumps(
                    {
                        "op": "publish",
                        "resourceName": "sources",
                        "resourceId": "peerSource",
                        "object": {"blob": "x" * self.size},
                    }
                )
            )
        ws.send(json.dumps({"op": "testRequestsClientClose"}))
        for _ in ws:  # until the connector closes
            pass


def test_a_frame_over_the_connectors_limit_costs_that_connection_only(workdir: Path) -> None:
    server = Oversending(300_000)
    config = write_server_config(workdir, server.url)
    connector = Proc(
        [*FIELDCTL, "register", "vantiq", "--json", "--config", str(config), "--set", "limits.max_frame_bytes=200000"],
        env=token_env(),
    )
    dropped = connector.wait_json(lambda m: is_link(m, "disconnected") and m["payload"].get("sent_code") == 1009)
    assert dropped["payload"]["source"] == "peerSource"
    assert connector.wait(30) == 0  # back on a new connection, then stopped by the server
    server.server.shutdown()
    assert server.connections == 2
    assert "Traceback" not in connector.popen.stderr.read()


def test_the_default_limit_takes_frames_over_the_sdks_1_mib(workdir: Path) -> None:
    server = Oversending(2 << 20)
    config = write_server_config(workdir, server.url)
    connector = Proc([*FIELDCTL, "register", "vantiq", "--json", "--config", str(config)], env=token_env())
    assert connector.wait(30) == 0
    server.server.shutdown()
    lines = [json.loads(line) for line in connector.output()]
    assert [len(m["payload"]["blob"]) for m in lines if m["channel"] == "publish"] == [2 << 20]
    assert server.connections == 1


# --- deadlines under a flood --------------------------------------------------------------------

FLOOD_LIMIT_S = 3.0
#: What the flooding server sends once the source is configured: publishes, as fast as the socket
#: takes them (the connector shows each; none acknowledges a notification).
PUBLISH = json.dumps({"op": "publish", "resourceName": "sources", "resourceId": "peerSource", "object": "x" * 512})


async def configure(ws: Any) -> None:
    """validate accepted, connectExtension answered with the source's configuration."""
    await ws.recv()
    await ws.send(json.dumps({"status": 200}))
    await ws.recv()
    await ws.send(
        json.dumps(
            {
                "op": "configureExtension",
                "resourceName": "sources",
                "resourceId": "peerSource",
                "object": {"config": {}},
            }
        )
    )


@pytest.mark.parametrize(
    "role",
    [
        ["register", "--timeout", str(FLOOD_LIMIT_S)],
        ["publish", "peerSource", "--data", "1", "--wait", str(FLOOD_LIMIT_S)],
    ],
    ids=["register", "publish"],
)
def test_a_flood_does_not_hold_a_role_past_its_deadline(workdir: Path, role: list[str]) -> None:
    """The deadline holds however many frames are ready (publish's waited for an acknowledgement
    while one kept arriving), and the closing handshake with the flooding server is cut short."""
    with FloodingPeer(configure, PUBLISH, "/api/v1/wsock/websocket") as peer:
        config = write_server_config(workdir, peer.url)
        verb, *args = role
        proc = Proc([*FIELDCTL, verb, "vantiq", "--json", "--config", str(config), *args], env=token_env())
        assert overrun_s(proc, FLOOD_LIMIT_S) < CLOSE_TIMEOUT_S + 1.0  # 10 s: websockets waited for the close
    assert proc.popen.returncode == 4, proc.stderr_now()
    one_line(proc.stderr_now())


def test_a_flood_after_the_configuration_leaves_the_probe_ok_and_on_time(workdir: Path) -> None:
    with FloodingPeer(configure, PUBLISH, "/api/v1/wsock/websocket") as peer:
        config = write_server_config(workdir, peer.url)
        started = time.monotonic()
        result = run_cli("probe", "vantiq", "--config", str(config), "--crit", "5", env=token_env())
        elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    assert "source peerSource configured" in result.stdout and elapsed < 5
