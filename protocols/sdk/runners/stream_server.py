"""The message-stream server: accepts WebSocket connections, gives each its own Machine (the
connection's state; what all connections share stays in the simulator), drives it as the client
runner does, and drops only the peer whose frames broke something. `Arrivals` is the one way a
simulator waits for a connected peer within a grace (a script starts the simulator, its client
and a command at once)."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable
from typing import Any

from websockets.asyncio.server import Server

from fieldctl.protocols.core import redact
from fieldctl.protocols.sdk.contract import Emit, Notify
from fieldctl.protocols.sdk.machine import Machine
from fieldctl.protocols.transport import within
from fieldctl.protocols.transport.websocket import DEFAULT_MAX_SIZE, drop, start_server

from .stream_client import Driven, drive


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


#: A new connection's Machine; None turns the peer away (the factory has closed or dropped it).
Accept = Callable[[Any], Machine | None]
#: A connection's end: the connection, its Machine, how it ended (None: an error dropped it).
Ended = Callable[[Any, Machine, Driven | None], None]


async def serve_streams(
    url: str,
    accept: Accept,
    emit: Emit,
    notify: Notify,
    *,
    ended: Ended = lambda conn, machine, driven: None,
    tls: ssl.SSLContext | None = None,
    max_size: int = DEFAULT_MAX_SIZE,
    ping_interval: float | None = None,
    binary: Callable[[], bool] = lambda: False,
) -> tuple[Server, str]:
    """Listens where `url` says; returns the server and its real URL. Each connection is searched
    for the secrets its peer offers while it lasts (redact.connection); whatever one peer causes
    costs its own connection only (one line to `notify`, the TCP connection dropped)."""

    async def serve_one(conn: Any) -> None:
        with redact.connection():
            machine = accept(conn)
            if machine is None:
                return
            driven: Driven | None = None
            try:
                driven = await drive(conn, machine, emit, notify, binary=binary())
            except Exception as exc:  # noqa: BLE001  whatever one peer does, the others are still served
                notify(redact.scrub_text(f"connection from {peer_of(conn)} dropped: {type(exc).__name__}: {exc}"))
                drop(conn)
            finally:
                ended(conn, machine, driven)

    return await start_server(url, serve_one, tls=tls, max_size=max_size, ping_interval=ping_interval)


def peer_of(conn: Any) -> str:
    """host:port of a connection's peer."""
    address = conn.remote_address or ("?", 0)
    return f"{address[0]}:{address[1]}"
