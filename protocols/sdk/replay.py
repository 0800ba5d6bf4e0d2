"""Replaying recorded or hand-written Messages (`publish --from`, `simulate --scenario`): which
of them a role may send again, and at what pace. Shared by every protocol."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

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
