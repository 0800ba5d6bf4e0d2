"""Request/reply over ZeroMQ, for any protocol. The server side drives the protocol's Machine: every
request (its frames) goes to `receive`, the first frame it sends back is the reply. Whatever a
client sends, the server keeps serving: garbage, oversize messages and replies to vanished peers
are dropped with a throttled warning (transport.zeromq.Replier). The client side sends a request
with a deadline and decodes its reply; a REQ socket that timed out or was cancelled is replaced
(the lazy pirate: a REQ socket cannot send again before it has received)."""

from __future__ import annotations

import asyncio
from typing import NamedTuple

from fieldctl.protocols.core.limits import MAX_FRAME_BYTES
from fieldctl.protocols.core.message import Message, link
from fieldctl.protocols.sdk.contract import Emit, Notify, link_emitter
from fieldctl.protocols.sdk.machine import Effects, Frame, Machine
from fieldctl.protocols.transport import zeromq

from .publish_subscribe import Decode


class Server:
    """A request socket bound at `url` (REP's contract over ROUTER, which survives any client),
    answering with a Machine. `receive` gets each request's frames as a tuple; the first of the
    `send` frames it returns is the reply. A machine that answers later returns no `send` and a
    `wake_at`: it is ticked then (and again at each `wake_at` it asks for) until it sends, and no
    other request is taken meanwhile, as a REP serves one call at a time. Any other `wake_at`
    ticks it between requests; what such a tick sends has no request to answer and is not sent."""

    def __init__(
        self,
        profile: str,
        name: str,
        url: str,
        emit: Emit,
        notify: Notify,
        max_frame_bytes: int = MAX_FRAME_BYTES,
    ) -> None:
        self.emit, self.notify = emit, notify
        self.socket = zeromq.replier(name, url, link_emitter(profile, emit), notify, max_frame_bytes)
        emit(link(profile, name, "bound", {"url": self.socket.url}))
        self._timer: asyncio.TimerHandle | None = None

    async def serve(self, machine: Machine) -> None:
        """Forever (until cancelled); the machine's effects are acted on in Effects' order."""
        loop = asyncio.get_running_loop()
        self._wake(machine, self._act(machine.start(loop.time())).wake_at)
        try:
            while True:
                frames = await self.socket.recv()
                effects = self._act(machine.receive(tuple(frames), loop.time()))
                while not effects.send and effects.wake_at is not None:  # an answer that takes time
                    self._cancel_timer()
                    await asyncio.sleep(max(0.0, effects.wake_at - loop.time()))
                    effects = self._act(machine.tick(loop.time()))
                if effects.send:
                    await self.socket.send(parts(effects.send[0]))
                self._wake(machine, effects.wake_at)
                await asyncio.sleep(0)  # a flood of requests must not starve timers and signals
        finally:
            self._cancel_timer()

    def _act(self, effects: Effects) -> Effects:
        for msg in effects.emit:
            self.emit(msg)
        for text in effects.warn:
            self.notify(text)
        return effects

    def _wake(self, machine: Machine, wake_at: float | None) -> None:
        """The machine's next tick at `wake_at`, unless an earlier one is due."""
        if wake_at is None or (self._timer is not None and self._timer.when() <= wake_at):
            return
        self._cancel_timer()
        loop = asyncio.get_running_loop()

        def tick() -> None:
            self._timer = None
            self._wake(machine, self._act(machine.tick(loop.time())).wake_at)

        self._timer = loop.call_at(wake_at, tick)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def close(self) -> None:
        self._cancel_timer()
        self.socket.close()


def parts(frame: Frame) -> tuple[bytes, ...]:
    """A frame as a ZeroMQ message's parts (what `receive` gets from this server is already one)."""
    if isinstance(frame, tuple):
        return frame
    return (frame.encode() if isinstance(frame, str) else frame,)


class Exchange(NamedTuple):
    """One request and its reply, both as reported."""

    sent: Message
    reply: Message
    rtt_s: float  # from the request leaving to its reply arriving


class Client:
    """Requests to a server at `url`, one at a time, each with a deadline; each reply decoded with
    the protocol's pure `decode`. The REQ socket is opened on first use and replaced after a
    request that timed out, was refused or was cancelled."""

    def __init__(self, name: str, url: str, decode: Decode, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        self.decode = decode
        self.requester = zeromq.Requester(name, url, max_frame_bytes=max_frame_bytes)

    async def exchange(self, request: Message, timeout: float, emit: Emit, decode: Decode | None = None) -> Exchange:
        """Reports `request`, sends its frames (`raw`), reports the reply decoded (by `decode`
        when the reply's meaning depends on the request, by the client's otherwise). Raises
        Timeout when no reply comes within `timeout`, ConnectFailure when the server refuses."""
        emit(request)
        loop = asyncio.get_running_loop()
        started = loop.time()
        frames = await self.requester.request(request.raw, timeout)
        rtt_s = loop.time() - started
        reply = (decode or self.decode)(frames)
        emit(reply)
        return Exchange(request, reply, rtt_s)

    def close(self) -> None:
        """Closes the socket; the next request opens a new one."""
        self.requester.close()


def ignore(msg: Message) -> None:
    """An `emit` for exchanges nobody reports (a probe's)."""
