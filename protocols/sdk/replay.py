"""Replaying recorded or hand-written Messages (`publish --from`, `simulate --scenario`): which
of them a role may send again, and at what pace. Shared by every protocol."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from fieldctl.protocols.core.message import Message
from fieldctl.protocols.sdk.contract import Notify


def replayable(messages: list[Message], keep: Callable[[Message], bool], notify: Notify, what: str) -> list[Message]:
    """Recordings also hold link states, replies and malformed frames: only what `keep` accepts
    replays. `what` names the rest in the one warning about what was skipped."""
    kept = [msg for msg in messages if not msg.is_link and not msg.error and keep(msg)]
    skipped = sum(1 for msg in messages if not msg.is_link) - len(kept)
    if skipped:
        notify(f"skipped {skipped} message(s): {what}, or malformed")
    return kept


async def paced(messages: list[Message], realtime: bool = True) -> AsyncIterator[Message]:
    """Each message at its recorded offset from the first one (realtime), so no drift
    accumulates; otherwise as fast as the role can send."""
    loop = asyncio.get_running_loop()
    start, first = loop.time(), messages[0].ts if messages else 0.0
    for msg in messages:
        delay = start + (msg.ts - first) - loop.time()
        if realtime and delay > 0:
            await asyncio.sleep(delay)
        yield msg


class Subscribed(Protocol):
    async def wait_subscriber(self, timeout: float) -> None: ...


class Publishing(Protocol):
    """A simulator's publisher as `publish_all` uses it."""

    @property
    def pub(self) -> Subscribed: ...

    def send_message(self, msg: Message) -> Any: ...

    def close(self, linger_ms: int) -> None: ...


async def publish_all(
    publisher: Publishing, messages: list[Message], wait_s: float, realtime: bool, linger_ms: int
) -> None:
    """`publish` on a publish/subscribe transport: once a subscriber is there (a publication
    nobody hears is lost), each message at its pace; then a lingering close, so what was sent
    still reaches it."""
    try:
        await publisher.pub.wait_subscriber(wait_s)
        async for msg in paced(messages, realtime):
            publisher.send_message(msg)
    finally:
        publisher.close(linger_ms)
