"""fieldctl's SEPL connector against `simulate sepl`, as real subprocesses on loopback: login,
sync, hash match on restart, commands and their latency, events accepted and refused, device
edits, faults (platform killed, wrong password, malformed and oversized frames) and the password
never showing anywhere."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fieldctl.protocols.sepl.codec import collection_hash, parse_device_spec
from tests.helpers.ports import free_port
from tests.helpers.processes import FIELDCTL, Proc, lines_of, one_line, run_cli
from tests.helpers.sepl import LAMP, PASSWORD, Platform, connector, env, is_link
from tests.helpers.terminals import Pty

METER = "dev-2:iot#type-meter:Meter 2"
LAMP3 = "dev-3:iot#type-lamp:Lamp 3:location=hall:floor=1"


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    plat = Platform(tmp_path)
    yield plat
    plat.proc.stop()


# --- the core: login, sync, hash match, commands, events -----------------------------------------


def test_sync_then_command_then_hash_match_on_restart(platform: Platform, tmp_path: Path) -> None:
    record = tmp_path / "connector.ndjson"
    conn = connector(platform, tmp_path, "--device", LAMP, "--device", METER, "--record", str(record))
    synced = conn.wait_json(is_link("synced"))
    assert synced["payload"] == {"hash": "310409eefbe7b4583741eb90410e8e39bda1e3d0", "devices": 2}
    conn.wait_json(is_link("ready"))
    sent = [m for m in conn.lines if '"direction":"out"' in m]
    assert [json.loads(m)["kind"] for m in sent] == ["credentials", "clear", "put", "put", "commit"]

    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    assert "register sepl" in ps and PASSWORD not in ps

    result = platform.via("command", "dev-1:sepl_set", "--data", '{"level": 42}')
    assert result.returncode == 0, result.stderr
    latency = next(m for m in lines_of(result.stdout) if m["channel"] == "latency")
    assert latency["payload"]["data"] == '{"level": 42}' and latency["payload"]["latency_ms"] > 0  # echo rule
    response = conn.wait_json(lambda m: m["channel"] == "response")
    assert response["kind"] == "dev-1:sepl_set" and response["direction"] == "out"
    assert response["payload"]["content_type"] == "map" and response["payload"]["payload"]["device_url"] == "dev-1"
    nobody = platform.via("command", "dev-7:sepl_set", "--data", "1")
    assert nobody.returncode == 1 and "no connected connector listens to device dev-7" in nobody.stderr

    assert conn.stop() == 0
    again = connector(platform, tmp_path, "--record", str(record))  # same store: gid and devices kept
    in_sync = again.wait_json(is_link("in-sync"))
    assert in_sync["payload"]["hash"] == synced["payload"]["hash"]
    again.wait_json(is_link("ready"))
    assert again.stop() == 0
    assert not [m for m in lines_of("\n".join(again.output())) if m["channel"] == "device"]  # nothing re-sent

    everything = "\n".join(
        [
            *conn.output(),
            *again.output(),
            record.read_text(),
            *platform.proc.lines,
            conn.popen.stderr.read(),
            again.popen.stderr.read(),
        ]
    )
    assert PASSWORD not in everything and '"pw":"***"' in everything


def test_events_accepted_and_refused(platform: Platform, tmp_path: Path) -> None:
    conn = connector(platform, tmp_path, "--device", LAMP)
    conn.wait_json(is_link("ready"))
    store = ["--store", str(tmp_path / "devices.sqlite")]
    ok = run_cli(
        "publish",
        "sepl",
        "dev-1",
        "sepl_get",
        "--data",
        '{"level": 1}',
        "--metadata",
        '{"src": "t"}',
        "--json",
        *platform.args,
        *store,
        env=env(),
    )
    assert ok.returncode == 0, ok.stderr
    reply = next(m for m in lines_of(ok.stdout) if m["channel"] == "reply")
    assert reply["kind"] == "event" and reply["payload"]["status"] == 200
    for target, text in (
        (["dev-9", "sepl_get"], "not listen to this device {dev-9 sepl_get"),
        (["dev-1:sepl_nope"], "no matching service to 'sepl_nope'"),
    ):
        refused = run_cli("publish", "sepl", *target, "--data", "2", *platform.args, *store, env=env())
        assert refused.returncode == 1 and text in refused.stderr
        one_line(refused.stderr)
        assert ("publish as that connector, with its --gid" in refused.stderr) == ("not listen" in text)
    conn.stop()


def test_device_file_edits_become_put_disconnect_and_commit(platform: Platform, tmp_path: Path) -> None:
    devices = tmp_path / "devices.txt"
    devices.write_text(f"# lamps and meters\n{LAMP}\n{METER}\n")
    conn = connector(platform, tmp_path, "--devices-file", str(devices), "--set", "connector.poll_s=0.1")
    conn.wait_json(is_link("ready"))
    conn.lines.clear()  # the initial sync
    devices.write_text(f"{LAMP}\n{LAMP3}\n")
    sent = [conn.wait_json(lambda m: m["channel"] == "device" and m["direction"] == "out") for _ in range(4)]
    assert [(m["kind"], m["payload"]["payload"]) for m in sent] == [
        ("put", {"uri": "dev-3", "name": "Lamp 3", "iot_type": "iot#type-lamp", "tags": ["location:hall", "floor:1"]}),
        ("commit", "255df5e9dd40260a85ab4e8dca426a9e26929293"),
        ("disconnect", "dev-2"),
        ("commit", collection_hash([parse_device_spec(LAMP), parse_device_spec(LAMP3)])),
    ]
    conn.stop()


def test_scenario_commands_fixed_answers_and_binary_frames(tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.ndjson"
    scenario.write_text(
        "\n".join(
            json.dumps(m)
            for m in [
                {"channel": "command", "kind": "dev-1:sepl_set", "payload": {"on": True}, "ts": 0},
                {"channel": "response", "kind": "dev-1:sepl_set", "payload": {"done": 1}, "ts": 0},
                {"channel": "command", "kind": "dev-1:sepl_set", "payload": {"on": False}, "ts": 0.1},
                {"channel": "response", "kind": "dev-1:sepl_set", "payload": "something else", "ts": 0.1},
            ]
        )
        + "\n"
    )
    plat = Platform(tmp_path, "--scenario", str(scenario), "--send", "binary")
    conn = connector(plat, tmp_path, "--device", LAMP, "--answer", "fixed", "--answer-data", '{"done": 1}')
    first = plat.proc.wait_json(lambda m: m["channel"] == "latency")
    second = plat.proc.wait_json(lambda m: m["channel"] == "latency" and m["error"])
    assert first["payload"]["data"] == '{"done": 1}' and first["error"] is None
    assert second["error"] == 'expected "something else"'  # as JSON says it, not as Python would
    conn.stop()
    plat.proc.stop()
    assert "scenario: dev-1:sepl_set answered" in plat.proc.popen.stderr.read()


def test_answer_program_gets_the_command_but_never_the_password(platform: Platform, tmp_path: Path) -> None:
    program = (
        "import json, os, sys; c = json.load(sys.stdin);"
        " print(c['service_url'], os.environ.get('SEPL_PASSWORD', 'absent'))"
    )
    conn = connector(platform, tmp_path, "--device", LAMP, "--answer-with", f'{sys.executable} -c "{program}"')
    conn.wait_json(is_link("ready"))
    result = platform.via("command", "dev-1:sepl_set", "--data", "1")
    assert result.returncode == 0, result.stderr
    assert next(m for m in lines_of(result.stdout) if m["channel"] == "latency")["payload"]["data"] == "sepl_set absent"
    conn.stop()


def test_on_a_terminal_a_command_shows_its_data_once_and_one_time_and_publish_counts_events(
    platform: Platform, tmp_path: Path, terminals: Callable[..., Pty]
) -> None:
    conn = connector(platform, tmp_path, "--device", LAMP)
    conn.wait_json(is_link("ready"))
    command = ["command", "sepl", "dev-1:sepl_set", "--data", '{"level": 42}', "--via", platform.control]
    term = terminals([*FIELDCTL, *command], env=env())
    assert term.wait(30) == 0, term.text
    verdict = next(line for line in term.text.splitlines() if line.startswith("OK"))
    assert re.fullmatch(r"OK dev-1:sepl_set answered \(\d+\.\d ms\)\s*", verdict), verdict  # one time, no data
    assert "\\" not in term.text and "None" not in term.text  # no double-encoded data, no Python
    assert '{\r\n  "level": 42\r\n}' in term.text  # the result, decoded
    assert 'data={"level":42} metadata=null' in term.text  # the command's row
    store = ["--store", str(tmp_path / "devices.sqlite")]
    publish = ["publish", "sepl", "dev-1", "sepl_get", "--data", '{"level": 1}', *platform.args, *store]
    published = terminals([*FIELDCTL, *publish], env=env())
    assert published.wait(30) == 0, published.text
    assert "published 1 message(s)" in published.text  # the event; not the login frame before it
    conn.stop()


def test_probe_ok_and_critical(platform: Platform) -> None:
    ok = run_cli("probe", "sepl", *platform.args, env=env())
    assert ok.returncode == 0 and ok.stdout.startswith("SEPL OK - login accepted"), ok.stdout + ok.stderr
    assert re.match(r"SEPL OK - login accepted in \d+\.\d ms \(gateway .*\) \| login_seconds=[\d.]+s;", ok.stdout)
    refused = run_cli("probe", "sepl", *platform.args, env=env("wrong"))
    assert refused.returncode == 2 and "dropped the connection" in refused.stdout
    down = run_cli("probe", "sepl", "--endpoint", f"platform=ws://127.0.0.1:{free_port()}", "--crit", "2", env=env())
    assert down.returncode == 2 and "SEPL CRITICAL" in down.stdout


# --- faults ----------------------------------------------------------------------------------------


def test_wrong_password_exits_3_at_once_without_a_loop(platform: Platform, tmp_path: Path) -> None:
    result = run_cli("register", "sepl", "--json", *platform.args, "--device", LAMP, timeout=15, env=env("wrong"))
    assert result.returncode == 3
    one_line(result.stderr)
    assert "dropped the connection after the credentials" in result.stderr and "wrong" not in result.stdout
    refusals = platform.proc.wait_json(is_link("refused"))
    assert refusals["payload"]["user"] == "sepl-user"
    assert not [m for m in platform.proc.lines if '"kind":"refused"' in m]  # exactly one attempt


def test_platform_killed_mid_session_then_back(tmp_path: Path) -> None:
    plat = Platform(tmp_path)
    conn = connector(plat, tmp_path, "--device", LAMP, "--max-retries", "20")
    conn.wait_json(is_link("ready"))
    plat.proc.stop(signal.SIGKILL)
    conn.wait_json(is_link("disconnected"))
    retrying = conn.wait_json(is_link("retrying"))
    assert retrying["payload"]["in_s"] > 0
    plat.proc = plat.start()  # a fresh platform: it forgot the gateway, so the connector syncs again
    conn.wait_json(is_link("synced"), timeout=20)
    conn.wait_json(is_link("ready"))
    assert conn.stop() == 0
    plat.proc.stop()


def test_work_lost_with_the_connection_is_reported(platform: Platform, tmp_path: Path) -> None:
    slow = f"{sys.executable} -c \"import time; time.sleep(5); print('late')\""
    conn = connector(platform, tmp_path, "--device", LAMP, "--answer-with", slow)
    conn.wait_json(is_link("ready"))
    asking = Proc(
        [
            *FIELDCTL,
            "command",
            "sepl",
            "dev-1:sepl_set",
            "--data",
            "1",
            "--via",
            platform.control,
            "--json",
            "--timeout",
            "3",
        ],
        env=env(),
    )
    conn.wait_json(lambda m: m["channel"] == "command")
    closed = platform.via("publish", "close")
    assert closed.returncode == 0, closed.stderr
    conn.wait_json(is_link("in-sync"))  # back, nothing to sync
    assert asking.wait(10) == 4
    conn.stop()
    assert "was not delivered" in conn.popen.stderr.read()


def test_malformed_frames_are_shown_counted_and_survived(platform: Platform, tmp_path: Path) -> None:
    """Frames over the size limit: test_sepl_hostile.py."""
    conn = connector(platform, tmp_path, "--device", LAMP)
    conn.wait_json(is_link("ready"))
    assert platform.via("publish", "raw", "--data", '"this is {not json"').returncode == 0
    bad = conn.wait_json(lambda m: m["channel"] == "malformed")
    assert bad["error"] and bad["payload"] == "this is {not json"
    assert platform.via("command", "dev-1:sepl_set", "--data", "1").returncode == 0  # the session goes on
    conn.stop()

    asyncio.run(raw_client_faults(platform.url))
    platform.proc.wait_json(
        lambda m: m["channel"] == "malformed" and m["direction"] == "in" and "not json" in m["payload"]
    )


async def raw_client_faults(url: str) -> None:
    """What the library would never send: garbage after the login."""
    from websockets.asyncio.client import connect

    async with connect(url, max_size=None) as ws:
        await ws.send(json.dumps({"user": "sepl-user", "pw": PASSWORD, "gid": "", "token": "credentials"}))
        assert json.loads(await ws.recv())["status"] == 200
        await ws.send("not json")
        answers = [json.loads(await ws.recv()) for _ in range(2)]
        assert [a["status"] for a in answers] == [400, 400]


def test_read_deadline_closes_a_silent_connector_and_its_pings_keep_it_open(tmp_path: Path) -> None:
    plat = Platform(tmp_path, "--set", "simulate.read_timeout_s=1", "--set", "simulate.ping_period_s=60")
    silent = connector(plat, tmp_path, "--device", LAMP, "--set", "timeouts.idle_ping_s=30")
    silent.wait_json(is_link("ready"))
    closed = silent.wait_json(is_link("disconnected"), timeout=5)
    assert closed["payload"]["code"] == 1000
    plat.proc.wait_json(lambda m: m["kind"] == "disconnected")
    silent.wait_json(is_link("in-sync"))
    silent.stop()
    pinging = connector(plat, tmp_path, "--set", "timeouts.idle_ping_s=0.3")
    pinging.wait_json(is_link("ready"))
    with pytest.raises(AssertionError, match="no matching line"):
        pinging.wait_json(is_link("disconnected"), timeout=2.5)
    pinging.stop()
    plat.proc.stop()


def test_wss_verifies_the_certificate_unless_told_otherwise(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    made = subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        capture_output=True,
        check=False,
        timeout=30,
    )
    if made.returncode:
        pytest.skip("openssl cannot make a test certificate")
    plat = Platform(tmp_path, "--tls-cert", str(cert), "--tls-key", str(key), base="wss://localhost")
    untrusted = run_cli("register", "sepl", "--json", *plat.args, "--device", LAMP, env=env())
    assert untrusted.returncode == 3 and "certificate not trusted" in untrusted.stderr
    one_line(untrusted.stderr)
    trusted = connector(plat, tmp_path, "--device", LAMP, "--ca-file", str(cert))
    trusted.wait_json(is_link("ready"))
    trusted.stop()
    plat.proc.stop()


# --- a first session: each mistake on the way points to the fix ---------------------------------


def test_a_command_without_the_simulator_says_to_go_through_it() -> None:
    result = run_cli("command", "sepl", "dev-1:sepl_set", "--data", "1", env=env())
    assert result.returncode == 2, result.stderr
    assert "simulate sepl --control SOCKET" in one_line(result.stderr) and "--via SOCKET" in result.stderr


def test_a_command_waits_for_a_connector_started_with_it(platform: Platform, tmp_path: Path) -> None:
    """A pasted session starts the connector and commands it at once: the platform waits for it."""
    command = ["command", "sepl", "dev-1:sepl_set", "--data", "5", "--via", platform.control, "--json"]
    asking = Proc([*FIELDCTL, *command], env=env())
    conn = connector(platform, tmp_path, "--device", LAMP)
    try:
        assert asking.wait(20) == 0, asking.output()
        assert any('"channel":"latency"' in line for line in asking.output())
    finally:
        asking.stop()
        conn.stop()


def test_a_missing_password_names_the_variable() -> None:
    environment = env()
    del environment["SEPL_PASSWORD"]
    result = run_cli("probe", "sepl", "--endpoint", f"platform=ws://127.0.0.1:{free_port()}", env=environment)
    said = result.stdout + result.stderr
    assert "SEPL_PASSWORD is not set" in said and "export SEPL_PASSWORD=" in said
