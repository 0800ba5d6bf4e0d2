"""The linejson roles over fieldctl's TCP transport: the hub (simulate) and its clients
(listen, command, publish, probe). Everything here uses only fieldctl's public contract."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from typing import Any, ClassVar

from fieldctl.sdk import ENDPOINT as ENDPOINT_SETTING
from fieldctl.sdk import (
    OUT,
    SECONDS,
    TEXT,
    Backoff,
    BaseDriver,
    ClientSession,
    CommandOutcome,
    CommandRequest,
    ConnectFailure,
    Context,
    Emit,
    Malformed,
    Message,
    Notify,
    ProbeReport,
    Profile,
    Setting,
    Simulation,
    Timeout,
    UsageError,
    link,
    paced,
    replayable,
    tcp,
    ticks,
    together,
    verdict,
    within,
)

from . import codec

ENDPOINT = "hub"
#: A client that reads slower than the hub writes is dropped past this much unsent data.
MAX_BACKLOG = 4 * 1024 * 1024


class Driver(BaseDriver):
    roles: ClassVar[frozenset[str]] = frozenset({"listen", "command", "publish", "simulate", "probe"})
    #: The profile keys this protocol reads; `profiles validate` checks them like the core's.
    settings: ClassVar[dict[str, Setting]] = {
        **BaseDriver.settings,
        "endpoints.hub": ENDPOINT_SETTING,
        "simulate.event_interval_s": SECONDS,
        "simulate.identifier": TEXT,
    }
    ready_state: ClassVar[str] = "connected"  # no handshake: connected is ready
    #: One TCP connection a client role; the hub's listening socket (its clients' besides).
    open_files: ClassVar[dict[str, int]] = {"listen": 1, "command": 1, "publish": 1, "probe": 1, "simulate": 1}

    def __init__(self, profile: Profile, notify: Notify) -> None:
        super().__init__(profile, notify)
        self.url = profile.endpoints[ENDPOINT]
        self.limit = profile.limits.max_frame_bytes

    def _decode(self, frame: bytes, direction: str = "in") -> Message:
        return codec.decode(frame, self.profile.name, ENDPOINT, direction)

    async def _connect(self, emit: Emit, timeout: float) -> tcp.Streams:
        streams = await tcp.connect(self.url, timeout, self.limit)
        emit(link(self.profile.name, ENDPOINT, "connected", {"url": self.url}))
        return streams

    async def _frames(self, reader: Any) -> AsyncIterator[Message]:
        while (frame := await tcp.read_line(reader)) is not None:
            yield self._decode(frame)

    def publication(self, kind: str, data: Any) -> Message:
        return Message(self.profile.name, ENDPOINT, OUT, "event", kind, data)

    async def listen(self, context: Context, channels: set[str] | None = None) -> None:
        """Nothing listening at first is exit 3; a hub that goes away later is reconnected.
        options["kinds"] (--kind): only events of those kinds."""
        emit, kinds = context.emit, set(context.options.get("kinds") or ())
        reader, writer = await self._connect(emit, 5.0)
        delays = Backoff(cap_s=5.0).delays()
        while True:
            try:
                async for msg in self._frames(reader):
                    wanted = channels is None or msg.channel in channels
                    if msg.error or (wanted and (not kinds or msg.channel != "event" or msg.kind in kinds)):
                        emit(msg)
            except Malformed as exc:
                self.notify(f"{self.url}: {exc}; reconnecting")
            await tcp.close(writer)
            emit(link(self.profile.name, ENDPOINT, "disconnected", {"url": self.url}))
            while True:
                await asyncio.sleep(next(delays))
                try:
                    reader, writer = await self._connect(emit, 5.0)
                    break
                except ConnectFailure:
                    emit(link(self.profile.name, ENDPOINT, "retrying", {"url": self.url}))
            delays = Backoff(cap_s=5.0).delays()

    def session(self, context: Context) -> ClientSession:
        return ClientSession(self, context, self.request)

    async def request(self, command: CommandRequest) -> CommandOutcome:
        """One request on a connection of its own, and its reply."""
        name, data, timeout, emit = command.name, command.data, command.timeout, command.emit
        spec = self.profile.commands.get(name)
        if spec is None:
            raise UsageError(f"unknown command {name!r} (commands: {', '.join(self.profile.commands)})")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        reader, writer = await self._connect(lambda msg: None, timeout)
        ident = secrets.randbelow(2**31)
        try:
            frame = codec.encode("command", spec.code, ident, data)
            sent = loop.time()
            await tcp.write_line(writer, frame)
            request = self._decode(frame, OUT)
            emit(request)
            try:
                reply = await within(self._reply(reader, ident), max(0.0, deadline - loop.time()))
            except TimeoutError:
                raise Timeout(f"no reply to {name} within {timeout:g} s") from None
        finally:
            await tcp.close(writer)
        rtt = loop.time() - sent
        emit(reply)
        body = reply.payload if isinstance(reply.payload, dict) else {}
        ok = body.get("ok") is True
        summary = f"{name}: {'ok' if ok else body.get('error', 'failed')}"
        return CommandOutcome(ok, summary, [request, reply], rtt_s=rtt, result=body.get("data"))

    async def _reply(self, reader: Any, ident: int) -> Message:
        async for msg in self._frames(reader):
            if msg.channel == "reply" and msg.id == ident:
                return msg
        raise ConnectFailure(f"{self.url} closed the connection before replying")

    async def publish(self, context: Context, messages: list[Message], *, wait_s: float, realtime: bool) -> None:
        emit = context.emit
        kept = replayable(
            messages, lambda msg: msg.channel in ("event", "heartbeat"), self.notify, "not events or heartbeats"
        )
        _, writer = await self._connect(emit, wait_s)
        try:
            async for msg in paced(kept, realtime):
                frame = codec.encode(msg.channel, msg.kind, msg.id, msg.payload)
                await tcp.write_line(writer, frame)
                emit(self._decode(frame, OUT))
        finally:
            await tcp.close(writer)

    def simulator(self, context: Context, *, scenario: list[Message] | None, timeline: bool) -> Hub:
        return Hub(self, context.emit, scenario, timeline)

    async def probe(self, context: Context, *, warn: float, crit: float) -> ProbeReport:
        """Connects and waits for a heartbeat, all within crit."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        reader, writer = await self._connect(lambda msg: None, crit)
        metrics = {"connect_seconds": round(loop.time() - start, 4)}
        problems, parts = [], []
        try:
            beat = await within(self._first_heartbeat(reader), max(0.0, crit - (loop.time() - start)))
            metrics["heartbeat_wait_seconds"] = round(loop.time() - start, 4)
            parts.append(f"heartbeat from {(beat.payload or {}).get('identifier')}")
        except TimeoutError:
            problems.append(f"no heartbeat within {crit:g} s")
        finally:
            await tcp.close(writer)
        return verdict(metrics, problems, parts, warn, crit)

    async def _first_heartbeat(self, reader: Any) -> Message:
        async for msg in self._frames(reader):
            if msg.channel == "heartbeat" and not msg.error:
                return msg
        raise ConnectFailure(f"{self.url} closed the connection")


class Hub(Simulation):
    """The other side: heartbeats and events to every client, answers to commands, and events
    from one client relayed to the others. A bad client is warned about and dropped alone."""

    def __init__(self, driver: Driver, emit: Emit, scenario: list[Message] | None, timeline: bool) -> None:
        super().__init__(driver.profile)
        self.driver, self.emit, self.scenario, self.timeline = driver, emit, scenario, timeline
        self.clients: set[asyncio.StreamWriter] = set()

    async def run(self) -> None:
        scenario, timeline = self.scenario, self.timeline
        server, url = await tcp.serve(self.driver.url, self._serve, self.driver.limit)
        self.emit(link(self.profile.name, ENDPOINT, "bound", {"url": url}))
        work = [self._heartbeats()]
        if scenario is not None:
            work.append(self._replay(scenario))
        elif timeline:
            work.append(self._timeline())
        try:
            await together(*work)
        finally:
            server.close()
            for writer in list(self.clients):
                writer.close()

    def _send(self, frame: bytes, to: set[asyncio.StreamWriter]) -> None:
        for writer in list(to):
            if writer.transport.get_write_buffer_size() > MAX_BACKLOG:
                self.driver.notify("dropped a client that does not keep up")
                self.clients.discard(writer)
                writer.close()
            else:
                writer.write(frame + b"\n")
        self.emit(self.driver._decode(frame, OUT))

    async def _heartbeats(self) -> None:
        identifier = self.profile.setting("simulate.identifier", "linejson-hub")
        seq = 0
        async for _ in ticks(self.profile.heartbeat.interval_s):
            seq += 1
            self._send(
                codec.encode("heartbeat", "heartbeat", None, {"identifier": identifier, "seq": seq}), self.clients
            )

    async def _timeline(self) -> None:
        self._send(codec.encode("event", "started", None, {}), self.clients)
        count = 0
        async for _ in ticks(float(self.profile.setting("simulate.event_interval_s", 1.0))):
            count += 1
            self._send(codec.encode("event", "tick", None, {"count": count}), self.clients)

    async def _replay(self, scenario: list[Message]) -> None:
        kept = replayable(
            scenario, lambda msg: msg.channel in ("event", "heartbeat"), self.driver.notify, "not events or heartbeats"
        )
        async for msg in paced(kept):
            self._send(codec.encode(msg.channel, msg.kind, msg.id, msg.payload), self.clients)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.clients.add(writer)
        try:
            while True:
                try:
                    frame = await tcp.read_line(reader)
                except Malformed as exc:
                    self.driver.notify(f"dropped a client: {exc}")
                    return
                if frame is None:
                    return
                msg = self.driver._decode(frame)
                self.emit(msg)
                if msg.error:
                    self.driver.notify(f"a client sent a malformed line: {msg.error}")
                elif msg.channel == "command":
                    self._send(codec.encode("reply", msg.kind, msg.id, self._answer(msg)), {writer})
                elif msg.channel == "event":
                    self._send(frame, self.clients - {writer})
        finally:
            self.clients.discard(writer)
            writer.close()

    @staticmethod
    def _answer(msg: Message) -> dict[str, Any]:
        if msg.kind == "ping":
            return {"ok": True, "data": "pong"}
        if msg.kind == "echo":
            return {"ok": True, "data": msg.payload}
        return {"ok": False, "error": f"unknown command {msg.kind!r}"}
