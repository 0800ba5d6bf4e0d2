"""Interop: fieldctl against the REAL auto-trainer-api 0.12.0 (PyPI), run as a device in its own venv
and process (tests/peers/autotrainer_device.py, built by `make peers`).

fieldctl's simulator could share fieldctl's misunderstandings of the protocol; the real package cannot.
Every wait here is on a condition with a deadline.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from tests.helpers.autotrainer import HEARTBEAT_S, IDENTIFIER, Endpoints, start_device, start_simulator, stop_device
from tests.helpers.processes import FIELDCTL, Proc, run_cli

PACKAGE_VERSION = "0.12.0"
REPLY_TIMEOUT_S = 5.0

TOPIC_HEARTBEAT = (1001).to_bytes(4, "little")
TOPIC_EMERGENCY = (2001).to_bytes(4, "little")
TOPIC_EVENT = (4001).to_bytes(4, "little")


# --- helpers -------------------------------------------------------------------------------------


def send_event(device: Proc, body: dict[str, Any]) -> None:
    """Hands one event to the real service's send_event_dict and waits until the device says it did."""
    device.write(json.dumps({"op": "event", "event": body}) + "\n")
    device.wait_json(lambda m: m["sent"] is True, timeout=10)


def event(kind: int, context: Any = None, index: int | None = None) -> dict[str, Any]:
    return {
        "kind": kind,
        "when": time.time(),
        "index": time.perf_counter_ns() if index is None else index,
        "context": context,
    }


def ndjson(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def not_link(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if m["channel"] != "link"]


def raw_frames(msg: dict[str, Any]) -> list[bytes]:
    return [base64.b64decode(frame) for frame in msg["raw"]]


def delegate_calls(device: Proc, sentinel_nonce: int, url: str) -> list[dict[str, Any]]:
    """Every delegate call the device logged before now, in order (the sentinel's own call excluded): a
    GET_CONFIGURATION with a sentinel nonce is served after all earlier requests, so its log line comes
    after theirs and waiting for it collects them all."""
    exchange(url, [json.dumps({"command": 300, "nonce": sentinel_nonce}).encode()])
    device.wait_json(lambda m: m["delegate"]["nonce"] == sentinel_nonce, timeout=10)
    calls = []
    for line in list(device.lines):
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if isinstance(message, dict) and "delegate" in message:
            device.lines.remove(line)
            calls.append(message["delegate"])
    return calls


def exchange(url: str, requests: list[bytes], timeout: float = REPLY_TIMEOUT_S) -> list[bytes]:
    """Sends each one-frame request on a REQ socket and returns the one-frame replies, in order."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDTIMEO, int(timeout * 1000))
    replies: list[bytes] = []
    try:
        sock.connect(url)
        for request in requests:
            sock.send(request)
            if not sock.poll(int(timeout * 1000), zmq.POLLIN):
                raise AssertionError(f"no reply from {url} within {timeout} s to {request!r}")
            frames = sock.recv_multipart()
            assert len(frames) == 1, f"reply to {request!r} has {len(frames)} frames: {frames!r}"
            replies.append(frames[0])
    finally:
        sock.close(linger=0)
        ctx.term()
    return replies


class Listener:
    """`fieldctl listen` in the background, with a way to know its subscription is live; everything it
    shows is also appended to a --record file, read back once it has ended."""

    def __init__(self, endpoints: Endpoints, record: Path, *args: str) -> None:
        self.record = record
        self.proc = Proc(
            [*FIELDCTL, "listen", "autotrainer", "--json", "--record", str(record), *endpoints.args, *args]
        )

    def shown(self) -> list[dict[str, Any]]:
        assert self.proc.popen.poll() is not None, "read the record once listen has ended"
        return not_link(ndjson(self.record.read_text()))

    def wait_connected(self) -> None:
        self.proc.wait_json(lambda m: m["channel"] == "link" and m["endpoint"] == "events" and m["kind"] == "ready")

    def wait_kind(self, kind: str, timeout: float) -> dict[str, Any]:
        return self.proc.wait_json(lambda m: m["channel"] != "link" and m["kind"] == kind, timeout=timeout)


def first_event_through(listener: Listener, device: Proc, body: dict[str, Any], kind: str) -> dict[str, Any]:
    """ZeroMQ slow joiner: the SUB's subscription may reach the PUB a moment after the handshake. An event
    published before that is dropped by the device (never delivered late), so resending until one arrives
    shows exactly one copy to the listener."""
    for attempt in range(5):
        send_event(device, body)
        try:
            return listener.wait_kind(kind, timeout=2.0)
        except AssertionError:
            if listener.proc.popen.poll() is not None or attempt == 4:
                raise
    raise AssertionError("unreachable")


# --- the real device shared by most tests -----------------------------------------------------------


@pytest.fixture(scope="module")
def device_endpoints() -> Endpoints:
    return Endpoints()


@pytest.fixture(scope="module")
def device(device_endpoints: Endpoints) -> Iterator[Proc]:
    proc = start_device(device_endpoints)
    yield proc
    stop_device(proc)


# --- 1. listen ------------------------------------------------------------------------------------


def test_listen_shows_heartbeats_of_the_real_device(device: Proc, device_endpoints: Endpoints) -> None:
    done = run_cli(
        "listen",
        "autotrainer",
        "--json",
        "--count",
        "2",
        "--timeout",
        "10",
        "--filter",
        "channel=heartbeat",
        *device_endpoints.args,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    beats = not_link(ndjson(done.stdout))
    assert len(beats) == 2, done.stdout
    for beat in beats:
        assert (beat["channel"], beat["kind"], beat["direction"], beat["error"]) == (
            "heartbeat",
            "heartbeat",
            "in",
            None,
        )
        assert beat["payload"]["identifier"] == IDENTIFIER
        assert beat["payload"]["version"] == PACKAGE_VERSION
        assert abs(beat["payload"]["timestamp"] - time.time()) < 60
        topic, body = raw_frames(beat)
        assert topic == TOPIC_HEARTBEAT
        assert json.loads(body) == beat["payload"]
    assert beats[1]["payload"]["timestamp"] > beats[0]["payload"]["timestamp"]


def test_listen_shows_events_and_each_emergency_once(device: Proc, device_endpoints: Endpoints, tmp_path: Path) -> None:
    """Subscribed to everything (kind filters only), fieldctl must show each emergency event once although
    the device publishes it on EMERGENCY and again on EVENT; distinct stops must both show. --count 5 ends
    the run on the marker (tunnelExit) only if no duplicate took one of the five places."""
    kinds = ["trialStarted", "emergencyStop", "emergencyResume", "tunnelExit"]
    listener = Listener(
        device_endpoints,
        tmp_path / "listen.ndjson",
        "--count",
        "5",
        "--timeout",
        "30",
        *[arg for kind in kinds for arg in ("--filter", f"kind={kind}")],
    )
    try:
        listener.wait_connected()
        trial = event(1301, {"session_id": "s-42", "trial_id": 143, "reason": "pellet seen"})
        first_event_through(listener, device, trial, "trialStarted")
        stop_1 = event(101, {"reason": "interop", "reason_code": 401, "active_alarms": [101]})
        stop_2 = event(101, {"reason": "interop", "reason_code": 401, "active_alarms": []})
        resume = event(102, {"reason": "interop", "reason_code": 401, "resumed_alarms": []})
        marker = event(1102)
        for body in (stop_1, stop_2, resume, marker):
            send_event(device, body)
        assert listener.proc.wait(15) == 0, listener.proc.stderr_now()
    finally:
        listener.proc.stop()

    shown = listener.shown()
    assert [m["kind"] for m in shown] == [
        "trialStarted",
        "emergencyStop",
        "emergencyStop",
        "emergencyResume",
        "tunnelExit",
    ], [(m["channel"], m["kind"], m["payload"]) for m in shown]
    _, got_stop_1, got_stop_2, got_resume, got_marker = shown
    assert got_stop_1["payload"] == {
        "kind": 101,
        "when": stop_1["when"],
        "index": stop_1["index"],
        "context": {"reason": "interop", "reasonCode": 401, "activeAlarms": [101]},
    }
    # the copy shown is the first one, from EMERGENCY; its EVENT twin was dropped
    assert got_stop_1["channel"] == got_stop_2["channel"] == got_resume["channel"] == "emergency"
    assert raw_frames(got_stop_1)[0] == TOPIC_EMERGENCY
    assert got_stop_2["payload"]["index"] == stop_2["index"]
    assert got_resume["payload"]["context"] == {"reason": "interop", "reasonCode": 401, "resumedAlarms": []}
    assert got_marker["payload"] == {"kind": 1102, "when": marker["when"], "index": marker["index"], "context": None}
    for msg in shown:
        assert msg["error"] is None and msg["direction"] == "in"


def test_listen_decodes_an_event_from_the_real_device(
    device: Proc, device_endpoints: Endpoints, tmp_path: Path
) -> None:
    listener = Listener(
        device_endpoints, tmp_path / "listen.ndjson", "--count", "1", "--timeout", "30", "--filter", "kind=trialStarted"
    )
    try:
        listener.wait_connected()
        big_index = 2**60 + 777  # ns timestamps exceed 2^53: must survive as an exact integer
        trial = event(1301, {"session_id": "s-7", "trial_id": 9, "reason": "pellet seen"}, index=big_index)
        got = first_event_through(listener, device, trial, "trialStarted")
        assert listener.proc.wait(15) == 0, listener.proc.stderr_now()
    finally:
        listener.proc.stop()
    assert listener.shown() == [got]
    assert (got["channel"], got["kind"], got["direction"], got["error"]) == ("event", "trialStarted", "in", None)
    assert got["payload"] == {
        "kind": 1301,
        "when": trial["when"],
        "index": big_index,
        "context": {"sessionId": "s-7", "trialId": 9, "reason": "pellet seen"},
    }
    topic, body = raw_frames(got)
    assert topic == TOPIC_EVENT
    assert b'"sessionId": "s-7"' in body


# --- 2. command, synchronous -----------------------------------------------------------------------


def test_command_get_configuration(device: Proc, device_endpoints: Endpoints) -> None:
    done = run_cli(
        "command", "autotrainer", "get-configuration", "--json", "--timeout", "10", *device_endpoints.args, timeout=30
    )
    assert done.returncode == 0, done.stderr
    request, reply = ndjson(done.stdout)
    assert (request["channel"], request["direction"], request["kind"]) == ("command", "out", "get-configuration")
    assert (reply["channel"], reply["direction"], reply["kind"]) == ("reply", "in", "get-configuration")
    nonce = request["id"]
    assert isinstance(nonce, int) and 1 <= nonce < 2**31
    assert reply["id"] == nonce
    body = reply["payload"]
    assert (
        body["nonce"],
        body["command"],
        body["result"],
        body["errorKind"],
        body["errorCode"],
        body["errorMessage"],
    ) == (nonce, 300, 100, 0, 0, None)
    assert body["data"]["applicationVersion"] == "1.0.0-peer"
    assert body["data"]["deviceId"] == "peer-0001"
    assert all("_" not in key for key in body["data"])
    call = device.wait_json(lambda m: m["delegate"]["nonce"] == nonce, timeout=10)["delegate"]
    assert call["command"] == 300


def test_command_emergency_resume_when_not_stopped_fails(device: Proc, device_endpoints: Endpoints) -> None:
    done = run_cli(
        "command", "autotrainer", "emergency-resume", "--json", "--timeout", "10", *device_endpoints.args, timeout=30
    )
    assert done.returncode == 1, (done.stdout, done.stderr)
    request, reply = ndjson(done.stdout)
    body = reply["payload"]
    assert body["nonce"] == request["id"]
    assert (body["command"], body["result"], body["errorKind"], body["errorCode"]) == (210, 400, 2, 3)
    assert body["errorMessage"] == "not in emergency stop"
    assert "not in emergency stop" in done.stderr


# --- 3. command, asynchronous ------------------------------------------------------------------------


def test_command_set_application_mode_waits_for_the_command_result(device: Proc, device_endpoints: Endpoints) -> None:
    started = time.monotonic()
    done = run_cli(
        "command",
        "autotrainer",
        "set-application-mode",
        "--data",
        '{"mode": 100}',
        "--json",
        "--timeout",
        "10",
        *device_endpoints.args,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 10
    lines = ndjson(done.stdout)
    assert [m["channel"] for m in lines] == ["command", "reply", "command_result"], done.stdout
    request, reply, result = lines
    nonce = request["id"]
    assert request["payload"] == {"command": 120, "nonce": nonce, "data": {"mode": 100}}
    assert reply["id"] == nonce and reply["payload"]["nonce"] == nonce
    assert (reply["payload"]["command"], reply["payload"]["result"]) == (120, 201)
    assert (result["id"], result["kind"], result["direction"], result["endpoint"]) == (
        nonce,
        "set-application-mode",
        "in",
        "events",
    )
    assert result["payload"] == {
        "result": 100,
        "data": {"mode": 100},
        "errorCode": 0,
        "errorMessage": None,
        "command": 120,
        "nonce": nonce,
    }
    assert raw_frames(result)[0] == (6001).to_bytes(4, "little")
    call = device.wait_json(lambda m: m["delegate"]["nonce"] == nonce, timeout=10)["delegate"]
    assert (call["command"], call["data"]) == (120, {"mode": 100})


# --- 4. probe ----------------------------------------------------------------------------------------


def test_probe_ok_against_the_real_device(device: Proc, device_endpoints: Endpoints) -> None:
    done = run_cli("probe", "autotrainer", *device_endpoints.args, timeout=30)
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert done.stdout.startswith("AUTOTRAINER OK"), done.stdout
    assert IDENTIFIER in done.stdout and PACKAGE_VERSION in done.stdout

    done = run_cli("probe", "autotrainer", "--format", "json", *device_endpoints.args, timeout=30)
    assert done.returncode == 0, (done.stdout, done.stderr)
    report = json.loads(done.stdout)
    assert (report["status"], report["code"]) == ("OK", 0)
    assert report["metrics"]["heartbeat_wait_seconds"] <= 5 * HEARTBEAT_S
    assert report["metrics"]["command_rtt_seconds"] < REPLY_TIMEOUT_S


def test_probe_critical_after_the_device_stopped() -> None:
    endpoints = Endpoints()
    own = start_device(endpoints)
    try:
        done = run_cli("probe", "autotrainer", "--crit", "5", *endpoints.args, timeout=30)
        assert done.returncode == 0, (done.stdout, done.stderr)
    finally:
        stop_device(own)
    assert own.popen.returncode == 0

    started = time.monotonic()
    done = run_cli("probe", "autotrainer", "--crit", "1.5", "--format", "json", *endpoints.args, timeout=30)
    elapsed = time.monotonic() - started
    assert done.returncode == 2, (done.stdout, done.stderr)
    report = json.loads(done.stdout)
    assert (report["status"], report["code"], report["crit"]) == ("CRITICAL", 2, 1.5)
    assert "connection refused" in report["summary"], report  # nothing listens there any more
    assert elapsed < 1.5 + 6, f"probe took {elapsed:.1f} s with --crit 1.5"


# --- 5. the simulator's replies are byte-identical to the real package's ----------------------------

REQUESTS: list[tuple[str, bytes]] = [
    ("get-configuration", json.dumps({"command": 300, "nonce": 101}).encode()),
    ("get-status", json.dumps({"command": 400, "nonce": 102}).encode()),
    ("set-training-mode 100", json.dumps({"command": 130, "nonce": 103, "data": {"mode": 100}}).encode()),
    ("emergency-resume while not stopped", json.dumps({"command": 210, "nonce": 104}).encode()),
    (
        "unknown command 4242",
        json.dumps({"command": 4242, "customCommand": 7, "nonce": 105, "data": {"animalName": "Mouse A"}}).encode(),
    ),
    ("not JSON", b"get configuration, please"),
    ("no command key", json.dumps({"nonce": 5}).encode()),
    ("command 0", json.dumps({"command": 0, "nonce": 106}).encode()),
]
UNPARSEABLE = (
    b'{"nonce": 0, "command": 0, "result": 0, "data": null, "errorKind": 0, "errorCode": 0, "errorMessage": null}'
)


def test_simulator_and_real_device_reply_with_identical_bytes(tmp_path: Path) -> None:
    frames = [request for _, request in REQUESTS]

    sim_endpoints = Endpoints()
    sim = start_simulator(sim_endpoints, "--no-timeline", "--set", "simulate.async_commands=[]")
    try:
        sim_replies = exchange(sim_endpoints.commands, frames)
    finally:
        sim.stop()

    # The delegate answers what the simulator answered; everything else (framing, key order, casing,
    # errorKind, 99999, unparseable handling) is the real package's own doing.
    table: dict[str, dict[str, Any]] = {}
    for (label, _), reply in zip(REQUESTS, sim_replies, strict=True):
        body = json.loads(reply)
        if body["nonce"] == 0 and body["command"] == 0 and body["result"] == 0:
            continue
        entry = {
            "result": body["result"],
            "data": body["data"],
            "error_code": body["errorCode"],
            "error_message": body["errorMessage"],
        }
        key = str(body["command"])
        assert table.setdefault(key, entry) == entry, f"{label}: two different answers for command {key}"
    assert set(table) == {"300", "400", "130", "210", "99999"}, table
    replies_file = tmp_path / "replies.json"
    replies_file.write_text(json.dumps(table))

    real_endpoints = Endpoints()
    real = start_device(real_endpoints, "--replies", str(replies_file))
    try:
        real_replies = exchange(real_endpoints.commands, frames)
    finally:
        stop_device(real)

    mismatches = [
        f"{label}:\n  simulator: {sim!r}\n  real:      {got!r}"
        for (label, _), sim, got in zip(REQUESTS, sim_replies, real_replies, strict=True)
        if sim != got
    ]
    assert not mismatches, "reply bytes differ:\n" + "\n".join(mismatches)
    # and the replies say what the spec says they say
    by_label = {label: json.loads(reply) for (label, _), reply in zip(REQUESTS, real_replies, strict=True)}
    assert by_label["unknown command 4242"]["command"] == 99999
    assert by_label["emergency-resume while not stopped"]["errorKind"] == 2
    for label in ("not JSON", "no command key", "command 0"):
        assert real_replies[[name for name, _ in REQUESTS].index(label)] == UNPARSEABLE, label


# --- 6. what the real delegate sees is what fieldctl's device model thinks it sees ---------------------

DELEGATE_REQUESTS: list[bytes] = [
    json.dumps({"command": 300, "nonce": 201}).encode(),
    json.dumps({"command": 130, "nonce": 202, "data": {"mode": 100}}).encode(),
    json.dumps({"command": 4242, "customCommand": 7, "nonce": 203, "data": {"animalName": "Mouse A"}}).encode(),
    json.dumps(
        {"command": 99999, "custom_command": 12, "nonce": 204, "data": {"Hello World": ["X Y", "abc"]}}
    ).encode(),
    json.dumps({"command": "400", "nonce": 205}).encode(),
    json.dumps({"command": 400.0, "nonce": 206}).encode(),
    json.dumps({"command": True, "nonce": 207}).encode(),
    json.dumps(
        {"command": 300, "nonce": 208, "data": {"id": "3F2504E0-4F89-11D3-9A0C-0305E82C3301"}}, indent=2
    ).encode(),
    json.dumps({"command": 300}).encode(),
    json.dumps({"command": 0, "nonce": 209}).encode(),
    json.dumps({"command": [300], "nonce": 210}).encode(),
    json.dumps([300, 211]).encode(),
    b'{"command": 300, "nonce": 212, "data": 1E5}',
    b'{"Command": 300, "nonce": 213}',
    b'{"COMMAND": 300, "NONCE": 214}',
    b"\xff\xfe not utf-8",
]


def test_real_delegate_sees_what_fieldctl_device_model_parses(device: Proc, device_endpoints: Endpoints) -> None:
    """fieldctl's simulator derives the delegate's view of a request (whole-text decamelize, 99999
    mapping, unparseable cases) itself; the real package's delegate log is the reference."""
    from fieldctl.profiles.loader import load_profile
    from fieldctl.protocols.autotrainer import codec

    known = set(codec.Vocabulary.from_profile(load_profile("autotrainer")).command_code.values())
    expected = []
    for request in DELEGATE_REQUESTS:
        parsed = codec.parse_request([request], known)
        if parsed is not None:
            expected.append(
                {
                    "command": parsed.command,
                    "custom_command": parsed.custom_command,
                    "nonce": parsed.nonce,
                    "data": parsed.data,
                }
            )

    delegate_calls(device, 990001, device_endpoints.commands)  # drop calls logged by earlier tests
    replies = exchange(device_endpoints.commands, DELEGATE_REQUESTS)
    calls = delegate_calls(device, 990002, device_endpoints.commands)
    assert calls == expected
    for request, reply in zip(DELEGATE_REQUESTS, replies, strict=True):
        if codec.parse_request([request], known) is None:
            assert reply == UNPARSEABLE, request
