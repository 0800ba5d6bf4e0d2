"""The message-stream client: one WebSocket connection at a time, a Machine per connection (its
`start` sends the login), every frame and every due `wake_at` fed to it, what it says sent; and,
for a role that stays (`register`), reconnects with backoff when the connection drops. The link
states `connected`, `retrying` and `disconnected` come from here; `ready` or `logged-in` (as the
protocol names it) from the Machine, which knows when the login was accepted."""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from websockets.exceptions import ConnectionClosed

from fieldctl.protocols.core import redact
from fieldctl.protocols.sdk.contract import Emit, Notify
from fieldctl.protocols.sdk.machine import Effects, Frame, Machine
from fieldctl.protocols.transport import LinkCallback, within
from fieldctl.protocols.transport.backoff import Backoff
from fieldctl.protocols.transport.websocket import DEFAULT_MAX_SIZE, keep_connected, let_go, open_connection

M = TypeVar("M", bound=Machine)

#: The close code a Machine's `close` goes out with.
NORMAL = 1000


class Driven:
    """How one driven connection ended: `reason`, the Machine's `close`; or, when the peer or the
    network ended it (reason None), the close `code` received and the `sent_code` we answered
    with (1009: a frame over max_size; None: no close frame)."""

    __slots__ = ("code", "reason", "sent_code")

    def __init__(self, reason: str | None, code: int | None = None, sent_code: int | None = None) -> None:
        self.reason, self.code, self.sent_code = reason, code, sent_code

    @property
    def why(self) -> str:
        """The end in a few words, for a link state and for requests it left unanswered."""
        return self.reason if self.reason is not None else f"connection closed ({self.code or 1006})"


def as_wire(frame: Frame, binary: bool) -> str | bytes:
    """A Machine's frame as websockets sends it: text as text (as bytes when the peer is told to
    get binary frames), bytes as a binary frame, parts joined into one."""
    if isinstance(frame, tuple):
        return b"".join(frame)
    if isinstance(frame, str) and binary:
        return frame.encode("utf-8")
    return frame


class Link:
    """The runner's side of one connection, for the work a Machine cannot do itself (answers a
    program computes, while the connection goes on): `send` a frame in turn with the Machine's."""

    __slots__ = ("binary", "conn")

    def __init__(self, conn: Any, binary: bool) -> None:
        self.conn, self.binary = conn, binary

    async def send(self, frame: Frame) -> None:
        """ConnectionClosed (websockets) when the connection has gone."""
        await self.conn.send(as_wire(frame, self.binary))

    async def close(self, code: int = NORMAL, reason: str = "") -> None:
        """A close handshake with `code` (an operator's, a refusal's); the driving loop sees the end."""
        await self.conn.close(code, reason)

    async def ping(self, data: str, pong_s: float | None = None) -> bool:
        """A WebSocket ping with `data` (a protocol whose keep-alive says what it carries); with
        `pong_s`, whether its pong came within that time (nothing is read meanwhile)."""
        pong = await self.conn.ping(data)
        if pong_s is None:
            return True
        try:
            await within(pong, pong_s)
        except TimeoutError:
            return False
        return True

    async def wait_closed(self) -> None:
        await self.conn.wait_closed()

    @property
    def close_code(self) -> int | None:
        return self.conn.close_code  # type: ignore[no-any-return]

    @property
    def close_reason(self) -> str | None:
        return self.conn.close_reason  # type: ignore[no-any-return]


#: Called after each input's effects are out: the role's own work on the Machine's new state (an
#: answer to start, a health port to open, a file to look at). Nothing is read while it runs:
#: awaiting in it holds the peer back, as reading no more than a role can answer must. It may
#: return more Effects (what the Machine said to an input of the role's own), carried out in turn.
After = Callable[[Link], Awaitable[Effects | None]]


async def drive(
    conn: Any,
    machine: Machine,
    emit: Emit,
    notify: Notify,
    *,
    binary: bool = False,
    after: After | None = None,
    link: Link | None = None,
) -> Driven:
    """Runs `machine` on the open connection `conn` until it closes it (its `close`) or the
    connection ends. A `wake_at` stays due until it passes or a later Effects names another; the
    clock is the loop's. What the Machine raises is the caller's, the connection still open."""
    loop = asyncio.get_running_loop()
    link = link or Link(conn, binary)
    effects = machine.start(loop.time())
    wake_at: float | None = None
    try:
        while True:
            for msg in effects.emit:
                emit(msg)
            for text in effects.warn:
                notify(text)
            for frame in effects.send:
                await link.send(frame)
            if effects.close is not None:
                await conn.close(NORMAL, effects.close)
                return Driven(effects.close)
            if effects.wake_at is not None:
                wake_at = effects.wake_at
            more = None if after is None else await after(link)
            if more is not None:
                effects = more
                continue
            try:
                frame = await within(conn.recv(), None if wake_at is None else wake_at - loop.time())
            except TimeoutError:
                wake_at = None
                effects = machine.tick(loop.time())
                continue
            effects = machine.receive(frame, loop.time())
            del frame  # not held while waiting for the next: it may be max_size bytes
    except ConnectionClosed as exc:
        # websockets raises the one close_exc it keeps: with this frame in its traceback, a
        # connection and what this loop held would wait for a full garbage collection.
        exc.__traceback__ = None
        return Driven(None, exc.rcvd.code if exc.rcvd else None, exc.sent.code if exc.sent else None)


class StreamClient:
    """What every connection of one client run shares: where it goes and how (`url`, `tls`,
    `max_size`), where its Messages and warnings go, and which frames the server gets."""

    def __init__(
        self,
        url: str,
        emit: Emit,
        notify: Notify,
        *,
        tls: ssl.SSLContext | None = None,
        max_size: int = DEFAULT_MAX_SIZE,
        ping_interval: float | None = 20.0,
        binary: bool = False,
    ) -> None:
        self.url, self.emit, self.notify = url, emit, notify
        self.tls, self.max_size, self.ping_interval, self.binary = tls, max_size, ping_interval, binary

    async def once(
        self, machine: Machine, timeout: float, on_link: LinkCallback | None = None, name: str = ""
    ) -> Driven:
        """One connection, no retries (`publish`, `probe`): connects within `timeout` (reporting
        `connected` as `name` when `on_link` is given) and drives `machine` until the connection ends."""
        conn = await open_connection(
            self.url, tls=self.tls, max_size=self.max_size, timeout=timeout, ping_interval=self.ping_interval
        )
        try:
            if on_link is not None:
                on_link(name, "connected", {"url": self.url})
            return await drive(conn, machine, self.emit, self.notify, binary=self.binary)
        finally:
            await conn.close()
            let_go(conn)

    async def keep(
        self,
        new_machine: Callable[[], M],
        *,
        name: str,
        on_link: LinkCallback,
        backoff: Backoff,
        retry_first: bool = True,
        done: Callable[[M, Driven], Awaitable[bool]] | None = None,
        after: Callable[[M, Link], Awaitable[Effects | None]] | None = None,
    ) -> None:
        """A Machine per connection, reconnecting after the backoff's delay whenever a connection
        ends (`disconnected` when the peer ended it, then `retrying`), until `done` says a
        connection's end was the run's; `done` may raise to end the run instead (a ConnectFailure
        for refused credentials: exit 3), as may the Machine. `after` is drive()'s, with the
        Machine. Each connection is searched for the secrets its peer hands out while it lasts. A
        server unreachable at the start is given up on after LISTEN_REFUSED_AFTER_S unless
        `retry_first` (keep_connected)."""

        async def session(conn: Any) -> bool:
            machine = new_machine()
            each = None if after is None else functools.partial(after, machine)
            with redact.connection():
                driven = await drive(conn, machine, self.emit, self.notify, binary=self.binary, after=each)
                if done is not None and await done(machine, driven):
                    return True
            if driven.reason is None:
                on_link(name, "disconnected", {"url": self.url, "code": driven.code, "sent_code": driven.sent_code})
            return False

        await keep_connected(
            self.url,
            session,
            name=name,
            on_link=on_link,
            backoff=backoff,
            tls=self.tls,
            max_size=self.max_size,
            ping_interval=self.ping_interval,
            retry_first=retry_first,
        )
