"""Simulators' periodic work on an absolute schedule: work done at each tick does not push the
later ticks back, and a stall longer than an interval is not made up by a burst."""

from __future__ import annotations

import asyncio
import time

from fieldctl.protocols.sdk.schedule import ticks

INTERVAL_S = 0.1


def test_the_time_a_tick_takes_does_not_drift_the_schedule() -> None:
    async def run() -> float:
        start = time.monotonic()
        count = 0
        async for _ in ticks(INTERVAL_S):
            count += 1
            if count == 10:
                return time.monotonic() - start
            await asyncio.sleep(INTERVAL_S / 2)  # the work of one beat
        raise AssertionError("ticks ended")

    # sleep(interval) after the work would take 10 × 0.15 s; on schedule it is at most 10 × 0.1 s.
    assert asyncio.run(run()) < 1.3


def test_a_long_stall_resumes_without_a_burst() -> None:
    async def run() -> list[float]:
        stamps: list[float] = []
        async for _ in ticks(INTERVAL_S):
            stamps.append(time.monotonic())
            if len(stamps) == 1:
                time.sleep(5 * INTERVAL_S)  # the whole loop blocked for five intervals
            if len(stamps) == 4:
                return stamps
        raise AssertionError("ticks ended")

    stamps = asyncio.run(run())
    assert stamps[2] - stamps[1] >= INTERVAL_S / 2, "the missed beats are not sent in a burst"
