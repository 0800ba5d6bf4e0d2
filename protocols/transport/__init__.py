"""Transports do only I/O: sockets, connection state, timeouts. No protocol knowledge."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")

#: How long a following role (listen, a request --via a simulator, and the simulator asked to
#: reach its client) waits for a peer that is not there before it gives up: scripts often start it
#: just before the other side.
LISTEN_REFUSED_AFTER_S = 5.0

#: Connection-state reports from a transport: (endpoint name, state, detail) -> None.
LinkCallback = Callable[[str, str, Any], None]

#: A role reports what peers do wrong (dropped garbage, a refused upstream) at most this often.
WARN_EVERY_S = 10.0


class Throttle:
    """Warnings about what peers send, at most one every WARN_EVERY_S, with a count of the rest:
    a hostile client must not flood the operator's terminal."""

    def __init__(self, warn: Callable[[str], None] | None, every_s: float = WARN_EVERY_S) -> None:
        self._warn, self._every_s = warn, every_s
        self.count = 0
        self._reported = 0
        self._quiet_until = 0.0

    def __call__(self, text: str) -> None:
        self.count += 1
        now = time.monotonic()
        if self._warn is not None and now >= self._quiet_until:
            self._quiet_until = now + self._every_s
            more = self.count - self._reported - 1
            self._reported = self.count
            self._warn(text + (f" (and {more} more since the last warning)" if more else ""))


async def within(awaitable: Awaitable[T], timeout: float | None) -> T:
    """`awaitable` with a time limit (asyncio.TimeoutError past it). Not asyncio.wait_for: before
    Python 3.12 it can swallow a cancellation that races the result, so Ctrl-C or SIGTERM would
    go unheard. The awaitable is cancelled when the time is up or when we are, and has finished
    its clean-up before we go on: a Condition.wait() under `async with` has taken its lock back.
    A limit already past (0 or less) is TimeoutError even when the result is ready: a loop that
    passes what is left of its deadline (`within(conn.recv(), deadline - now)`) would otherwise
    never see it pass while a flooding peer keeps a frame ready for every call."""
    task = asyncio.ensure_future(awaitable)
    if timeout is not None and timeout <= 0:
        await _cancelled(task)
        raise TimeoutError
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout)
    except asyncio.CancelledError:
        await _cancelled(task)
        raise
    if not done:
        await _cancelled(task)
        raise TimeoutError
    return task.result()


async def _cancelled(task: asyncio.Future[Any]) -> None:
    """Cancels `task` and waits for it to end; what it ends with no longer matters."""
    task.cancel()
    await asyncio.wait({task})
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log it as never retrieved


async def together(*awaitables: Awaitable[Any]) -> list[Any]:
    """All of them at once, their results in order; when one fails or we are cancelled, each of the
    others is cancelled once and has finished its clean-up before we go on. Not asyncio.gather:
    it returns as soon as one child ends cancelled, and a second cancel() would cut short the
    clean-up (an unregister on the way out) the others are still doing."""
    tasks = [asyncio.ensure_future(awaitable) for awaitable in awaitables]
    try:
        if tasks:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        pending = [task for task in tasks if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
    # every failure retrieved (several children may fail alike: asyncio would log the others' tracebacks)
    failures = [failure for task in tasks if not task.cancelled() and (failure := task.exception()) is not None]
    if failures:
        raise failures[0]  # the failure that ended the rest, not the cancellation it caused
    return [task.result() for task in tasks]
