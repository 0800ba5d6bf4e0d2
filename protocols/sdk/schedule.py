"""Periodic work on an absolute schedule, for simulators' heartbeats and timelines. `sleep(interval)` after each
beat drifts by the time the beat took, and devices started together beat together: a thousand
simulated devices in one process (`simulate --devices`) then send in one burst, and the last of
the burst is late. Here each device starts at its own random phase within the first interval, as
real devices do, and keeps it: a late wake-up shortens the next wait instead of shifting every beat.
A seeded `rng` makes the phase (and any jitter) repeat from run to run."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator


async def ticks(interval_s: float, rng: random.Random | None = None, jitter: float = 0.0) -> AsyncIterator[None]:
    """Yields once per interval, forever; the first time within one interval from now. `jitter`
    (a fraction) moves each interval by up to that much either way: events, unlike heartbeats,
    do not come on a clock."""
    rng = rng or random.Random()
    loop = asyncio.get_running_loop()
    due = loop.time() + rng.uniform(0.0, interval_s)
    while True:
        await asyncio.sleep(max(0.0, due - loop.time()))
        yield
        due += interval_s * (1.0 + rng.uniform(-jitter, jitter)) if jitter else interval_s
        if due < loop.time() - interval_s:  # stalled longer than an interval: resume, no burst of missed beats
            due = loop.time()
