"""`register vantiq` (fieldctl's connector) against `simulate vantiq`, as real subprocesses on
loopback: queries in every shape, reconnect styles, probe, scenarios, and the faults (wrong token,
killed server, malformed and oversized frames) — and the token never leaks anywhere."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from websockets.sync.client import connect

from tests.helpers.ports import free_port
from tests.helpers.processes import FIELDCTL, Proc, one_line, run_cli
from tests.helpers.vantiq import ROWS, TOKEN, is_link, is_msg, raw_text, start_connector, start_server, token_env


def via(work: Path, *args: str) -> tuple[int, list[dict], str]:
    result = run_cli(*args, "--via", str(work / "ctl.sock"), "--json")
    return result.returncode, [json.loads(line) for line in result.stdout.splitlines()], result.stderr


def query(work: Path, params: dict, source: str | None = None) -> tuple[int, list[dict], str]:
    data = {"params": params, **({"source": source} if source else {})}
    code, lines, err = via(work, "command", "vantiq", "query", "--data", json.dumps(data))
    return code, [m for m in lines if m["channel"] == "response"], err


def statuses(responses: list[dict]) -> list[int]:
    return [r["payload"]["status"] for r in responses]


def test_register_is_configured_gets_publishes_and_answers_queries(workdir: Path) -> None:
    server, url = start_server(workdir)
    connector = start_connector(workdir, url)
    ready = connector.wait_json(lambda m: is_link(m, "ready", source="peerSource"))
    assert ready["payload"]["config"] == {"peerConfig": {"greeting": "hello", "rows": 3}}
    code, lines, _ = via(workdir, "publish", "vantiq", "peerSource", "--data", '{"valve": "open"}')
    assert code == 0 and any(is_msg(m, "out", "publish") for m in lines)
    assert connector.wait_json(lambda m: is_msg(m, "in", "publish", "peerSource"))["payload"] == {"valve": "open"}
    code, responses, _ = query(workdir, {})
    assert code == 0 and statuses(responses) == [100, 200]
    assert [row for r in responses for row in r["payload"]["body"]] == ROWS
    code, responses, _ = query(workdir, {"name": "gamma"}, source="peerSource")
    assert code == 0 and responses[0]["payload"]["body"] == [ROWS[2]]
    code, responses, _ = query(workdir, {"id": 9})
    assert code == 0 and responses == [responses[0]] and responses[0]["payload"] == {"status": 204}
    code, responses, err = query(workdir, {"colour": "red"})
    assert code == 1 and statuses(responses) == [400] and "Unsupported query parameter colour" in err
    # The connector's frames, as the SDK would write them.
    sent = connector.wait_json(lambda m: is_msg(m, "out", "response") and m["payload"]["status"] == 204)
    assert raw_text(sent) == json.dumps({"status": 204, "headers": {"X-Reply-Address": sent["id"]}})
    assert connector.stop() == 0 and server.stop() == 0


ANSWER = """
import json, sys
params = json.load(sys.stdin)
if params.get("fail"):
    print("bad things", file=sys.stderr); sys.exit(3)
for i in range(int(params.get("n", 3))):
    print(json.dumps({"i": i}), flush=True)
"""


def test_answer_with_a_command_streams_rows_and_reports_its_failure(workdir: Path) -> None:
    (workdir / "answer.py").write_text(ANSWER)
    server, url = start_server(workdir)
    connector = start_connector(workdir, url, "--answer-with", f"{sys.executable} {workdir / 'answer.py'}")
    connector.wait_json(lambda m: is_link(m, "ready"))
    code, responses, _ = query(workdir, {"n": 5})
    assert code == 0 and statuses(responses) == [100, 100, 200]
    assert [row["i"] for r in responses for row in r["payload"]["body"]] == [0, 1, 2, 3, 4]
    code, responses, _ = query(workdir, {"n": 0})
    assert statuses(responses) == [204]
    code, responses, _err = query(workdir, {"fail": True})
    assert code == 1 and statuses(responses) == [400]
    assert responses[0]["payload"]["body"]["parameters"] == ["exited with 3", "bad things"]
    connector.stop()
    server.stop()


def test_wrong_token_exits_3_at_once_without_a_retry_loop(workdir: Path) -> None:
    server, url = start_server(workdir, control=False)
    start = time.monotonic()
    connector = start_connector(workdir, url, env={**token_env(), "CONNECTOR_AUTH_TOKEN": "wrong-token-x"})
    assert connector.wait(10) == 3 and time.monotonic() - start < 8
    error = one_line(connector.popen.stderr.read())
    assert "refused the access token" in error and "io.vantiq.authentication.failed" in error
    assert "wrong-token-x" not in error
    server.stop()
    attempts = [line for line in server.output() if '"channel":"validate"' in line]
    assert len(attempts) == 1


def test_reconnect_required_on_a_new_socket_and_on_the_same_socket(workdir: Path) -> None:
    server, url = start_server(workdir, "--reconnect-after", "0.2", control=False)
    connector = start_connector(workdir, url)
    first = server.wait_json(lambda m: is_link(m, "configured"))
    second = server.wait_json(lambda m: is_link(m, "configured"))
    assert second["payload"]["conn"] == first["payload"]["conn"] + 1  # Python style: close 1000, new socket
    connector.wait_json(lambda m: is_msg(m, "in", "reconnectRequired"))
    connector.stop()
    server.stop()
    server, url = start_server(workdir, "--reconnect-after", "0.2", control=False)
    connector = start_connector(workdir, url, "--same-socket")
    first = server.wait_json(lambda m: is_link(m, "configured"))
    second = server.wait_json(lambda m: is_link(m, "configured"))
    assert second["payload"]["conn"] == first["payload"]["conn"]  # Java style: connectExtension again
    assert not any(is_link(json.loads(line), "disconnected") for line in server.lines)
    connector.stop()
    server.stop()


SLOW = """
import json, sys, time
json.load(sys.stdin)
for i in range(40):
    print(json.dumps({"i": i}), flush=True); time.sleep(0.05)
"""


def test_killed_server_backoff_reconnect_and_unsent_work_reported(workdir: Path) -> None:
    (workdir / "slow.py").write_text(SLOW)
    port = free_port()
    server, url = start_server(workdir, port=port)
    connector = start_connector(
        workdir, url, "--answer-with", f"{sys.executable} {workdir / 'slow.py'}", "--set", "answers.chunk_rows=1"
    )
    connector.wait_json(lambda m: is_link(m, "ready"))
    asking = Proc([*FIELDCTL, "command", "vantiq", "query", "--via", str(workdir / "ctl.sock"), "--json"])
    connector.wait_json(lambda m: is_msg(m, "out", "response") and m["payload"]["status"] == 100)
    server.popen.kill()  # mid-answer
    server.wait()
    assert asking.wait(10) != 0
    retrying = connector.wait_json(lambda m: is_link(m, "retrying") and "error" in m["payload"], timeout=10)
    assert retrying["payload"]["in_s"] > 0 and "cannot connect" in retrying["payload"]["error"]
    server, _ = start_server(workdir, port=port, control=False)
    connector.wait_json(lambda m: is_link(m, "ready"), timeout=20)
    assert connector.stop() == 0
    err = connector.popen.stderr.read()
    assert "not fully answered" in err and "the rest was not sent" in err
    server.stop()


def test_malformed_frames_are_shown_counted_and_the_session_goes_on(workdir: Path) -> None:
    server, url = start_server(workdir, control=False)
    with connect(url) as ws:
        ws.send(json.dumps({"op": "validate", "resourceName": "system.credentials", "object": TOKEN}))
        assert json.loads(ws.recv())["status"] == 200
        ws.send(
            json.dumps(
                {
                    "op": "connectExtension",
                    "resourceName": "sources",
                    "resourceId": "peerSource",
                    "parameters": {"reconnectSecret": "x"},
                }
            )
        )
        assert json.loads(ws.recv()) == {"status": 200}
        assert json.loads(ws.recv())["op"] == "configureExtension"
        for garbage in ("not json", "[1, 2]", b"\xff\xfe", '{"status": "ok"}'):
            ws.send(garbage)
            answer = json.loads(ws.recv())  # an error answer, as the protocol allows
            assert answer["status"] == 400 and answer["body"][0]["code"] == "io.vantiq.message.malformed"
        ws.send(json.dumps({"op": "notification", "resourceName": "sources", "resourceId": "peerSource", "object": {}}))
        assert json.loads(ws.recv()) == {"status": 200}  # still served
    errors = [server.wait_json(lambda m: m["error"] is not None) for _ in range(4)]
    assert [e["direction"] for e in errors] == ["in"] * 4 and "not JSON" in errors[0]["error"]
    gone = server.wait_json(lambda m: is_link(m, "disconnected"))
    assert gone["payload"]["malformed"] == 4
    server.stop()
    warnings = server.popen.stderr.read()
    assert "Traceback" not in warnings and warnings.count("malformed frame") == 1  # one line per connection


def test_oversized_frame_closes_only_that_socket_and_is_reported(workdir: Path) -> None:
    (workdir / "rows.json").write_text(json.dumps([{"blob": "x" * 30000}]))
    server, url = start_server(workdir, "--set", "limits.max_frame_bytes=20000")
    connector = start_connector(workdir, url)
    connector.wait_json(lambda m: is_link(m, "ready"))
    code, _, err = query(workdir, {})
    assert code == 1 and "closed before the final response" in err
    server.wait_json(lambda m: is_link(m, "disconnected", sent_code=1009))
    connector.wait_json(lambda m: is_link(m, "ready"), timeout=15)  # it comes back
    connector.stop()
    server.stop()
    assert "over 20000 bytes" in server.popen.stderr.read()


def test_the_token_never_leaks(workdir: Path) -> None:
    server, url = start_server(workdir, "--record", str(workdir / "server.ndjson"))
    connector = start_connector(workdir, url, "--record", str(workdir / "connector.ndjson"))
    connector.wait_json(lambda m: is_link(m, "ready"))
    args = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    assert "fieldctl" in args and TOKEN not in args
    assert query(workdir, {"id": 1})[0] == 0
    probe = run_cli("probe", "vantiq", "--endpoint", f"server={url}", "--source", "other", env=token_env())
    assert connector.stop() == 0 and server.stop() == 0
    texts = [
        probe.stdout,
        probe.stderr,
        (workdir / "server.ndjson").read_text(),
        (workdir / "connector.ndjson").read_text(),
        "\n".join(connector.output()),
        "\n".join(server.output()),
        connector.popen.stderr.read(),
        server.popen.stderr.read(),
    ]
    raw = [
        raw_text({"raw": [frame]})
        for text in texts[2:4]
        for line in text.splitlines()
        for frame in json.loads(line)["raw"]
    ]
    assert any('"object": "***"' in frame for frame in raw)
    for text in texts + raw:
        assert TOKEN not in text


def test_probe_round_trip_health_port_and_unreachable(workdir: Path) -> None:
    server, url = start_server(workdir, control=False)
    health = free_port()
    connector = start_connector(workdir, url, "--health-port", str(health))
    connector.wait_json(lambda m: is_link(m, "healthy"))
    ok = run_cli("probe", "vantiq", "--endpoint", f"server={url}", "--health-port", str(health), env=token_env())
    assert ok.returncode == 0 and ok.stdout.startswith("VANTIQ OK - health port"), ok.stdout
    trip = run_cli("probe", "vantiq", "--endpoint", f"server={url}", "--source", "peerSource", env=token_env())
    assert trip.returncode == 1 and "already served by another connector" in trip.stdout  # WARNING: held
    connector.stop()
    trip = run_cli(
        "probe", "vantiq", "--endpoint", f"server={url}", "--source", "peerSource", "--format", "json", env=token_env()
    )
    assert trip.returncode == 0 and "round_trip_seconds" in json.loads(trip.stdout)["metrics"]
    refused = run_cli(
        "probe",
        "vantiq",
        "--endpoint",
        f"server={url}",
        "--source",
        "peerSource",
        env={**token_env(), "CONNECTOR_AUTH_TOKEN": "nope"},
    )
    assert refused.returncode == 2 and "refused the access token" in refused.stdout
    server.stop()
    down = run_cli("probe", "vantiq", "--endpoint", f"server={url}", "--source", "peerSource", env=token_env())
    assert down.returncode == 2 and "cannot connect" in down.stdout


def test_failed_expectation_exits_1_and_publish_without_server_exits_3(workdir: Path) -> None:
    (workdir / "s.ndjson").write_text(
        json.dumps(
            {
                "channel": "query",
                "kind": "peerSource",
                "ts": 0,
                "payload": {"params": {"id": 1}, "expect": {"count": 2}},
            }
        )
        + "\n"
    )
    server, url = start_server(workdir, "--scenario", str(workdir / "s.ndjson"), control=False)
    connector = start_connector(workdir, url)
    assert server.wait(20) == 1
    assert "1 expectation(s) failed" in one_line(server.popen.stderr.read().replace("warning: ", "", 0))
    connector.stop(signal.SIGINT)
    down = run_cli(
        "publish",
        "vantiq",
        "peerSource",
        "--data",
        "{}",
        "--endpoint",
        f"server={url}",
        "--wait",
        "1",
        "--max-retries",
        "1",
        env=token_env(),
    )
    assert down.returncode == 3 and "1 notification(s) not sent" in one_line(down.stderr)


def test_the_simulators_start_line_names_its_sources() -> None:
    url = "server=ws://127.0.0.1:0/api/v1/wsock/websocket"
    shown = run_cli("simulate", "vantiq", "--lines", "--duration", "1", "--endpoint", url, env=token_env())
    assert shown.returncode == 0, shown.stderr
    bound = next(line for line in shown.stdout.splitlines() if "link bound" in line)
    assert bound.endswith("/api/v1/wsock/websocket sources=demoSource"), bound
