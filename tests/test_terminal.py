"""Nothing from a wire is obeyed by the terminal or parsed by rich: the live table, its panel and
the command render run in a real pty, fed by hostile peers; what they draw is read back."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import signal
import struct
import termios
import threading
import time
from typing import Callable, Iterator

import pytest
import zmq

from conftest import FIELDCTL, cli_env, free_port
from test_cli_stream import EVENT, HEARTBEAT, Device, device, event  # noqa: F401 (device: a fixture)

#: What rich itself writes (CSI sequences, charset selection); anything else that starts with ESC,
#: and every OSC (ESC ]) or BEL, could only have come from the wire.
_RICH_CONTROLS = re.compile(rb"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[()][0-9A-Za-z]")


class Pty:
    """A subprocess on a pseudo-terminal it has as its controlling terminal (pty.fork), as an
    operator's shell would start it; a thread collects everything it draws."""

    def __init__(self, argv: list[str], rows: int = 45, cols: int = 160, env: dict[str, str] | None = None) -> None:
        environment = {**(env or cli_env()), "TERM": "xterm-256color", "LINES": str(rows), "COLUMNS": str(cols)}
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: exec at once
            os.execvpe(argv[0], argv, environment)
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.data = bytearray()
        self.lock = threading.Lock()
        self.code: int | None = None
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            with self.lock:
                self.data += chunk

    @property
    def raw(self) -> bytes:
        with self.lock:
            return bytes(self.data)

    @property
    def text(self) -> str:
        """What was drawn, rich's own control sequences removed."""
        return _RICH_CONTROLS.sub(b"", self.raw).decode("utf-8", "replace")

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.text
            if predicate(text):
                return text
            if self.poll() is not None:
                raise AssertionError(f"exited {self.code}: {self.text[-2000:]}")
            time.sleep(0.05)
        raise AssertionError(f"not drawn within {timeout} s: {self.text[-3000:]}")

    def poll(self) -> int | None:
        if self.code is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.code = os.waitstatus_to_exitcode(status)
        return self.code

    def wait(self, timeout: float = 20) -> int:
        deadline = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"still running after {timeout} s: {self.text[-2000:]}")
            time.sleep(0.05)
        self.reader.join(5)
        return self.code  # type: ignore[return-value]

    def stop(self, timeout: float = 20) -> int:
        if self.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
        return self.wait(timeout)

    def close(self) -> None:
        if self.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
            self.wait()
        os.close(self.fd)


@pytest.fixture
def terminals() -> Iterator[Callable[[list[str]], Pty]]:
    started: list[Pty] = []

    def start(argv: list[str], **kwargs: object) -> Pty:
        started.append(Pty(argv, **kwargs))  # type: ignore[arg-type]
        return started[-1]

    yield start
    for term in started:
        term.close()


def last_frame(text: str, title: str) -> str:
    """The most recent redraw of a live view: from its panel title on."""
    return text[text.rindex(title):]


def assert_nothing_obeyed(raw: bytes) -> None:
    rest = _RICH_CONTROLS.sub(b"", raw)
    assert b"\x1b" not in rest and b"\x07" not in rest and b"\xc2\x9b" not in rest, rest[-1500:]


OSC_TITLE = "\x1b]0;PWNED\x07"


def test_live_table_shows_hostile_kinds_and_identifiers_escaped(terminals, device: Device) -> None:
    term = terminals([*FIELDCTL, "listen", "autotrainer", *device.args])
    device.wait_subscriber()
    device.send(HEARTBEAT, {"identifier": f"rig{OSC_TITLE}", "version": "[bold]0.12[/bold]", "timestamp": time.time()})
    device.send(EVENT, {"kind": "[/oops]", "when": time.time(), "index": 1, "context": None})  # a kind or malformed
    device.send(EVENT, {"kind": 1, "when": time.time(), "index": 2,
                        "context": {"note": "[/oops] [red]x", "raw": f"c{OSC_TITLE}\x1b[2J\x9b31m\x7f"}})
    device.send(EVENT, event(1, 3))
    title = "fieldctl listen autotrainer"
    text = term.wait_for(lambda t: title in t and "received 4" in last_frame(t, title))
    frame = last_frame(text, title)
    assert "rig\\x1b]0;PWNED\\x07" in frame and "[bold]0.12[/bold]" in frame  # the panel
    assert "[/oops] [red]x" in frame  # a table cell: markup shown as text
    assert "MarkupError" not in text and "Traceback" not in text
    assert term.stop() == 0
    assert_nothing_obeyed(term.raw)


def test_command_render_escapes_the_reply_and_shows_the_round_trip(terminals) -> None:
    rep = zmq.Context.instance().socket(zmq.REP)
    rep.setsockopt(zmq.LINGER, 0)
    port = free_port()
    rep.bind(f"tcp://127.0.0.1:{port}")
    try:
        term = terminals([*FIELDCTL, "command", "autotrainer", "get-status", "--no-wait",
                          "--endpoint", f"commands=tcp://127.0.0.1:{port}", "--endpoint", "events=tcp://127.0.0.1:1"])
        assert rep.poll(20_000)
        request = json.loads(rep.recv())
        rep.send(json.dumps({"command": request["command"], "nonce": request["nonce"], "result": 200,
                             "errorMessage": f"fine{OSC_TITLE}[/oops]",
                             "data": {"state": f"up{OSC_TITLE}\x9b1m\x7f", "[/x]": 1}}).encode())
        assert term.wait(20) == 0, term.text
    finally:
        rep.close(0)
    text = term.text
    assert "Traceback" not in text and "MarkupError" not in text
    assert "fine\\x1b]0;PWNED\\x07[/oops]" in text  # summary line
    assert "up\\u001b]0;PWNED\\u0007\\x9b1m\\x7f" in text  # the data: JSON escapes C0, we the rest
    assert re.search(r"OK .*\(\d+\.\d ms\)", text), text  # the round-trip time
    assert_nothing_obeyed(term.raw)


def test_secrets_and_escapes_from_a_client_never_reach_the_simulators_outputs(terminals, tmp_path) -> None:
    """simulate sepl knows its password (SEPL_PASSWORD): a client that sends it back in any frame
    gets it masked in the live table and the --record file; hostile text is shown escaped."""
    import asyncio

    import websockets

    secret = "S3cret-Value-4711"
    port = free_port()
    record = tmp_path / "sim.ndjson"
    term = terminals([*FIELDCTL, "simulate", "sepl", "--endpoint", f"platform=ws://127.0.0.1:{port}",
                      "--record", str(record)], env=cli_env(SEPL_PASSWORD=secret))
    term.wait_for(lambda t: "bound" in t)

    async def client() -> None:
        async with websockets.connect(f"ws://127.0.0.1:{port}/") as ws:
            await ws.send(json.dumps({"user": "sepl-user", "pw": secret, "gid": "", "token": "credentials"}))
            await asyncio.wait_for(ws.recv(), 10)
            await ws.send(json.dumps({"handler": "put", "token": "t1",
                                      "payload": {"note": f"echo {secret}", "title": f"x{OSC_TITLE}[/oops]"}}))
            await ws.send(f'{{"handler": "event", "token": "{secret} \x1b]0;PWNED\x07 [/oops]"')  # not JSON
            await asyncio.wait_for(ws.recv(), 10)  # its answer: the frame was read

    asyncio.run(client())
    title = "fieldctl simulate sepl"
    term.wait_for(lambda t: title in t and "malformed 1" in last_frame(t, title))
    assert term.stop() == 0
    text = term.text
    assert secret not in text and "MarkupError" not in text and "Traceback" not in text
    assert_nothing_obeyed(term.raw)
    recorded = record.read_text()
    assert secret not in recorded and "S3cret" not in recorded
    assert len(recorded.splitlines()) >= 4
