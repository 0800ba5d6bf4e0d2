"""within(): the shared time limit, cancellation-safe, and clean when the time is up; together():
several at once, each cancelled once and its clean-up finished before it returns."""

from __future__ import annotations

import asyncio

import pytest

from fieldctl.protocols.transport import together, within


def test_result_within_the_limit() -> None:
    async def main() -> int:
        return await within(asyncio.sleep(0, 7), 1.0)

    assert asyncio.run(main()) == 7


def test_timeout_cancels_the_awaitable() -> None:
    async def main() -> asyncio.Future[bool]:
        task = asyncio.ensure_future(asyncio.Event().wait())
        with pytest.raises(asyncio.TimeoutError):
            await within(task, 0.01)
        return task

    assert asyncio.run(main()).cancelled()


def test_condition_wait_gives_the_lock_back_before_the_timeout_is_raised() -> None:
    async def main() -> bool:
        changed = asyncio.Condition()
        async with changed:
            with pytest.raises(asyncio.TimeoutError):
                await within(changed.wait_for(lambda: False), 0.01)
            assert changed.locked()
        return not changed.locked()

    assert asyncio.run(main())


def test_our_cancellation_is_not_swallowed() -> None:
    async def main() -> None:
        inner = asyncio.Event()

        async def waiter() -> None:
            await within(inner.wait(), 10)

        task = asyncio.ensure_future(waiter())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())


def test_together_lets_every_clean_up_finish_when_one_ends_cancelled() -> None:
    """The role's unregister on the way out: a child whose clean-up awaits keeps it, although its
    sibling ends cancelled first (asyncio.gather would return then and a second cancel cut it)."""
    cleaned: list[str] = []

    async def role() -> None:
        try:
            await asyncio.get_running_loop().create_future()
        finally:
            await asyncio.sleep(0.01)  # an unregister: a connect and a write
            await asyncio.sleep(0.01)
            cleaned.append("role")

    async def watch() -> None:
        await asyncio.get_running_loop().create_future()

    async def main() -> None:
        task = asyncio.ensure_future(together(role(), watch()))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert cleaned == ["role"]


def test_together_cancels_the_rest_when_one_fails_and_raises_its_error() -> None:
    ended: list[str] = []

    async def fails() -> None:
        await asyncio.sleep(0.01)
        raise ValueError("bad")

    async def forever() -> None:
        try:
            await asyncio.get_running_loop().create_future()
        finally:
            ended.append("forever")

    async def main() -> None:
        with pytest.raises(ValueError, match="bad"):
            await together(forever(), fails())  # its error, not the cancellation of the one before it

    asyncio.run(main())
    assert ended == ["forever"]
    assert asyncio.run(together(asyncio.sleep(0, 1), asyncio.sleep(0, 2))) == [1, 2]
