"""A protocol's proxy role run at the driver level in a test's own event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fieldctl.protocols.core.message import LINK, Message
from fieldctl.protocols.sdk.contract import BaseDriver
from fieldctl.protocols.sdk.faults import Faults
from tests.helpers.waiting import until


@contextlib.asynccontextmanager
async def proxying(
    driver: BaseDriver, upstream: dict[str, str], feed: list[Message], faults: Faults | None = None
) -> AsyncIterator[None]:
    """`driver.proxy` to `upstream` in a task, from once every endpoint it relays is bound;
    what it reports goes to `feed`."""
    task = asyncio.get_running_loop().create_task(
        driver.proxy(driver.context(feed.append), upstream=upstream, faults=faults or Faults())
    )

    def bound() -> set[str]:
        return {msg.endpoint for msg in feed if msg.channel == LINK and msg.kind == "bound"}

    await until(lambda: bound() >= set(upstream) or task.done(), 10, "the proxy bound")
    if task.done():
        task.result()  # its failure, as the test's
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
