"""Periodic work on an absolute schedule, for simulators' heartbeats and timelines. `sleep(interval)` after each
beat drifts by the time the beat took, and devices started together beat together: a thousand
simulated devices in one process (`simulate --devices`) then send in one burst, and the last of
the burst is late. Here each device starts at its own random phase within the first interval, as
real devices do, and keeps it: a late wake-up shortens the next wait instead of shifting every beat."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator


async def ticks(interval_s: float) -> AsyncIterator[None]:
    """Yields once per interval, forever; the first time within one interval from now."""
    loop = asyncio.get_running_loop()
    due = loop.time() + random.uniform(0.0, interval_s)
    while True:
        await asyncio.sleep(max(0.0, due - loop.time()))
        yield
        due += interval_s
        if due < loop.time() - interval_s:  # stalled longer than an interval: resume, no burst of missed beats
            due = loop.time()
