"""Hostile peers on real loopback sockets, against real subprocesses: a client sending memo bombs and
deep, self-referencing or huge-int pickles to `simulate oneliner`, and a publisher sending them to
`listen oneliner --json`. Each side answers or shows the bad input, warns once per bad request,
keeps serving, ends promptly on SIGTERM, --count and --timeout, and stays within a memory bound
(VmHWM, the peak resident set, from /proc)."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

import zmq

from fieldctl.profiles import load_profile
from fieldctl.protocols.oneliner import client, codec
from fieldctl.protocols.sdk.contract import CommandRequest
from tests.helpers.oneliner import PROFILE, Ports, data_lines, one_line, start
from tests.helpers.pickles import BOMBS, memo_bomb_by_get, pickled, request_with
from tests.helpers.processes import FIELDCTL, Proc, peak_rss_kib, run_cli

#: Peak resident memory a role may reach under these attacks (a bomb unbounded takes gigabytes).
MAX_RSS_BYTES = 300 * 1024 * 1024


def warnings_of(stderr: str) -> list[str]:
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.splitlines() if line.startswith("warning: malformed request")]


def ask(ctx: zmq.Context, url: str, body: bytes, wait_s: float = 10) -> dict[str, Any]:
    """One request from a fresh REQ socket; the decoded reply's payload."""
    req = ctx.socket(zmq.REQ)
    req.setsockopt(zmq.LINGER, 0)
    req.connect(url)
    try:
        req.send(body)
        assert req.poll(int(wait_s * 1000)), "no reply"
        reply = codec.decode_reply(PROFILE, req.recv_multipart(), "?")
        assert reply.error is None, reply.error
        return reply.payload
    finally:
        req.close()


def test_simulator_answers_every_bomb_warns_once_each_and_keeps_serving() -> None:
    ports = Ports()
    proc = start(ports)
    ctx = zmq.Context()
    try:
        for name, bomb in BOMBS.items():
            started = time.monotonic()
            payload = ask(ctx, ports.calls, request_with(bomb))
            assert payload["success"] is False and payload["data"].startswith("malformed request: "), name
            assert time.monotonic() - started < 5, name
        version = run_cli("command", PROFILE, "version", *ports.args, timeout=30)
        assert version.returncode == 0 and "0.1.1.dev4" in version.stdout, version.stderr
        assert_bounded_and_stops_promptly(proc)
    finally:
        ctx.destroy(linger=0)
    warnings = warnings_of(proc.popen.stderr.read())
    assert len(warnings) == len(BOMBS) and all(len(line) < 300 for line in warnings), warnings


def assert_bounded_and_stops_promptly(proc: Proc) -> None:
    """Under attack the simulator's memory stayed bounded, and SIGTERM still ends it at once."""
    assert peak_rss_kib(proc.popen.pid) * 1024 < MAX_RSS_BYTES
    started = time.monotonic()
    assert proc.stop(signal.SIGTERM, timeout=10) == 0
    assert time.monotonic() - started < 5


def test_sigterm_ends_the_simulator_while_bombs_keep_arriving() -> None:
    ports = Ports()
    proc = start(ports)
    ctx = zmq.Context()
    dealer = ctx.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(ports.calls)
    try:
        bomb = request_with(memo_bomb_by_get())
        for _ in range(400):  # seconds of work queued; nobody reads the answers
            dealer.send_multipart([b"", bomb])
        assert dealer.poll(10_000)  # it is working through them
        assert_bounded_and_stops_promptly(proc)
    finally:
        ctx.destroy(linger=0)
    assert "Traceback" not in proc.popen.stderr.read()


def test_keyword_arguments_and_errors_as_on_a_real_server(tmp_path: Path) -> None:
    profile = tmp_path / "adder.toml"
    profile.write_text(
        'extends = "oneliner"\nname = "adder"\n[simulate.objects.horn.methods]\nadd = { action = "sum" }\n'
    )
    ports = Ports()
    proc = Proc([*FIELDCTL, "simulate", "adder", "--json", "--profile-file", str(profile), *ports.args])
    try:
        proc.wait_json(lambda m: m["channel"] == "link" and m["kind"] == "bound" and m["endpoint"] == "calls")
        added = run_cli(
            "command",
            "adder",
            "call",
            "horn.add",
            "--kwargs",
            '{"a": 2, "b": 3}',
            "--json",
            "--profile-file",
            str(profile),
            *ports.args,
        )
        assert added.returncode == 0, added.stderr
        assert data_lines(added.stdout)[-1]["payload"]["data"] == 5
        wrong = run_cli(
            "command",
            "adder",
            "call",
            "counter.get",
            "--kwargs",
            '{"a": 1}',
            "--profile-file",
            str(profile),
            *ports.args,
        )
        assert wrong.returncode == 1
        assert one_line(wrong.stderr) == (
            "fieldctl: counter.get: failed: counter.get() got an unexpected keyword argument 'a'"
        )
    finally:
        proc.stop()


def test_values_clients_build_that_a_stream_cannot_carry(tmp_path: Path) -> None:
    """A raw stream of an int attribute cannot publish (one warning, the simulator lives on); an
    attribute grown past the int limit by calls is still published, shown as not displayable."""
    profile = tmp_path / "grow.toml"
    profile.write_text(
        'extends = "oneliner"\nname = "grow"\n'
        '[simulate.streams.raw_value]\nfrequency_hz = 20\nserializer = "raw"\ncall = "counter.get"\n'
        "[simulate.streams.counter_value]\nfrequency_hz = 20\n"
    )
    ports = Ports()
    args = ["--profile-file", str(profile), *ports.args]
    proc = Proc([*FIELDCTL, "simulate", "grow", "--json", *args])
    try:
        proc.wait_json(lambda m: m["channel"] == "link" and m["kind"] == "bound" and m["endpoint"] == "calls")
        big = str(2**13999)
        assert run_cli("command", "grow", "call", "counter.add", "--args", f"[{big}]", *args).returncode == 0
        over = run_cli("command", "grow", "call", "counter.add", "--args", f"[{big}]", *args)
        assert over.returncode == 5 and "decimal digits" in one_line(over.stderr)  # 2**14000: over our limit
        shown = proc.wait_json(lambda m: m["channel"] == "counter_value" and m["error"] is not None)
        assert "decimal digits" in shown["error"]
        assert run_cli("command", "grow", "version", *args).returncode == 0
        assert proc.stop() == 0
    finally:
        proc.stop()
    stderr = proc.popen.stderr.read()
    assert "Traceback" not in stderr
    assert [line for line in stderr.splitlines() if "raw_value" in line] == [
        "warning: cannot publish on raw_value (raw): a raw stream publishes bytes, not int;"
        " samples skipped until it can"
    ]


def test_a_request_over_the_limits_is_not_sent() -> None:
    nobody = Ports()  # nothing listens: a request sent would time out (exit 4)
    deep = run_cli(
        "command", PROFILE, "call", "counter.echo", "--args", "[" * 100 + "]" * 100, "--timeout", "5", *nobody.args
    )
    assert deep.returncode == 2 and one_line(deep.stderr).endswith("nested deeper than 64 levels")


def test_command_reports_its_round_trip() -> None:
    ports = Ports()
    proc = start(ports)
    try:
        profile = load_profile(PROFILE, endpoints=[f"calls={ports.calls}"])
        request = CommandRequest("version", None, 10, True, lambda m: None, {})
        outcome = asyncio.run(client.command(profile, lambda t: None, request))
        assert outcome.ok and outcome.rtt_s is not None and 0 < outcome.rtt_s < 10
    finally:
        proc.stop()


# --- a hostile publisher against listen ------------------------------------------------------------------


class HostilePublisher:
    """An XPUB of our own on the streams port, which waits for listen's subscription."""

    def __init__(self, ports: Ports) -> None:
        self.ctx = zmq.Context()
        self.pub = self.ctx.socket(zmq.XPUB)
        self.pub.setsockopt(zmq.SNDHWM, 0)
        self.pub.bind(ports.streams)

    def wait_subscriber(self) -> None:
        while True:
            assert self.pub.poll(15_000), "no subscriber"
            if self.pub.recv()[:1] == b"\x01":
                return

    def packet(self, bomb: bytes, stamp: float) -> bytes:
        return codec.encode_packet("frame", True, stamp, pickled(bomb))

    def close(self) -> None:
        self.pub.close(0)
        self.ctx.destroy(linger=0)


def test_listen_shows_each_bomb_as_malformed_and_the_stream_goes_on() -> None:
    ports = Ports()
    publisher = HostilePublisher(ports)
    listener = Proc([*FIELDCTL, "listen", PROFILE, "--json", "--stream", "frame", *ports.args])
    try:
        publisher.wait_subscriber()
        for stamp, bomb in enumerate(BOMBS.values()):
            publisher.pub.send(publisher.packet(bomb, float(stamp)))
        publisher.pub.send(codec.encode_packet("frame", True, 99.0, codec.dumps(42)))
        shown = [
            listener.wait_json(lambda m, s=stamp: m["channel"] == "frame" and m["payload"]["timestamp"] == s)
            for stamp in range(len(BOMBS))
        ]
        good = listener.wait_json(lambda m: m["channel"] == "frame" and m["payload"]["timestamp"] == 99.0)
        assert all(m["error"] and m["payload"]["data"] is None for m in shown), shown
        assert good["error"] is None and good["payload"]["data"] == 42
        assert peak_rss_kib(listener.popen.pid) * 1024 < MAX_RSS_BYTES
        started = time.monotonic()
        assert listener.stop(signal.SIGTERM, timeout=10) == 0
        assert time.monotonic() - started < 5
        assert "Traceback" not in listener.popen.stderr.read()
    finally:
        publisher.close()


def _flood(publisher: HostilePublisher, packets: list[bytes], stop: threading.Event) -> None:
    """Bad packets faster than they can be decoded, without spinning a core."""
    while not stop.is_set():
        for packet in packets:
            try:
                publisher.pub.send(packet, zmq.NOBLOCK)
            except zmq.Again:
                break
        time.sleep(0.002)


def test_listen_under_a_bomb_flood_ends_on_timeout_and_on_count() -> None:
    ports = Ports()
    publisher = HostilePublisher(ports)
    stop = threading.Event()
    bombs = [publisher.packet(bomb, 1.0) for bomb in BOMBS.values()]
    flood = threading.Thread(target=_flood, args=(publisher, bombs, stop), daemon=True)
    try:
        listener = Proc([*FIELDCTL, "listen", PROFILE, "--json", "--stream", "frame", "--timeout", "3", *ports.args])
        publisher.wait_subscriber()
        started = time.monotonic()
        flood.start()
        assert listener.wait(30) == 4
        assert time.monotonic() - started < 15
        lines = [json.loads(line) for line in listener.output() if line.strip()]
        malformed = [m for m in lines if m["channel"] == "frame"]
        assert malformed and all(m["error"] for m in malformed)
        assert one_line(listener.popen.stderr.read()).startswith("fieldctl: ")
        counted = Proc(
            [
                *FIELDCTL,
                "listen",
                PROFILE,
                "--json",
                "--stream",
                "frame",
                "--count",
                "2",
                "--timeout",
                "20",
                *ports.args,
            ]
        )
        good = codec.encode_packet("frame", True, 5.0, codec.dumps("fine"))
        deadline = time.monotonic() + 20
        while counted.popen.poll() is None and time.monotonic() < deadline:
            publisher.pub.send(good)  # among the bombs, until listen has its two messages
            time.sleep(0.05)
        assert counted.wait(10) == 0
        assert all(json.loads(line) for line in counted.output() if line.strip())
    finally:
        stop.set()
        if flood.is_alive():
            flood.join(10)
        publisher.close()
