"""The WebSocket transport's reconnect policy, against a real server on loopback."""

from __future__ import annotations

import asyncio

from fieldctl.protocols.transport import within
from fieldctl.protocols.transport.backoff import Backoff
from fieldctl.protocols.transport.websocket import keep_connected, start_server


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
