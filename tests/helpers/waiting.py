"""Waiting for state that nothing announces (a list an emit callback fills, a counter a follower
keeps, a socket's readiness, a file another process writes), polled and within a deadline: in a
test's own event loop (`until`), or from plain test code (`holds_within`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def until(holds: Callable[[], object], timeout: float = 10, what: str = "the condition") -> None:
    """Returns once `holds()` is true; fails the test after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not holds():
        if loop.time() > deadline:
            raise AssertionError(f"{what} did not hold within {timeout} s")
        await asyncio.sleep(0.01)


def holds_within(holds: Callable[[], object], timeout: float, what: str, every: float = 0.05) -> None:
    """`until` for a test outside an event loop. `holds` may assert on the way (a process that
    must still run): its AssertionError ends the wait at once."""
    deadline = time.monotonic() + timeout
    while not holds():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not hold within {timeout} s")
        time.sleep(every)
