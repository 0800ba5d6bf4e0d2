"""The WebSocket transport's reconnect policy and what it keeps of closed connections, against a
real server on loopback."""

from __future__ import annotations

import asyncio
import contextlib

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from fieldctl.protocols.transport import within
from fieldctl.protocols.transport.backoff import Backoff
from fieldctl.protocols.transport.websocket import keep_connected, start_server
from tests.helpers.garbage import cyclic_garbage, holds
from tests.helpers.waiting import until


def test_a_server_that_closes_at_once_gets_no_reconnect_storm() -> None:
    """A server that accepts and closes straight away (a refusing proxy, a crash loop) is retried
    after the backoff, as an unreachable one is, not hundreds of times a second."""
    accepted = 0

    async def close_at_once(conn) -> None:  # type: ignore[no-untyped-def]
        nonlocal accepted
        accepted += 1
        await conn.close()

    async def session(conn) -> bool:  # type: ignore[no-untyped-def]
        await conn.recv()  # raises ConnectionClosed when the server closes
        return True

    async def main() -> list[str]:
        server, url = await start_server("ws://127.0.0.1:0/", close_at_once)
        states: list[str] = []
        try:
            await within(
                keep_connected(
                    url,
                    session,
                    name="server",
                    on_link=lambda n, s, d: states.append(s),
                    backoff=Backoff(base_s=0.2, cap_s=0.4),
                ),
                2.0,
            )
        except TimeoutError:
            pass
        finally:
            server.close()
        return states

    states = asyncio.run(main())
    assert 2 <= accepted <= 12, accepted  # 2 s at 0.1-0.4 s apart; without the backoff, hundreds
    assert states.count("retrying") >= accepted - 1


def test_a_peer_that_sends_megabytes_and_vanishes_leaves_nothing_for_the_collector() -> None:
    """websockets keeps the error that ended a connection abnormally, and with its traceback the
    last frame read, in a reference cycle: a simulator's failed logins, each a password of
    megabytes and a dropped connection, piled up until a full collection."""
    size = 2 << 20
    received: list[ServerConnection] = []

    async def read_one(conn: ServerConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            await conn.recv()
            received.append(conn)
            await conn.recv()  # until the peer vanishes

    async def main() -> None:
        server, url = await start_server("ws://127.0.0.1:0/", read_one, max_size=2 * size)
        try:
            async with connect(url, max_size=None) as ws:
                await ws.send("x" * size)
                await until(lambda: received)
                ws.transport.abort()  # the frame read last is the big one
            await within(received.pop().wait_closed(), 10)
            await asyncio.sleep(0)  # the callbacks of wait_closed() run
        finally:
            server.close()
            await server.wait_closed()

    assert not holds(cyclic_garbage(lambda: asyncio.run(main())), size)
