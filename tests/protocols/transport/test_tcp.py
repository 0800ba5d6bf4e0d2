"""The TCP transport over a real loopback connection: both ends send each frame at once (TCP_NODELAY;
a line protocol's request and reply would otherwise each wait on Nagle's delayed ACK, about 40 ms
a round trip), and a line past the limit is refused."""

from __future__ import annotations

import asyncio
import socket

import pytest

from fieldctl.protocols.core.limits import Malformed
from fieldctl.protocols.transport import tcp


def _nodelay(writer: asyncio.StreamWriter) -> bool:
    sock = writer.get_extra_info("socket")
    return bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))


async def _round_trip() -> tuple[bool, bool]:
    served: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        served.set_result(_nodelay(writer))
        while (frame := await tcp.read_line(reader)) is not None:
            await tcp.write_line(writer, frame)
        await tcp.close(writer)

    server, url = await tcp.serve("tcp://127.0.0.1:*", echo)
    async with server:
        reader, writer = await tcp.connect(url, 5.0)
        await tcp.write_line(writer, b'{"a": 1}')
        assert await tcp.read_line(reader) == b'{"a": 1}'
        client = _nodelay(writer)
        await tcp.close(writer)
        return client, await served


def test_both_ends_send_without_delay_and_frames_round_trip() -> None:
    assert asyncio.run(_round_trip()) == (True, True)


async def _overlong() -> None:
    async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await tcp.write_line(writer, b"x" * 100)
        await tcp.close(writer)

    server, url = await tcp.serve("tcp://127.0.0.1:*", flood)
    async with server:
        reader, writer = await tcp.connect(url, 5.0, max_frame_bytes=10)
        try:
            await tcp.read_line(reader)
        finally:
            await tcp.close(writer)


def test_a_line_past_the_limit_is_malformed() -> None:
    with pytest.raises(Malformed):
        asyncio.run(_overlong())
