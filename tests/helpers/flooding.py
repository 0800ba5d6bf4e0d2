"""A WebSocket peer that floods, on loopback in a thread of the test's process: it answers a
client's handshake as the test says, then sends one frame after another, as fast as the socket
takes them, until the client goes away; what the client sends meanwhile is read and never
answered. What a test measures against it is the client's deadline (a role must end on time
whatever keeps arriving) and its memory."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

from tests.helpers.ports import free_port
from tests.helpers.processes import Proc

Greet = Callable[[Any], Awaitable[None]]


class FloodingPeer:
    """`greet(ws)` first, then `frame` over and over on every connection; stops with its `with`."""

    def __init__(self, greet: Greet, frame: str, path: str = "") -> None:
        self.greet, self.frame = greet, frame
        self.port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}{path}"
        self.listening = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self.thread.start()
        assert self.listening.wait(10), "the flooding peer did not start"

    async def _flood(self, ws: Any) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self.greet(ws)
            reading = asyncio.ensure_future(self._drop_all(ws))
            try:
                while True:
                    await ws.send(self.frame)
            finally:
                reading.cancel()

    @staticmethod
    async def _drop_all(ws: Any) -> None:
        """What the client sends is read, and never answered."""
        with contextlib.suppress(ConnectionClosed):
            async for _ in ws:
                pass

    async def _run(self) -> None:
        async with serve(self._flood, "127.0.0.1", self.port, max_size=None, close_timeout=1):
            self.listening.set()
            await asyncio.to_thread(self.stop.wait)

    def __enter__(self) -> FloodingPeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)


def overrun_s(proc: Proc, limit_s: float) -> float:
    """How long after `limit_s` from its first output line `proc` ended (negative: before); the
    stream's clock starts just before that line. Fails if it runs on past limit_s + 30 s."""
    proc.wait_line(lambda line: True, timeout=30)
    started = time.monotonic()
    proc.wait(limit_s + 30)
    return time.monotonic() - started - limit_s
