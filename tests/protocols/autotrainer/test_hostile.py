"""fieldctl against hostile autotrainer peers on loopback: a device that floods huge frames, other
clients' results or broken heartbeats, or answers with nonsense; and clients that throw raw bytes
at `simulate autotrainer`. Each asserts the exit code, the one-line error, the deadline and, where
it applies, bounded memory and that a well-behaved peer is still served."""

from __future__ import annotations

import asyncio
import json
import random
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import zmq

from fieldctl.profiles import load_profile
from fieldctl.protocols.autotrainer.driver import Driver
from tests.helpers.autotrainer import Endpoints, start_simulator
from tests.helpers.processes import FIELDCTL, Proc, cli_env, peak_rss_kib, run_cli

EVENT, HEARTBEAT, COMMAND_RESULT = (code.to_bytes(4, "little") for code in (4001, 1001, 6001))
Reply = Callable[[dict], bytes | None]


class HostileDevice:
    """A device on loopback, each socket served by its own thread: the commands socket answers each
    request with `reply(request)` (None: silence), the events socket publishes `frames` again and
    again, as fast as the subscriber takes them (XPUB_NODROP), once someone subscribes."""

    def __init__(
        self, endpoints: Endpoints, reply: Reply | None = None, frames: list[bytes] | None = None, pace_s: float = 0.0
    ) -> None:
        self.ctx = zmq.Context()
        self.stopping = threading.Event()
        self.pub = self.ctx.socket(zmq.XPUB)
        for option, value in ((zmq.XPUB_NODROP, 1), (zmq.SNDHWM, 4), (zmq.SNDTIMEO, 100), (zmq.LINGER, 0)):
            self.pub.setsockopt(option, value)
        self.pub.bind(endpoints.events)
        self.router = self.ctx.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.LINGER, 0)
        self.router.bind(endpoints.commands)
        self.threads = [threading.Thread(target=self._answer, args=(reply,), daemon=True)]
        if frames is not None:
            self.threads.append(threading.Thread(target=self._flood, args=(frames, pace_s), daemon=True))
        for thread in self.threads:
            thread.start()

    def _answer(self, reply: Reply | None) -> None:
        while not self.stopping.is_set():
            if not self.router.poll(50):
                continue
            peer, *envelope, body = self.router.recv_multipart()
            answer = reply(json.loads(body)) if reply is not None else None
            if answer is not None:
                self.router.send_multipart([peer, *envelope, answer])

    def _flood(self, frames: list[bytes], pace_s: float) -> None:
        while not self.stopping.is_set() and not self.pub.poll(50):
            pass  # the first subscription
        while not self.stopping.is_set():
            try:
                self.pub.send_multipart(frames, copy=False)  # the same buffer each time: no copies here
            except zmq.Again:
                continue
            if pace_s:
                time.sleep(pace_s)

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(5)
        self.pub.close()
        self.router.close()
        self.ctx.term()


@pytest.fixture
def hostile(endpoints: Endpoints) -> Iterator[Callable[..., HostileDevice]]:
    devices: list[HostileDevice] = []

    def start(**kwargs: object) -> HostileDevice:
        devices.append(HostileDevice(endpoints, **kwargs))  # type: ignore[arg-type]
        return devices[-1]

    yield start
    for device in devices:
        device.stop()


def pending_then_silent(request: dict) -> bytes:
    """201: the result will come on COMMAND_RESULT; it never does."""
    return json.dumps(
        {
            "nonce": request["nonce"],
            "command": request["command"],
            "result": 201,
            "data": None,
            "errorKind": 0,
            "errorCode": 0,
            "errorMessage": None,
        }
    ).encode()


def one_line_error(stderr: str) -> str:
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1, stderr
    return stderr.strip()


def peak_rss_mib(proc: subprocess.Popen[bytes], deadline_s: float) -> tuple[float, float]:
    """(VmHWM in MiB, seconds) of a running child, watched until it exits or the deadline passes."""
    started = time.monotonic()
    peak = 0.0
    while proc.poll() is None and time.monotonic() - started < deadline_s:
        try:
            peak = max(peak, peak_rss_kib(proc.pid) / 1024)
        except (OSError, AssertionError):  # it has just exited
            break
        time.sleep(0.05)
    return peak, time.monotonic() - started


# --- memory: frames bounded where they arrive -------------------------------------------------------


@pytest.mark.parametrize("size_mib", [1, 64])
def test_a_flood_of_huge_events_keeps_listen_bounded_and_on_time(
    size_mib: int, hostile: Callable[..., HostileDevice], endpoints: Endpoints
) -> None:
    """1 MiB events fill the receive queue (bounded in bytes); 64 MiB ones are over max_frame_bytes
    and never even allocated (ZeroMQ MAXMSGSIZE). Either way --timeout holds."""
    context = b'"' + b"x" * (size_mib * 1024 * 1024) + b'"'
    hostile(
        frames=[EVENT, b'{"kind": 1101, "when": 1.0, "index": 1, "context": ' + context + b"}"],
        pace_s=0.001 if size_mib > 16 else 0.0,
    )
    listen = subprocess.Popen(
        [*FIELDCTL, "listen", "autotrainer", "--json", "--count", "1000000", "--timeout", "4", *endpoints.args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=cli_env(),
    )
    peak, elapsed = peak_rss_mib(listen, 30)
    assert listen.wait(10) == 4
    assert listen.stderr is not None and "messages within 4 s" in one_line_error(listen.stderr.read().decode())
    assert elapsed < 4 + 8, f"listen --timeout 4 took {elapsed:.1f} s"
    assert 0 < peak < 400, f"listen peaked at {peak:.0f} MiB"


# --- deadlines under any traffic ---------------------------------------------------------------------


def test_command_waiting_for_its_result_times_out_among_other_clients_results(
    hostile: Callable[..., HostileDevice], endpoints: Endpoints
) -> None:
    others = json.dumps(
        {"result": 100, "data": None, "errorCode": 0, "errorMessage": None, "command": 120, "nonce": 0}
    ).encode()
    hostile(reply=pending_then_silent, frames=[COMMAND_RESULT, others])
    started = time.monotonic()
    result = run_cli(
        "command", "autotrainer", "set-application-mode", "--data", '{"mode": 100}', "--timeout", "2", *endpoints.args
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 4 and "no COMMAND_RESULT for nonce" in one_line_error(result.stderr)
    assert elapsed < 2 + 6, f"command --timeout 2 took {elapsed:.1f} s"


def test_probe_is_critical_on_time_among_malformed_heartbeats(
    hostile: Callable[..., HostileDevice], endpoints: Endpoints
) -> None:
    hostile(frames=[HEARTBEAT, b'{"identifier": "x", "version": '])
    started = time.monotonic()
    result = run_cli("probe", "autotrainer", "--crit", "2", "--warn", "1", *endpoints.args)
    elapsed = time.monotonic() - started
    assert result.returncode == 2 and result.stdout.startswith("AUTOTRAINER CRITICAL - no heartbeat within 2 s")
    assert elapsed < 2 + 6, f"probe --crit 2 took {elapsed:.1f} s"


# --- nonsense answers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("field, value", [("result", [100]), ("errorMessage", {"a": 1}), ("command", "get-status")])
def test_a_reply_with_a_list_or_object_for_a_scalar_is_a_protocol_error(
    field: str, value: object, hostile: Callable[..., HostileDevice], endpoints: Endpoints
) -> None:
    def answer(request: dict) -> bytes:
        reply = json.loads(pending_then_silent(request))
        return json.dumps({**reply, "result": 100, field: value}).encode()

    hostile(reply=answer)
    result = run_cli("command", "autotrainer", "get-status", "--no-wait", "--timeout", "5", *endpoints.args)
    assert result.returncode == 5 and f"malformed reply from {endpoints.commands}: {field} is" in one_line_error(
        result.stderr
    )


# --- the simulator survives any client ------------------------------------------------------------


def raw_clients(port: int) -> int:
    """What a port scanner, a broken client or an attacker sends; returns how many connections."""
    greeting = b"\xff" + b"\x00" * 7 + b"\x01\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\x00") + b"\x00" * 32
    ready = b"\x05READY\x0bSocket-Type" + (6).to_bytes(4, "big") + b"DEALER"
    zmtp3 = greeting + b"\x04" + bytes([len(ready)]) + ready  # a ZMTP 3.0 peer past its handshake
    payloads = [
        b"\x01\x00\x06\x00hello",  # the 9 bytes of the issue: an old ZMTP identity then a message, no envelope
        b"\x01\x00\x02\x00x\x02\x00y",
        zmtp3 + b"\x02" + (2**62).to_bytes(8, "big"),  # a frame claiming 4 EiB
        zmtp3 + b"\x03" + (2**40).to_bytes(8, "big") + b"partial",  # a fragment of a huge message
        zmtp3 + b"\x02" + (5000).to_bytes(8, "big") + b"x" * 5000,  # over limits.max_frame_bytes
        greeting[:20],  # a greeting cut short
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"\xff" * 64,
    ]
    rng = random.Random(8)
    payloads += [bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 2048))) for _ in range(150)]
    payloads += [zmtp3 + bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 256))) for _ in range(50)]
    for payload in payloads:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(payload)
    return len(payloads)


def zmq_clients(url: str) -> None:
    """Well-formed ZeroMQ, ill-formed requests: multi-frame, no envelope, oversized, gone before the reply."""
    ctx = zmq.Context()
    try:
        req = ctx.socket(zmq.REQ)
        req.connect(url)
        req.send_multipart([b'{"command": 300, "nonce": 1}', b"extra"])
        assert req.poll(5000) and json.loads(req.recv())["nonce"] == 0  # answered as unparseable
        req.send(b"x" * 5000)  # over the simulator's limits.max_frame_bytes: the connection is dropped
        dealer = ctx.socket(zmq.DEALER)
        dealer.connect(url)
        dealer.send_multipart([b'{"command": 300, "nonce": 2}'])  # no empty delimiter frame
        gone = ctx.socket(zmq.REQ)
        gone.connect(url)
        gone.send(b'{"command": 400, "nonce": 3}')
        gone.close(linger=1000)  # leaves before its reply
        for sock in (req, dealer):
            sock.close(linger=0)
    finally:
        ctx.term()


def test_the_simulator_survives_any_client_and_serves_the_next(endpoints: Endpoints) -> None:
    device = start_simulator(endpoints, "--no-timeline", "--set", "limits.max_frame_bytes=4096")
    try:
        assert raw_clients(endpoints.cmd) > 200
        zmq_clients(endpoints.commands)
        result = run_cli("command", "autotrainer", "get-configuration", "--json", "--timeout", "10", *endpoints.args)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout.splitlines()[-1])["payload"]["result"] == 100
        assert device.popen.poll() is None
    finally:
        assert device.stop() == 0
    stderr = device.popen.stderr.read() if device.popen.stderr else ""
    lines = stderr.strip().splitlines()
    assert "Traceback" not in stderr and all(line.startswith("warning: ") for line in lines), stderr
    assert len(lines) <= 3, stderr  # warnings about peers are throttled


# --- round-trip time --------------------------------------------------------------------------------


def test_command_reports_its_round_trip_time(simulator: Proc, endpoints: Endpoints) -> None:
    profile = load_profile("autotrainer", endpoints=[f"events={endpoints.events}", f"commands={endpoints.commands}"])
    driver = Driver(profile, lambda text: None)

    async def run() -> tuple[float | None, float]:
        started = time.monotonic()
        async with driver.session(driver.context(lambda msg: None)) as session:
            outcome = await session.command("get-configuration", None, timeout=10, wait=False)
        assert outcome.ok
        return outcome.rtt_s, time.monotonic() - started

    rtt, elapsed = asyncio.run(run())
    assert rtt is not None and 0 < rtt <= elapsed
