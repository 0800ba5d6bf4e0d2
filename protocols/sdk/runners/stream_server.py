"""The message-stream server: accepts WebSocket connections, gives each its own Machine (the
connection's state; what all connections share stays in the simulator), drives it as the client
runner does, and drops only the peer whose frames broke something. `Arrivals` is the one way a
simulator waits for a connected peer within a grace (a script starts the simulator, its client
and a command at once)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ssl
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from websockets.asyncio.server import Server

from fieldctl.protocols.core import redact
from fieldctl.protocols.sdk.contract import Emit, Notify
from fieldctl.protocols.sdk.machine import Effects, Machine
from fieldctl.protocols.transport import within
from fieldctl.protocols.transport.websocket import DEFAULT_MAX_SIZE, drop, start_server

from .stream_client import Driven, Link, drive

M = TypeVar("M", bound=Machine)


class Arrivals:
    """Wakes whoever waits for the peers to change (a login, a logout, a configuration):
    `changed()` from anywhere (synchronous, as Machines' effects are carried out), `until(predicate,
    grace)` to wait for the condition a peer brings."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def changed(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def until(self, predicate: Callable[[], bool], grace: float | None) -> bool:
        """True once `predicate()` holds; False when it still does not after `grace` seconds
        (None: waits as long as it takes)."""
        loop = asyncio.get_running_loop()
        deadline = None if grace is None else loop.time() + grace
        while not predicate():
            event = self._event
            if deadline is None:
                await event.wait()
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await within(event.wait(), remaining)
        return True


async def serve_streams(
    url: str,
    accept: Callable[[Link], Awaitable[M | None]],
    emit: Emit,
    notify: Notify,
    *,
    ended: Callable[[Link, M, Driven | None], None] = lambda link, machine, driven: None,
    after: Callable[[M, Link], Awaitable[Effects | None]] | None = None,
    failed: Callable[[Link, M, Exception], Awaitable[None]] | None = None,
    tls: ssl.SSLContext | None = None,
    max_size: int = DEFAULT_MAX_SIZE,
    ping_interval: float | None = None,
    binary: Callable[[], bool] = lambda: False,
) -> tuple[Server, str]:
    """Listens where `url` says; returns the server and its real URL. Each connection is searched
    for the secrets its peer offers while it lasts (redact.connection); whatever one peer causes
    costs its own connection only (`failed`; by default one line to `notify` and the TCP
    connection dropped). `accept` makes a connection's Machine, given the runner's Link to it
    (its `conn` tells the request path and the peer); None turns the peer away (accept has
    closed the Link). `after` is drive()'s, with the Machine; `ended` hears each end (Driven
    None: a failure ended it)."""

    async def dropped(link: Link, machine: M, exc: Exception) -> None:
        notify(redact.scrub_text(f"connection from {peer_of(link.conn)} dropped: {type(exc).__name__}: {exc}"))
        drop(link.conn)

    async def serve_one(conn: Any) -> None:
        with redact.connection():
            link = Link(conn, binary())
            machine = await accept(link)
            if machine is None:
                return
            driven: Driven | None = None
            each = None if after is None else functools.partial(after, machine)
            try:
                driven = await drive(conn, machine, emit, notify, after=each, link=link)
            except Exception as exc:  # noqa: BLE001  whatever one peer does, the others are still served
                await (failed or dropped)(link, machine, exc)
            finally:
                ended(link, machine, driven)

    return await start_server(url, serve_one, tls=tls, max_size=max_size, ping_interval=ping_interval)


def peer_of(conn: Any) -> str:
    """host:port of a connection's peer."""
    address = conn.remote_address or ("?", 0)
    return f"{address[0]}:{address[1]}"
