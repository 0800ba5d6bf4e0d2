"""fieldctl's one-liner client against `simulate oneliner`, as real subprocesses on loopback ports:
streams with exact-topic isolation, calls, errors, toggles, timeouts, malformed and hostile input,
a server killed and restarted, probe codes. The simulator's wire is also checked against what the
real RouterClient sends (fixture client_side_frames_from_real_RouterClient)."""

from __future__ import annotations

import asyncio
import json
import pickle
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from fieldctl.profiles import load_profile
from fieldctl.protocols.core.errors import Timeout
from fieldctl.protocols.oneliner import codec
from fieldctl.protocols.oneliner.client import Caller, build_request
from tests.helpers.fixture_files import load_fixture
from tests.helpers.oneliner import PROFILE, Ports, data_lines, one_line, start
from tests.helpers.ports import free_port
from tests.helpers.processes import FIELDCTL, Proc, run_cli

REAL_CLIENT = "client_side_frames_from_real_RouterClient.json"

# A server like the fixtures' (object horn, stream counter), for byte-exact replies.
HORN_PROFILE = """
extends = "oneliner"
name = "horn"
[simulate.streams.counter]
frequency_hz = 20
[simulate.objects.horn]
attributes = { volume = 11 }
[simulate.objects.horn.methods]
beep = { action = "return", value = "Boop!" }
fail = { action = "raise", message = "Crunch!" }
add = { action = "sum" }
[simulate.named_calls.add_defaults]
call = "horn.add"
args = [1, 2]
"""


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Proc, Ports]]:
    """One simulator for the tests that leave its state as they found it, bound on ports picked
    just before: a port picked and left free is any outgoing connection's a moment later, and in
    a random order the first test to ask for the ports could run long before one that needs the
    server."""
    ports = Ports()
    proc = start(ports)
    yield proc, ports
    proc.stop()


@pytest.fixture(scope="module")
def server(served: tuple[Proc, Ports]) -> Proc:
    return served[0]


@pytest.fixture(scope="module")
def ports(served: tuple[Proc, Ports]) -> Ports:
    return served[1]


def cli(*args: str, timeout: float = 20) -> Any:
    return run_cli(*args, timeout=timeout)


# --- streams ---------------------------------------------------------------------------------------


def test_listen_stream_is_exact_and_filter_channel_does_the_same(server: Proc, ports: Ports) -> None:
    by_option = cli("listen", PROFILE, "--json", "--count", "6", "--timeout", "10", "--stream", "frame", *ports.args)
    by_filter = cli(
        "listen", PROFILE, "--json", "--count", "6", "--timeout", "10", "--filter", "channel=frame_2", *ports.args
    )
    assert by_option.returncode == 0 and by_filter.returncode == 0, by_option.stderr + by_filter.stderr
    frames, frames_2 = data_lines(by_option.stdout), data_lines(by_filter.stdout)
    assert {m["channel"] for m in frames} == {"frame"} and {m["channel"] for m in frames_2} == {"frame_2"}
    values = [m["payload"]["data"] for m in frames]
    assert (
        values == sorted(values)
        and all(v < 1000 for v in values)
        and all(m["payload"]["data"] >= 1000 for m in frames_2)
    )
    stamps = [m["payload"]["timestamp"] for m in frames]
    assert all(isinstance(t, float) for t in stamps) and stamps == sorted(stamps)  # the server's clock


def test_listen_decodes_pickle_json_raw_and_error_packets(server: Proc, ports: Ports) -> None:
    listener = Proc(
        [
            *FIELDCTL,
            "listen",
            PROFILE,
            "--json",
            *ports.args,
            "--stream",
            "status_json",
            "--stream",
            "blob",
            "--stream",
            "faulty",
            "--stream",
            "counter_value",
        ]
    )
    try:
        got = {
            name: listener.wait_json(lambda m, name=name: m["channel"] == name)
            for name in ("status_json", "blob", "faulty", "counter_value")
        }
    finally:
        assert listener.stop() == 0
    assert got["status_json"]["payload"]["data"].keys() == {"seq", "ok"}
    assert bytes.fromhex(got["blob"]["payload"]["data"]["bytes_hex"]).startswith(b"frame ")
    assert isinstance(got["counter_value"]["payload"]["data"], int)
    faulty = got["faulty"]
    assert faulty["kind"] == "error" and faulty["error"] is None and faulty["payload"]["success"] is False
    assert faulty["payload"]["data"] == {"python_repr": "ValueError('sensor offline')", "python_type": "ValueError"}


def test_hostile_and_broken_packets_are_refused_and_the_stream_goes_on(tmp_path: Path) -> None:
    """A publisher of our own: a pickle that would run code, a broken packet, then good data.
    With --trust-pickle a harmless class is decoded (and the warning given)."""
    ports = Ports()
    canary = tmp_path / "canary"

    class Exploit:
        def __reduce__(self) -> tuple[Any, ...]:
            import os

            return os.system, (f"touch {canary}",)

    from collections import OrderedDict

    hostile = codec.encode_packet("frame", True, 1.0, pickle.dumps(Exploit(), protocol=4))
    broken = b"frame\x00\xff"
    ordered = codec.encode_packet("frame", True, 2.0, pickle.dumps(OrderedDict(a=1), protocol=4))
    good = codec.encode_packet("frame", True, 3.0, pickle.dumps(42, protocol=4))
    ctx = zmq.Context()
    pub = ctx.socket(zmq.XPUB)
    pub.bind(ports.streams)

    def listen(packets: list[bytes], *extra: str) -> tuple[list[dict[str, Any]], str]:
        """--count 1: the last packet is the one well-formed sample; malformed ones never count."""
        listener = Proc(
            [
                *FIELDCTL,
                "listen",
                PROFILE,
                "--json",
                "--count",
                "1",
                "--timeout",
                "10",
                "--stream",
                "frame",
                *extra,
                *ports.args,
            ]
        )
        while True:  # its subscription (after the last listener's unsubscription): nothing is lost now
            assert pub.poll(10_000)
            if pub.recv()[:1] == b"\x01":
                break
        for packet in packets:
            pub.send(packet)
        assert listener.wait(15) == 0
        return data_lines("\n".join(listener.output())), listener.popen.stderr.read()

    try:
        lines, stderr = listen([hostile, broken, ordered, good])
        assert lines[0]["error"] in ("unsafe pickle refused: posix.system", "unsafe pickle refused: os.system")
        assert lines[0]["payload"] == {"success": True, "timestamp": 1.0, "data": None}
        assert lines[1]["error"] == "packet ends before the metadata length"
        assert lines[2]["error"] == "unsafe pickle refused: collections.OrderedDict"
        assert lines[3]["payload"]["data"] == 42 and lines[3]["error"] is None
        assert not canary.exists() and "warning" not in stderr
        lines, stderr = listen([ordered], "--trust-pickle")  # a trusted server: the class is built
        assert lines[0]["payload"]["data"] == {"a": 1} and lines[0]["error"] is None
        assert "warning: --trust-pickle" in stderr
    finally:
        pub.close(0)
        ctx.destroy(linger=0)


# --- calls -----------------------------------------------------------------------------------------


def test_calls_errors_and_usage(server: Proc, ports: Ports) -> None:
    added = cli(
        "command",
        PROFILE,
        "call",
        "counter.echo",
        "--args",
        '[1, "two"]',
        "--kwargs",
        '{"k": [3]}',
        "--timestamp",
        "--json",
        *ports.args,
    )
    assert added.returncode == 0, added.stderr
    request, reply = data_lines(added.stdout)
    assert request["channel"] == "call" and request["kind"] == "counter.echo" and request["direction"] == "out"
    assert reply["payload"]["data"] == {"args": [1, "two"], "kwargs": {"k": [3]}}
    assert isinstance(reply["payload"]["timestamp"], float)
    failed = cli("command", PROFILE, "call", "counter.fail", "--json", *ports.args)
    assert failed.returncode == 1 and one_line(failed.stderr) == "fieldctl: counter.fail: failed: Crunch!"
    missing = cli("command", PROFILE, "call", "nope.beep", "--json", *ports.args)
    assert missing.returncode == 1 and "not found: 'nope is not present in instances.'" in missing.stderr
    named = cli("command", PROFILE, "named", "add_five", "--json", *ports.args)
    assert named.returncode == 0 and isinstance(data_lines(named.stdout)[1]["payload"]["data"], int)
    version = cli("command", PROFILE, "version", *ports.args)
    assert version.returncode == 0 and "0.1.1.dev4" in version.stdout
    for bad in (
        ["call", "nodot"],
        ["call", "counter.add", "--args", '{"a": 1}'],
        ["enable"],
        ["streams", "x"],
        ["frobnicate"],
        ["call", "counter.add", "--data", "1"],
    ):
        usage = cli("command", PROFILE, *bad, *ports.args)
        assert usage.returncode == 2, (bad, usage.stderr)
        one_line(usage.stderr)


def test_streams_configuration_and_toggles() -> None:
    toggles = Ports()  # its own server: disabling is global
    proc = start(toggles)
    try:
        config = cli("command", PROFILE, "streams", "--json", *toggles.args)
        assert config.returncode == 0, config.stderr
        periodic = data_lines(config.stdout)[-1]["payload"]["data"]["periodic_streams"]
        assert periodic["frame"] == {"encoding": "pickle", "return_type": "int", "frequency_hz": 10.0, "enabled": True}
        off = cli("command", PROFILE, "disable", "frame", *toggles.args)
        assert off.returncode == 0 and "warning: disable frame affects every client" in off.stderr
        quiet = cli("listen", PROFILE, "--json", "--idle", "0.6", "--stream", "frame", *toggles.args)
        assert quiet.returncode == 4 and data_lines(quiet.stdout) == []
        again = cli("command", PROFILE, "disable", "frame", *toggles.args)
        assert again.returncode == 1 and "'frame'" in again.stderr  # the real server's KeyError
        listing = cli("command", PROFILE, "streams", *toggles.args)
        assert listing.returncode == 1 and "while one of them is disabled" in listing.stderr
        assert cli("command", PROFILE, "enable", "frame", *toggles.args).returncode == 0
        back = cli("listen", PROFILE, "--json", "--count", "2", "--timeout", "5", "--stream", "frame", *toggles.args)
        assert back.returncode == 0 and len(data_lines(back.stdout)) == 2
        unknown = cli("command", PROFILE, "enable", "nope", *toggles.args)
        assert unknown.returncode == 1 and "'Stream: nope does not exist.'" in unknown.stderr
    finally:
        proc.stop()


def test_timeout_exits_4_and_the_requester_recovers(server: Proc, ports: Ports) -> None:
    slow = cli("command", PROFILE, "call", "counter.sleep", "--args", "[0.8]", "--timeout", "0.3", *ports.args)
    assert slow.returncode == 4 and "may still run on the server" in slow.stderr
    assert "Traceback" not in slow.stderr

    async def two_calls() -> tuple[str, Any]:
        caller = Caller(load_profile(PROFILE, endpoints=[f"calls={ports.calls}"]), lambda m: None, lambda t: None)
        try:
            with pytest.raises(Timeout):
                await caller.call(build_request("call", {"params": ["counter.sleep"], "args": [0.8]}), 0.3)
            _, reply, _ = await caller.call(build_request("version", {}), 5)  # a new REQ: the old one is gone
            return reply.payload["data"], reply.error
        finally:
            caller.close()

    assert asyncio.run(two_calls()) == ("0.1.1.dev4", None)


def test_nobody_there_is_exit_3_and_a_silent_server_times_out() -> None:
    nobody = Ports()
    refused = cli("command", PROFILE, "version", "--timeout", "5", *nobody.args)
    assert refused.returncode == 3 and "connection refused" in one_line(refused.stderr)
    ctx = zmq.Context()
    silent = ctx.socket(zmq.ROUTER)  # accepts requests, never answers
    silent.bind(nobody.calls)
    try:
        result = cli("command", PROFILE, "version", "--timeout", "0.5", *nobody.args)
    finally:
        ctx.destroy(linger=0)
    assert result.returncode == 4 and "no reply from" in one_line(result.stderr)


# --- the server's robustness -----------------------------------------------------------------------------


def test_malformed_and_hostile_requests_get_error_replies_and_the_server_lives(server: Proc, ports: Ports) -> None:
    security = load_fixture(PROFILE, "security_unpickle_runs_callable.json")["frames"][0]["parts"][1]["hex"]
    ctx = zmq.Context()
    try:
        for body in (b"not a pickle", pickle.dumps(("o", "ping", [], {})), bytes.fromhex(security)):
            req = ctx.socket(zmq.REQ)
            req.connect(ports.calls)
            req.send(body)
            assert req.poll(5000), body
            reply = codec.decode_reply(PROFILE, req.recv_multipart(), "?")
            assert reply.payload["success"] is False and reply.payload["data"].startswith("malformed request: ")
            req.close(0)
        assert "unsafe pickle refused: posix.getpid" in reply.payload["data"]
        dealer = ctx.socket(zmq.DEALER)
        dealer.connect(ports.calls)
        dealer.send_multipart([b"", b"part one", b"part two"])
        assert dealer.poll(5000)
        _empty, packet = dealer.recv_multipart()
        assert codec.decode_reply(PROFILE, [packet], "?").payload["data"] == "malformed request: more than one part"
        dealer.close(0)
    finally:
        ctx.destroy(linger=0)
    assert server.popen.poll() is None
    assert cli("command", PROFILE, "version", *ports.args).returncode == 0


def test_replies_to_the_real_clients_requests_byte_for_byte(tmp_path: Path) -> None:
    """The real RouterClient's request bytes, sent as it sends them (REQ), answered with the bytes a
    real server sends; its bare-name subscription gets decodable counter packets."""
    profile = tmp_path / "horn.toml"
    profile.write_text(HORN_PROFILE)
    ports = Ports()
    proc = Proc([*FIELDCTL, "simulate", "horn", "--json", "--profile-file", str(profile), *ports.args])
    proc.wait_json(lambda m: m["channel"] == "link" and m["kind"] == "bound" and m["endpoint"] == "calls")
    capture = load_fixture(PROFILE, REAL_CLIENT)
    ctx = zmq.Context()
    try:
        req = ctx.socket(zmq.REQ)
        req.connect(ports.calls)
        checked = 0
        for exchange in capture["rpc_exchanges"]:
            if any(word in exchange["client_api"] for word in ("echo", "get_stream_configurations")):
                continue  # a made-up 'x' reply, and a capture server with no streams
            req.send(bytes.fromhex(exchange["request_parts_at_ROUTER"][2]["hex"]))
            assert req.poll(5000)
            assert req.recv() == bytes.fromhex(exchange["reply_body_sent"]["hex"]), exchange["client_api"]
            checked += 1
        assert checked == 6
        enable = next(ex for ex in capture["rpc_exchanges"] if ex["client_api"] == "enable_stream('counter')")
        req.send(bytes.fromhex(enable["request_parts_at_ROUTER"][2]["hex"]))  # the capture ended disabled
        assert req.poll(5000) and req.recv() == bytes.fromhex(enable["reply_body_sent"]["hex"])
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.SUBSCRIBE, bytes.fromhex(capture["subscriptions_seen_by_XPUB"][0]["parts"][0]["hex"])[1:])
        sub.connect(ports.streams)
        seen: dict[str, Any] = {}
        for _ in range(50):  # the bare name also matches counter_value: the collision of spec §5.2
            if "counter" in seen:
                break
            assert sub.poll(5000)
            msg = codec.decode_stream(PROFILE, sub.recv_multipart(), {})
            assert msg.error is None and msg.channel in ("counter", "counter_value")
            seen[msg.channel] = msg.payload["data"]
        assert isinstance(seen.get("counter"), int), seen
        req.close(0)
        sub.close(0)
    finally:
        ctx.destroy(linger=0)
        proc.stop()


def test_server_killed_and_restarted_the_listener_reconnects() -> None:
    ports = Ports()
    first = start(ports)
    listener = Proc([*FIELDCTL, "listen", PROFILE, "--json", "--stream", "frame", *ports.args])
    try:
        listener.wait_json(lambda m: m["channel"] == "frame")
        first.stop(signal.SIGKILL)
        listener.wait_json(lambda m: m["channel"] == "link" and m["kind"] == "disconnected")
        second = start(ports)
        try:
            listener.wait_json(lambda m: m["channel"] == "link" and m["kind"] in ("connected", "ready"))
            after = listener.wait_json(lambda m: m["channel"] == "frame", timeout=10)
            assert after["error"] is None
            assert cli("command", PROFILE, "version", *ports.args).returncode == 0
        finally:
            second.stop()
    finally:
        assert listener.stop() == 0


def test_simulator_binds_loopback_and_warns_beyond_it() -> None:
    ports = Ports()
    wide = ["--endpoint", f"calls=tcp://0.0.0.0:{free_port()}", "--endpoint", f"streams={ports.streams}"]
    result = cli("simulate", PROFILE, "--json", "--duration", "0.5", *wide)
    assert result.returncode == 0 and "no authentication" in result.stderr
    assert load_profile(PROFILE).endpoints == {"calls": "tcp://127.0.0.1:5555", "streams": "tcp://127.0.0.1:5556"}


def test_publish_via_a_running_simulator(tmp_path: Path) -> None:
    ports = Ports()
    control = str(tmp_path / "sim.sock")
    proc = start(ports, "--control", control)
    try:
        proc.wait_json(lambda m: m["channel"] == "link" and m["endpoint"] == "control")
        listener = Proc(
            [
                *FIELDCTL,
                "listen",
                PROFILE,
                "--json",
                "--stream",
                "manual",
                "--count",
                "1",
                "--timeout",
                "10",
                *ports.args,
            ]
        )
        listener.wait_json(lambda m: m["channel"] == "link" and m["kind"] == "ready")
        result = cli("publish", PROFILE, "manual", "--data", '{"event": 177}', "--via", control, "--json")
        assert result.returncode == 0, result.stderr
        assert listener.wait(10) == 0
        got = data_lines("\n".join(listener.output()))
        assert got[0]["channel"] == "manual" and got[0]["payload"]["data"] == {"event": 177}
    finally:
        proc.stop()


# --- probe -------------------------------------------------------------------------------------------


def test_probe_codes(server: Proc, ports: Ports) -> None:
    ok = cli("probe", PROFILE, "--stream", "frame", *ports.args)
    assert ok.returncode == 0 and ok.stdout.startswith("ONELINER OK - server 0.1.1.dev4"), ok.stdout
    assert "stream_wait_seconds" in ok.stdout
    slow = cli("probe", PROFILE, "--warn", "0", "--crit", "2", *ports.args)
    assert slow.returncode == 1 and "WARNING" in slow.stdout
    silent = cli("probe", PROFILE, "--stream", "nope", "--crit", "0.5", *ports.args)
    assert silent.returncode == 2 and "no sample on nope" in silent.stdout
    started = time.monotonic()
    down = cli("probe", PROFILE, "--crit", "0.5", "--format", "json", *Ports().args)
    assert down.returncode == 2 and json.loads(down.stdout)["status"] == "CRITICAL"
    assert time.monotonic() - started < 5


def test_scenario_replays_recorded_packets_and_hand_written_samples(tmp_path: Path) -> None:
    import base64

    recorded = codec.encode_packet("replay", True, 7.5, pickle.dumps("recorded", protocol=4))
    scenario = tmp_path / "scenario.ndjson"
    scenario.write_text(
        "\n".join(
            json.dumps(line)
            for line in (
                {"channel": "link", "kind": "connected", "ts": 0},
                {
                    "endpoint": "streams",
                    "channel": "replay",
                    "kind": "sample",
                    "ts": 0,
                    "raw": [base64.b64encode(recorded).decode()],
                },
                {"channel": "replay", "kind": "sample", "ts": 0.1, "payload": {"data": [1, 2]}},
                {"channel": "replay", "kind": "error", "ts": 0.2, "payload": "hand-written failure"},
            )
        )
        + "\n"
    )
    ports = Ports()
    proc = start(ports, "--scenario", str(scenario))
    try:
        result = cli("listen", PROFILE, "--json", "--count", "3", "--timeout", "10", "--stream", "replay", *ports.args)
        assert result.returncode == 0, result.stderr
        first, second, third = data_lines(result.stdout)
        assert base64.b64decode(first["raw"][0]) == recorded and first["payload"]["data"] == "recorded"
        assert second["payload"]["data"] == [1, 2] and isinstance(second["payload"]["timestamp"], float)
        assert third["kind"] == "error" and third["payload"]["data"] == "hand-written failure"
    finally:
        proc.stop()


def test_publishing_where_a_simulator_runs_says_to_publish_through_it(server: Proc, ports: Ports) -> None:
    result = cli("publish", "oneliner", "frame", "--data", "1", *ports.args)
    assert result.returncode == 3 and "address already in use" in one_line(result.stderr)
    assert "simulate oneliner --control SOCKET" in result.stderr and "--via SOCKET" in result.stderr
