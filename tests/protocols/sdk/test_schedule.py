"""Simulators' periodic work on an absolute schedule: work done at each tick does not push the
later ticks back, a stall longer than an interval is not made up by a burst, and devices started
together do not tick together. Run on an event loop whose clock only the test moves, so every
tick time is exact and no machine load can change it."""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import pytest

from fieldctl.protocols.sdk.schedule import ticks
from fieldctl.protocols.transport import together

INTERVAL_S = 0.1
T = TypeVar("T")


class _JumpingSelector(selectors.DefaultSelector):
    """Never waits: where the loop would sleep until its next timer, its clock jumps there."""

    def __init__(self, loop: VirtualTimeLoop) -> None:
        super().__init__()
        self.loop = loop

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if not ready:
            if timeout is None:
                raise AssertionError("the loop waits for nothing it scheduled: the test would hang")
            self.loop.now += timeout
        return ready


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop on virtual time: it starts at 0, and only timers and `stall` move it."""

    def __init__(self) -> None:
        self.now = 0.0
        super().__init__(_JumpingSelector(self))

    def time(self) -> float:
        return self.now

    def stall(self, seconds: float) -> None:
        """As if the loop were blocked for `seconds`: time passes and nothing runs."""
        self.now += seconds


def run(main: Callable[[VirtualTimeLoop], Coroutine[Any, Any, T]]) -> T:
    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        loop = runner.get_loop()
        assert isinstance(loop, VirtualTimeLoop)
        return runner.run(main(loop))


async def stamps(count: int, loop: VirtualTimeLoop, work: Callable[[int], Awaitable[None]]) -> list[float]:
    """The loop times of the first `count` ticks, `work(n)` done after the n-th."""
    times: list[float] = []
    async for _ in ticks(INTERVAL_S):
        times.append(loop.time())
        if len(times) == count:
            return times
        await work(len(times))
    raise AssertionError("ticks ended")


def test_the_time_a_tick_takes_does_not_drift_the_schedule() -> None:
    async def main(loop: VirtualTimeLoop) -> list[float]:
        return await stamps(10, loop, lambda n: asyncio.sleep(INTERVAL_S / 2))  # the work of one beat

    times = run(main)
    first = times[0]
    assert 0 <= first < INTERVAL_S, "the first tick comes within one interval"
    # sleep(interval) after the work would put the tenth 9 × 0.15 s after the first; on schedule, 9 × 0.1 s.
    assert times == pytest.approx([first + n * INTERVAL_S for n in range(10)], abs=1e-9)


def test_a_long_stall_resumes_without_a_burst() -> None:
    async def main(loop: VirtualTimeLoop) -> list[float]:
        async def stall_once(n: int) -> None:
            if n == 1:
                loop.stall(5 * INTERVAL_S)  # the whole loop blocked for five intervals

        return await stamps(4, loop, stall_once)

    first, resumed, *rest = run(main)
    assert resumed == pytest.approx(first + 5 * INTERVAL_S), "the missed beat is sent once, at once"
    assert rest == pytest.approx([resumed + INTERVAL_S, resumed + 2 * INTERVAL_S]), "then the pace, not a burst"


def test_devices_started_together_tick_at_their_own_phases() -> None:
    async def first_tick(loop: VirtualTimeLoop) -> float:
        async for _ in ticks(INTERVAL_S):
            return loop.time()
        raise AssertionError("ticks ended")

    async def main(loop: VirtualTimeLoop) -> list[float]:
        return await together(*(first_tick(loop) for _ in range(20)))

    firsts = run(main)
    assert all(0 <= first < INTERVAL_S for first in firsts)
    assert len(set(firsts)) > 1, "not one burst"
