"""Interop: the REAL vantiqconnectorsdk 1.3.7 (PyPI), in its own venv and process
(tests/peers/vantiq_connector.py, built by `make peers`), against `fieldctl simulate vantiq`,
checked from fieldctl's side; then fieldctl's own connector through the same scenario."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers.processes import run_cli
from tests.helpers.vantiq import (
    ROWS,
    TOKEN,
    is_link,
    is_msg,
    raw_text,
    start_connector,
    start_peer,
    start_server,
    token_env,
    write_server_config,
)

#: The contract both connectors must meet: publish, partial+complete, empty, error, reconnect, stop.
SCENARIO = [
    {"channel": "publish", "kind": "peerSource", "payload": {"temperature": 21.5, "unit": "C"}, "ts": 0},
    {
        "channel": "query",
        "kind": "peerSource",
        "ts": 0,
        "payload": {"params": {}, "expect": {"status": 200, "rows": ROWS, "partials": 1}},
    },
    {
        "channel": "query",
        "kind": "peerSource",
        "ts": 0,
        "payload": {"params": {"name": "beta"}, "expect": {"status": 200, "count": 1}},
    },
    {"channel": "query", "kind": "peerSource", "payload": {"params": {"id": 99}, "expect": {"status": 204}}, "ts": 0},
    {
        "channel": "query",
        "kind": "peerSource",
        "payload": {"params": {"colour": "red"}, "expect": {"status": "error"}},
        "ts": 0,
    },
    {"channel": "reconnectRequired", "kind": "peerSource", "ts": 0},
    {
        "channel": "query",
        "kind": "peerSource",
        "payload": {"params": {"id": 3}, "expect": {"rows": [ROWS[2]]}},
        "ts": 0,
    },
    {"channel": "testRequestsClientClose", "kind": "peerSource", "ts": 0},
]


def write_scenario(work: Path, lines: list[dict]) -> Path:
    path = work / "scenario.ndjson"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_real_sdk_connects_is_configured_and_serves_publish_queries_and_reconnects(workdir: Path) -> None:
    server, url = start_server(workdir)
    write_server_config(workdir, url)
    peer = start_peer(workdir)
    # Its token is validated (never shown), its source configured from our config file.
    validate = server.wait_json(lambda m: is_msg(m, "in", "validate"), timeout=20)
    assert validate["payload"] == {"credentials": "***"} and TOKEN not in raw_text(validate)
    server.wait_json(lambda m: is_link(m, "configured", source="peerSource"))
    assert peer.wait_json(lambda m: m.get("event") == "connected")["config"] == {
        "peerConfig": {"greeting": "hello", "rows": 3}
    }
    ctl = str(workdir / "ctl.sock")

    published = run_cli("publish", "vantiq", "peerSource", "--data", '{"temperature": 21.5}', "--via", ctl, "--json")
    assert published.returncode == 0, published.stderr
    notification = server.wait_json(lambda m: is_msg(m, "in", "notification", "peerSource"))
    assert notification["payload"]["received"] == {"temperature": 21.5}
    server.wait_json(
        lambda m: (
            is_msg(m, "out", "status", "peerSource")
            and m["payload"] == {"status": 200}
            and m["ts"] >= notification["ts"]
        )
    )

    def query(params: dict) -> tuple[int, list[dict]]:
        result = run_cli("command", "vantiq", "query", "--data", json.dumps({"params": params}), "--via", ctl, "--json")
        lines = [json.loads(line) for line in result.stdout.splitlines()]
        return result.returncode, [m for m in lines if m["channel"] == "response"]

    code, responses = query({"chunk": 2})
    assert code == 0 and [r["payload"]["status"] for r in responses] == [100, 200]
    assert [row for r in responses for row in r["payload"]["body"]] == ROWS
    assert len({r["id"] for r in responses}) == 1  # routed by the reply address
    code, responses = query({"id": 99})
    assert code == 0 and responses[0]["payload"] == {"status": 204}
    code, responses = query({"colour": "red"})
    assert code == 1 and responses[0]["payload"]["status"] == 400
    assert responses[0]["payload"]["body"]["messageCode"] == "peer.query.unsupported"

    # reconnectRequired: the SDK closes (1000) and comes back on a new socket with the same secret.
    first = server.wait_json(lambda m: is_msg(m, "in", "connectExtension"))
    reconnect = run_cli("command", "vantiq", "reconnect", "--via", ctl, "--json")
    assert reconnect.returncode == 0, reconnect.stderr
    server.wait_json(lambda m: is_link(m, "disconnected", source="peerSource", code=1000))
    again = server.wait_json(lambda m: is_msg(m, "in", "connectExtension"))
    assert again["payload"]["reconnectSecret"] == first["payload"]["reconnectSecret"]
    server.wait_json(lambda m: is_link(m, "configured", source="peerSource"))

    assert run_cli("command", "vantiq", "test-close", "--via", ctl).returncode == 0
    assert peer.wait(15) == 0
    assert server.stop() == 0


def test_real_sdk_passes_the_scenario_file(workdir: Path) -> None:
    lines = [
        *SCENARIO[:1],
        {
            "channel": "notification",
            "direction": "in",
            "kind": "peerSource",
            "payload": {"event": "published", "received": {"unit": "C"}},
            "ts": 0,
        },
        *SCENARIO[1:],
    ]
    server, url = start_server(workdir, "--scenario", str(write_scenario(workdir, lines)), control=False)
    write_server_config(workdir, url)
    peer = start_peer(workdir)
    assert server.wait(40) == 0, server.stderr_now()
    checks = [json.loads(line) for line in server.output() if '"channel":"expect"' in line]
    assert len(checks) == len(lines) and all(check["payload"]["ok"] for check in checks)
    assert peer.wait(15) == 0


def test_real_sdk_stops_at_once_on_a_wrong_token(workdir: Path) -> None:
    server, url = start_server(workdir, control=False)
    write_server_config(workdir, url)
    peer = start_peer(workdir, token="wrong")
    assert peer.wait(20) == 2
    assert "401 :: io.vantiq.authentication.failed" in peer.wait_json(lambda m: m.get("event") == "exit")["error"]
    server.stop()


def test_fieldctl_connector_passes_the_same_scenario(workdir: Path) -> None:
    server, url = start_server(workdir, "--scenario", str(write_scenario(workdir, SCENARIO)), control=False)
    connector = start_connector(workdir, url)
    assert server.wait(40) == 0, server.stderr_now()
    checks = [json.loads(line) for line in server.output() if '"channel":"expect"' in line]
    assert len(checks) == len(SCENARIO) and all(check["payload"]["ok"] for check in checks)
    # testRequestsClientClose stopped its only source: register ends by itself, exit 0.
    assert connector.wait(15) == 0
    seen = [json.loads(line) for line in connector.output()]
    assert any(is_msg(m, "in", "publish", "peerSource") and m["payload"]["unit"] == "C" for m in seen)
    assert sum(1 for m in seen if is_link(m, "ready")) == 2


def test_fieldctl_connector_notification_is_acknowledged(workdir: Path) -> None:
    """publish vantiq SOURCE --data: connects as SOURCE's connector, sends, reports the ack."""
    server, url = start_server(workdir, control=False, sources=("peerSource", "other"))
    write_server_config(workdir, url, sources="other")
    result = run_cli(
        "publish",
        "vantiq",
        "other",
        "--data",
        '{"level": 3}',
        "--config",
        str(workdir / "server.config"),
        "--json",
        env=token_env(),
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    sent = next(m for m in lines if is_msg(m, "out", "notification"))
    assert (
        raw_text(sent)
        == '{"op": "notification", "resourceName": "sources", "resourceId": "other", "object": {"level": 3}}'
    )
    assert any(is_msg(m, "in", "status") and m["payload"] == {"status": 200} for m in lines[lines.index(sent) :])
    server.wait_json(lambda m: is_msg(m, "in", "notification", "other"))
    server.stop()
