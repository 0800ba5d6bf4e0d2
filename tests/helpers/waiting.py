"""Waiting in a test's own event loop for state that nothing announces (a list an emit callback
fills, a counter a follower keeps, a socket's readiness), polled and within a deadline."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(holds: Callable[[], object], timeout: float = 10, what: str = "the condition") -> None:
    """Returns once `holds()` is true; fails the test after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not holds():
        if loop.time() > deadline:
            raise AssertionError(f"{what} did not hold within {timeout} s")
        await asyncio.sleep(0.01)
