"""The daemon's side over Unix sockets: `simulate` (master socket, registry, keep-alive, Tracim
events from a scenario, the built-in timeline or the control path) and `publish` (one raw
DaemonEvent to a socket, as the daemon or as a client would send it)."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from fieldctl.protocols.core.errors import FieldctlError, Timeout
from fieldctl.protocols.core.message import OUT, Message, link
from fieldctl.protocols.sdk import replay, schedule
from fieldctl.protocols.sdk.contract import CommandOutcome, Emit, Notify, Simulation
from fieldctl.protocols.sdk.runners import documents
from fieldctl.protocols.transport import LISTEN_REFUSED_AFTER_S, together, within

from . import codec, timeline
from .client import Wiring
from .paths import socket_path
from .simulator_state import DaemonState, Outgoing


def _replays(msg: Message) -> bool:
    if msg.channel == codec.TRACIM_CHANNEL:
        return isinstance(msg.payload, dict)
    return msg.direction == OUT and not msg.raw  # written by hand, or `publish KIND --data`


def replayable(messages: list[Message], notify: Notify) -> list[Message]:
    """Recordings also hold pings, pongs, registrations, link states and malformed documents: of
    what was captured only the Tracim events replay; hand-written lines send any type."""
    return replay.replayable(messages, _replays, notify, "captured traffic other than Tracim events")


class Simulator(Simulation):
    """A TracimDaemon without Tracim. Unlike the real one it never crashes on a malformed request:
    it reports it (the Message's error, and a warning for inputs fatal to the real daemon)."""

    def __init__(self, ctx: Wiring, scenario: list[Message] | None, use_timeline: bool) -> None:
        super().__init__(ctx.profile)
        self.ctx, self.scenario, self.use_timeline = ctx, scenario, use_timeline
        profile = ctx.profile
        body = profile.setting("simulate.api_root_body")
        self.state = DaemonState(
            ctx.master,
            str(profile.setting("simulate.user_id", "42")),
            None if body is None else str(body).encode("utf-8"),
            ctx.limits.max_depth,
        )
        self.single_read = int(profile.setting("simulate.single_read_bytes", codec.DAEMON_READ_LIMIT))
        self.outbox = documents.Outbox[Outgoing, Message](
            ctx.timeout("send_s", 1.0), self._delivered, self._unreachable
        )
        self.has_clients = asyncio.Event()

    async def run(self) -> None:
        os.makedirs(os.path.dirname(self.ctx.master) or ".", mode=0o700, exist_ok=True)
        reading = self.ctx.reading(self.single_read or None)
        async with documents.DocumentListener(self.ctx.master, reading, self._received, self.ctx.refused):
            self.ctx.emit(link(self.ctx.name, "master", "bound", {"url": self.ctx.master}))
            tasks = [self.outbox.run(), self._keepalive()]
            if self.scenario is not None:
                tasks.append(self._replay(replayable(self.scenario, self.ctx.notify)))
            elif self.use_timeline:
                tasks.append(self._timeline())
            await together(*tasks)

    # --- receiving ---

    async def _received(self, raw: bytes, who: str) -> None:
        """One document per connection. A bad one is shown (a Message with its error) and gets a
        warning line naming the sender; like the real daemon, no answer goes back (§4)."""
        handling = self.state.handle(raw)
        msg = self.ctx.decode(raw)
        if handling.problem and not msg.error:
            msg.error = handling.problem
        if handling.envelope is None and self.single_read and len(raw) >= self.single_read:
            msg.error = f"{msg.error} (cut at the daemon's {self.single_read}-byte single read)"
        self.ctx.emit(msg)
        if msg.error:
            what = f"{msg.kind} (path {handling.envelope.path!r})" if handling.envelope is not None else "a document"
            self.ctx.notify(f"{what} from {who}: {msg.error}; the simulator goes on")
        if self.state.registry:
            self.has_clients.set()
        self.outbox.put(handling.outbox)

    # --- sending: one at a time, in order, as the daemon's synchronous dials (§2) ---

    def _delivered(self, outgoing: Outgoing) -> Message:
        sent = self.ctx.sent(outgoing.envelope, outgoing.raw, outgoing.destination)
        self.ctx.emit(sent)
        return sent

    def _unreachable(self, outgoing: Outgoing, exc: FieldctlError) -> None:
        """A failed dial is reported and the document lost for that client: no retry, no removal."""
        self.ctx.emit(link(self.ctx.name, "client", "unreachable", {"url": outgoing.destination, "reason": str(exc)}))

    async def _keepalive(self) -> None:
        interval = float(self.ctx.profile.setting("keepalive.interval_s", 30))
        async for _ in schedule.ticks(interval):
            dropped, pings = self.state.keepalive_tick()
            for entry in dropped:
                self.ctx.emit(
                    link(
                        self.ctx.name, "client", "dropped", {"url": entry.path, "reason": "no pong since the last ping"}
                    )
                )
            self.outbox.put(pings)

    # --- Tracim events ---

    async def _timeline(self) -> None:
        await self.has_clients.wait()  # events start with the first registered client
        interval = float(self.ctx.profile.setting("simulate.event_interval_s", 2.0))
        events = enumerate(timeline.events(), 1)
        async for _ in schedule.ticks(interval):
            event_id, (event_type, fields) = next(events)
            tlm = codec.build_tlm(event_type, fields, event_id, time.time())
            self.outbox.put(self.state.tracim_event(codec.tlm_text(tlm)))

    async def _replay(self, messages: list[Message]) -> None:
        # A scenario is a contract test: it starts with the first registered client.
        await self.has_clients.wait()
        async for msg in replay.paced(messages, realtime=True):
            self.outbox.put(self._broadcast(msg))

    def _broadcast(self, msg: Message) -> list[Outgoing]:
        if msg.channel == codec.TRACIM_CHANNEL or msg.kind == codec.TRACIM_EVENT:
            return self.state.tracim_event(codec.event_text(msg))
        return self.state.broadcast(str(msg.kind), msg.payload)

    async def control(self, verb: str, msg: Message, emit: Emit) -> CommandOutcome:
        """`publish tracim KIND --via SOCKET`: a Tracim event (or any other type), sent to every
        client, once there is one (as `publish` waits for a subscriber: a script starts the daemon,
        a client and this at once)."""
        if verb != "publish":
            return await super().control(verb, msg, emit)
        if not self.state.registry:
            self.has_clients.clear()  # all gone since the first: wait for the next registration
            try:
                await within(self.has_clients.wait(), LISTEN_REFUSED_AFTER_S)
            except TimeoutError:
                raise Timeout(f"no client registered with the daemon within {LISTEN_REFUSED_AFTER_S:g} s") from None
        outbox = self._broadcast(msg)
        results = await together(*self.outbox.put_waited(outbox))
        delivered = [sent for sent in results if sent is not None]
        for sent in delivered:
            emit(sent)
        return CommandOutcome(True, f"sent {msg.kind} to {len(delivered)} of {len(outbox)} client(s)", delivered)


async def publish(ctx: Wiring, messages: list[Message], options: dict[str, Any], realtime: bool) -> None:
    """Raw DaemonEvents to --to (default the master socket). The envelope path is --path, else
    the master path when playing the daemon toward a client, else fieldctl's client socket."""
    destination = socket_path(options["to"], "--to") if options.get("to") else ctx.master
    sender = options.get("path") or (ctx.path if destination == ctx.master else ctx.master)
    if destination == ctx.master and any(msg.channel == codec.TRACIM_CHANNEL for msg in messages):
        ctx.notify(
            f"Tracim events go to the daemon's master socket {destination}, which acknowledges them and"
            " relays nothing: to reach its clients, use --via SOCKET of `simulate tracim --control SOCKET`,"
            " or --to a client's socket"
        )
    async for msg in replay.paced(replayable(messages, ctx.notify), realtime):
        await ctx.send(destination, codec.document_for(msg, sender))
