"""A driver's `proxy` role run for a test: in the test's own event loop (`proxying`), or in a
thread with its own event loop (`ProxyRun`), so a test can wait on the real peers' processes
(which block) while it relays; what it emits and notifies is kept for the test."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

from fieldctl.profiles import load_profile
from fieldctl.protocols.core.message import LINK, Message
from fieldctl.protocols.sdk.contract import BaseDriver
from fieldctl.protocols.sdk.faults import Faults
from tests.helpers.waiting import holds_within, until


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


class ProxyRun:
    """`driver_class(profile).proxy(...)` for `profile` with `endpoints` (NAME=URL, bound) and
    `upstream` (name -> URL), from start() until stop(); `messages` holds what it emitted."""

    def __init__(
        self,
        driver_class: type[BaseDriver],
        profile: str,
        endpoints: list[str],
        upstream: dict[str, str],
        faults: Faults | None = None,
        options: dict[str, Any] | None = None,
        sets: list[str] | None = None,
    ) -> None:
        self.notes: list[str] = []
        self.messages: list[Message] = []
        self.driver = driver_class(load_profile(profile, endpoints=endpoints, sets=sets or []), self.notes.append)
        self.upstream, self.faults, self.options = upstream, faults or Faults(), options or {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.failure: BaseException | None = None

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            context = self.driver.context(self.messages.append, self.options)
            self._task = asyncio.ensure_future(self.driver.proxy(context, upstream=self.upstream, faults=self.faults))
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

        try:
            asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001  kept for the test to see
            self.failure = exc

    def start(self) -> ProxyRun:
        """Runs it, and returns once it has bound."""
        self._thread.start()
        self.wait(lambda m: m.channel == "link" and m.kind == "bound", what="the proxy bound")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(15)
        assert not self._thread.is_alive(), "the proxy did not stop within 15 s"
        assert self.failure is None, f"the proxy failed: {self.failure!r}"

    def __enter__(self) -> ProxyRun:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait(self, predicate: Callable[[Message], bool], timeout: float = 20, what: str = "a message") -> Message:
        """The first message emitted so far or within `timeout` that matches."""
        found: list[Message] = []

        def seen() -> bool:
            assert self.failure is None, f"the proxy failed: {self.failure!r}"
            found.extend(m for m in list(self.messages) if predicate(m))
            return bool(found)

        holds_within(seen, timeout, f"the proxy's {what}")
        return found[0]

    def noted(self, text: str, timeout: float = 20) -> str:
        """The first notify line holding `text`, so far or within `timeout`."""
        holds_within(lambda: any(text in note for note in list(self.notes)), timeout, f"a note with {text!r}")
        return next(note for note in self.notes if text in note)

    def seen(self, direction: str, channel: str, kind: str | None = None) -> list[Message]:
        return [
            m
            for m in list(self.messages)
            if m.direction == direction and m.channel == channel and (kind is None or m.kind == kind)
        ]
