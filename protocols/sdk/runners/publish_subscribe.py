"""Publish/subscribe over ZeroMQ, for any protocol: a publisher that sends outgoing Messages (their
frames are `raw`) and reports each one, on a schedule, from a scenario or from `publish`; and a
subscriber that decodes each message with the protocol's pure decoder and reports it. The protocol
supplies codecs; the sockets, their limits and their link states are here."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Sequence

from fieldctl.protocols.core.limits import MAX_FRAME_BYTES
from fieldctl.protocols.core.message import Message, link
from fieldctl.protocols.sdk import replay, schedule
from fieldctl.protocols.sdk.contract import Emit, link_emitter
from fieldctl.protocols.transport import LinkCallback, zeromq

#: A protocol's pure decoder: one ZeroMQ message's frames in, the Message that reports it out
#: (with its `error` set, never an exception, for what does not decode).
Decode = Callable[[list[bytes]], Message]
#: A protocol's pure encoder: a Message to publish (from a scenario, `publish` or a control
#: socket) in, the outgoing Messages that carry its frames as `raw` out.
Encode = Callable[[Message], Iterable[Message]]


class Publisher:
    """An XPUB bound at `url` (wire-compatible with PUB, and it hears subscriptions, so nothing is
    published into the void before a subscriber is there when that matters). Every Message sent
    is reported through `emit` as it goes, stamped with the time it went."""

    def __init__(self, profile: str, name: str, url: str, emit: Emit, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        self.emit = emit
        self.socket = zeromq.Publisher(name, url, link_emitter(profile, emit), max_frame_bytes)
        emit(link(profile, name, "bound", {"url": self.socket.url}))

    @property
    def closed(self) -> bool:
        return bool(self.socket.sock.closed)

    def send(self, messages: Iterable[Message]) -> list[Message]:
        """Each message's frames at once (a slow subscriber's share is dropped by ZeroMQ, never
        waited for); returns what was sent."""
        sent = list(messages)
        for msg in sent:
            self.socket.send_nowait(msg.raw)
            msg.ts = time.time()  # built earlier (a delayed result): reported as sent now
            self.emit(msg)
        return sent

    async def wait_subscriber(self, timeout: float) -> None:
        """Returns once a subscriber is there; Timeout after `timeout` seconds."""
        await self.socket.wait_subscriber(timeout)

    async def every(
        self,
        interval_s: float,
        publications: Callable[[], Iterable[Message]],
        rng: random.Random | None = None,
        jitter: float = 0.0,
    ) -> None:
        """Forever: what `publications` makes, once per interval (schedule.ticks: a seeded phase,
        no drift). A simulator's heartbeats, timeline and periodic streams."""
        async for _ in schedule.ticks(interval_s, rng, jitter):
            self.send(publications())

    async def replay(self, messages: list[Message], encode: Encode, realtime: bool = True) -> None:
        """A simulator's scenario, each message at its recorded pace. A scenario is a contract
        test: it starts once someone listens, so nothing is lost."""
        await self.socket.subscribed.wait()
        await self._paced(messages, encode, realtime)

    async def publish_all(self, messages: list[Message], encode: Encode, wait_s: float, realtime: bool) -> None:
        """The `publish` role: once a subscriber is there (Timeout after `wait_s`), each message
        at its pace; then a lingering close, so what was sent still reaches the subscribers."""
        try:
            await self.wait_subscriber(wait_s)
            await self._paced(messages, encode, realtime)
        finally:
            self.close(zeromq.DELIVERY_LINGER_MS)

    async def _paced(self, messages: list[Message], encode: Encode, realtime: bool) -> None:
        async for msg in replay.paced(messages, realtime):
            self.send(encode(msg))

    def close(self, linger_ms: int = 2000) -> None:
        """Lingers by default: what was published should still reach the subscribers."""
        self.socket.close(linger_ms)


class Subscriber:
    """A SUB connected to `url` for `prefixes` (every message when there are none), each message
    decoded with `decode`. A first connection still refused `refuse_after_s` from now raises
    ConnectFailure from whatever waits on it; later drops are reconnected by ZeroMQ."""

    def __init__(
        self,
        name: str,
        url: str,
        prefixes: Sequence[bytes],
        decode: Decode,
        *,
        on_link: LinkCallback | None = None,
        max_frame_bytes: int = MAX_FRAME_BYTES,
        refuse_after_s: float = 0.0,
    ) -> None:
        self.decode = decode
        self.socket = zeromq.subscriber(name, url, prefixes, on_link, max_frame_bytes, refuse_after_s)

    async def wait_ready(self, timeout: float) -> bool:
        """True once the handshake is done, False after `timeout`."""
        return await self.socket.wait_ready(timeout)

    async def first(self, accept: Callable[[Message], bool]) -> Message:
        """The first decoded message `accept` takes (a probe's heartbeat, a stream's sample)."""
        while True:
            msg = self.decode(await self.socket.recv())
            if accept(msg):
                return msg

    async def run(
        self,
        emit: Emit,
        is_duplicate: Callable[[Message], bool] | None = None,
        duplicate: Emit | None = None,
    ) -> None:
        """Forever: each message decoded and reported through `emit`, or, when the protocol's
        duplicate filter `is_duplicate` says it is a second copy, through `duplicate` (counted,
        not shown). recv() yields to timers, signals and the output flush even under a flood."""
        recv, decode = self.socket.recv, self.decode
        if is_duplicate is None or duplicate is None:
            while True:
                emit(decode(await recv()))
        while True:
            msg = decode(await recv())
            if is_duplicate(msg):
                duplicate(msg)
            else:
                emit(msg)

    def close(self) -> None:
        self.socket.close()


async def listen(
    subscriber: Subscriber,
    emit: Emit,
    is_duplicate: Callable[[Message], bool] | None = None,
    duplicate: Emit | None = None,
) -> None:
    """The `listen` role on a subscriber it then owns: runs until cancelled, then closes it."""
    try:
        await subscriber.run(emit, is_duplicate, duplicate)
    finally:
        subscriber.close()
