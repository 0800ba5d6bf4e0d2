"""The control path of a running simulator, so another shell or a script can make the simulated
side act: `simulate PROFILE --control SOCKET` listens, `publish|command PROFILE ... --via SOCKET` asks.

One request per connection, NDJSON both ways. The client writes one line
``{"verb": "publish" | "command", "message": {Message}}``; the simulator writes every Message the
request causes as it happens, then
``{"done": true, "ok": bool, "summary": str, "exit": int, "rtt_s": float | null, "result": any}``
(the result scrubbed of the secrets the simulator knows: the asking process may not know them).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from fieldctl.protocols.core import redact
from fieldctl.protocols.core.errors import ExitCode, FieldctlError, ProtocolFailure, Timeout, UsageError, error_for
from fieldctl.protocols.core.limits import loads
from fieldctl.protocols.core.message import Message, link
from fieldctl.protocols.sdk.contract import CommandOutcome, Emit
from fieldctl.protocols.transport import LISTEN_REFUSED_AFTER_S, unix, within

ControlHandler = Callable[[str, Message, Emit], Awaitable[CommandOutcome]]
CONTROL_VERBS = ("publish", "command")


class ControlServer:
    def __init__(self, path: str, handler: ControlHandler, announce: Emit, profile: str, timeout: float = 60.0) -> None:
        self.handler, self.announce, self.profile, self.timeout = handler, announce, profile, timeout
        self.listener = unix.UnixListener(path, self._serve)

    async def run(self) -> None:
        await self.listener.start()
        self.announce(link(self.profile, "control", "bound", {"url": self.listener.path}))
        try:
            await asyncio.get_running_loop().create_future()  # until cancelled
        finally:
            self.listener.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        def emit(msg: Message) -> None:
            writer.write(msg.to_json().encode() + b"\n")

        try:
            try:
                request = loads(await within(reader.readline(), self.timeout))
                verb, msg = request["verb"], Message.from_dict(request["message"])
                if verb not in CONTROL_VERBS:
                    raise UsageError(f"unknown control verb {verb!r}")
                outcome, code = await within(self.handler(verb, msg, emit), self.timeout), ExitCode.OK
            except (ValueError, KeyError, TypeError) as exc:
                outcome, code = CommandOutcome(False, f"bad control request: {exc}"), ExitCode.USAGE
            except TimeoutError:
                outcome, code = CommandOutcome(False, f"no outcome within {self.timeout:g} s"), ExitCode.TIMEOUT
            except FieldctlError as exc:
                outcome, code = CommandOutcome(False, str(exc)), exc.exit_code
            if code == ExitCode.OK and not outcome.ok:
                code = ExitCode.REMOTE_FAILED
            writer.write(_done_line(outcome, code))
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass  # the asking side went away; the simulator goes on
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


def _done_line(outcome: CommandOutcome, code: ExitCode) -> bytes:
    """The closing line; a result too large for one line is left out (its messages went before)."""
    done = {
        "done": True,
        "ok": outcome.ok,
        "summary": outcome.summary,
        "exit": int(code),
        "rtt_s": outcome.rtt_s,
        "result": redact.scrub_value(outcome.result),
    }
    line = json.dumps(done, default=repr).encode()
    if len(line) >= unix.LINE_LIMIT:
        done.update(result=None, summary=f"{outcome.summary} (result over {unix.LINE_LIMIT} bytes, not shown)")
        line = json.dumps(done).encode()
    return line + b"\n"


def command_message(profile: str, name: str, data: Any) -> Message:
    """What `command --via` asks the simulator to do: send command NAME with `data` from its side."""
    return Message(
        profile=profile, endpoint="control", direction="out", channel="command", kind=name, payload=data, id=None
    )


async def request(path: str, verb: str, msg: Message, emit: Emit, timeout: float) -> CommandOutcome:
    """Asks the simulator at `path` (one still starting gets the time `listen` gives a peer);
    raises the error it reports, with the same exit code."""
    reader, writer = await unix.connect_when_listening(path, min(timeout, LISTEN_REFUSED_AFTER_S))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    messages: list[Message] = []
    try:
        writer.write(json.dumps({"verb": verb, "message": msg.to_dict()}).encode() + b"\n")
        await writer.drain()
        while True:
            try:
                line = await within(reader.readline(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                raise Timeout(f"the simulator at {path} gave no outcome within {timeout:g} s") from None
            except ValueError:  # a line over LINE_LIMIT
                raise ProtocolFailure(f"the simulator at {path} sent a line over {unix.LINE_LIMIT} bytes") from None
            if not line:
                raise ProtocolFailure(f"the simulator at {path} closed the control connection early")
            try:
                data = loads(line)
                if data.get("done"):
                    if data.get("exit") not in (ExitCode.OK, ExitCode.REMOTE_FAILED):
                        raise error_for(int(data.get("exit", ExitCode.PROTOCOL)), str(data.get("summary", "")))
                    rtt = data.get("rtt_s")
                    return CommandOutcome(
                        bool(data.get("ok")),
                        str(data.get("summary", "")),
                        messages,
                        rtt_s=float(rtt) if isinstance(rtt, (int, float)) else None,
                        result=data.get("result"),
                    )
            except (ValueError, AttributeError, TypeError) as exc:
                raise ProtocolFailure(f"the simulator at {path} sent a bad control line: {exc}") from None
            received = Message.from_dict(data)
            messages.append(received)
            emit(received)
    finally:
        writer.close()
