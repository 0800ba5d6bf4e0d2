"""What every relay of `fieldctl proxy` shares, whatever carries its frames: a `Pipe` per
direction of a connection (each frame decoded for the feed, judged by the fault rules, and sent on
unchanged unless a rule says otherwise, in order), and `cut_when_due`, the disconnect rules'
clock. The transport-shaped relays (relay_zeromq, relay_websocket, relay_documents) own the
sockets and hand every frame to a Pipe."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
from collections.abc import Awaitable, Callable
from typing import Any

from fieldctl.protocols.core.message import Message, link
from fieldctl.protocols.sdk.contract import Context
from fieldctl.protocols.sdk.faults import Faults, Verdict, corrupt_frame
from fieldctl.protocols.sdk.machine import Frame
from fieldctl.protocols.transport import within

#: Decodes one frame going one way into the messages the feed shows; never raises (a frame that
#: does not decode is one Message with `error` set). A tap may keep state (a request's id, to
#: match its reply), one per connection.
Tap = Callable[[Frame], list[Message]]
SendFrame = Callable[[Frame], Awaitable[Any]]

#: Frames, and their bytes, one direction of one connection may hold back for a delay or a stall;
#: past either a frame is dropped (and shown so) rather than held: a flood cannot grow the
#: proxy's memory.
MAX_HELD_FRAMES = 10_000
MAX_HELD_BYTES = 64 * 1024 * 1024


def frame_bytes(frame: Frame) -> int:
    """What holding `frame` costs, about: its parts' lengths."""
    return sum(map(len, frame)) if isinstance(frame, tuple) else len(frame)


class Pipe:
    """One direction of one relayed connection. `relay(frame)` reports what the frame decodes to
    and sends it on; a frame a rule holds back waits in a bounded heap that `run` drains when each
    is due. Without fault rules a frame costs one tap and one send (the proxy's fast path)."""

    def __init__(
        self, direction: str, send: SendFrame, tap: Tap, context: Context, faults: Faults, *, endpoint: str = ""
    ) -> None:
        self.direction, self.endpoint = direction, endpoint
        self._send, self._tap, self._emit, self._faults = send, tap, context.emit, faults
        self._held: list[tuple[float, int, Frame]] = []
        self._held_bytes = 0
        self._order = itertools.count()
        self._last_due = 0.0
        self._woken = asyncio.Event()

    async def relay(self, frame: Frame) -> None:
        messages = self._tap(frame)
        if not self._faults.active:
            for msg in messages:
                self._emit(msg)
            await self._send(frame)
            return
        now = asyncio.get_running_loop().time()
        verdict = self._faults.judge(self.direction, messages, now)
        if verdict is None:
            for msg in messages:
                self._emit(msg)
            await self._send(frame)
            return
        await self._apply(verdict, frame, messages, now)

    def at_once(self, send_now: Callable[[Frame], object]) -> Callable[[Frame], None] | None:
        """The fast path of a transport whose sends never wait: without fault rules, a callable
        that reports each frame and sends it with `send_now`, with no coroutine of its own (a
        relay's hot loop calls it per frame); None when rules are active, and `relay` decides."""
        if self._faults.active:
            return None
        tap, emit = self._tap, self._emit

        def relay_at_once(frame: Frame) -> None:
            for msg in tap(frame):
                emit(msg)
            send_now(frame)

        return relay_at_once

    async def _apply(self, verdict: Verdict, frame: Frame, messages: list[Message], now: float) -> None:
        """Shows the frame as it came, marked with what the rules do to it (a corrupted one too: the
        tap, which may keep state, sees each frame once), then does it."""
        label = verdict.label
        size = frame_bytes(frame) * verdict.copies
        if not verdict.drop and verdict.delay_s > 0:
            if len(self._held) >= MAX_HELD_FRAMES:
                verdict, label = Verdict("dropped", drop=True), f"dropped ({MAX_HELD_FRAMES} frames held already)"
            elif self._held_bytes + size > MAX_HELD_BYTES:
                verdict, label = Verdict("dropped", drop=True), f"dropped ({MAX_HELD_BYTES} bytes held already)"
        for msg in messages:
            msg.fault = label
            self._emit(msg)
        if verdict.drop:
            return
        if verdict.corrupt:
            frame = corrupt_frame(frame)
        if verdict.delay_s <= 0:
            for _ in range(verdict.copies):
                await self._send(frame)
            return
        if verdict.stalled:  # released at the stall's end, whatever delays hold
            due = now + verdict.delay_s
        else:  # frames a delay holds keep their order: a jittered delay never reorders them
            due = self._last_due = max(now + verdict.delay_s, self._last_due)
        for _ in range(verdict.copies):
            heapq.heappush(self._held, (due, next(self._order), frame))
        self._held_bytes += size
        self._woken.set()

    async def run(self) -> None:
        """Sends held frames as they fall due, until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            if not self._held:
                self._woken.clear()
                await self._woken.wait()
                continue
            due = self._held[0][0]
            wait = due - loop.time()
            if wait > 0:
                self._woken.clear()
                with contextlib.suppress(TimeoutError):
                    await within(self._woken.wait(), wait)
                continue
            _, _, frame = heapq.heappop(self._held)
            self._held_bytes -= frame_bytes(frame)
            await self._send(frame)


async def cut_when_due(faults: Faults, cut: Callable[[], Awaitable[Any]], context: Context, profile: str) -> None:
    """Runs `cut` (drop every connection) whenever a disconnect rule falls due, reporting each as
    a `disconnected` link with its fault label, until cancelled or no rule is left."""
    loop = asyncio.get_running_loop()
    last = loop.time()
    # Asked from the last cut at the earliest: a sleep may end a clock tick early, and the cut
    # just made would be due again.
    while (due := faults.next_disconnect(max(loop.time(), last))) is not None:
        last = due
        await asyncio.sleep(max(0.0, due - loop.time()))
        msg = link(profile, "", "disconnected", {"reason": "fault rule"})
        msg.fault = "disconnected"
        context.emit(msg)
        await cut()
