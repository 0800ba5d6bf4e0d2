"""The Pipe of one relayed direction and the disconnect clock, on a real event loop: frames pass
in order and unchanged without faults, and each fault does what its label says (a drop sends
nothing, a delay and a stall hold frames and send them in order when due, a duplicate sends
twice, a corruption sends a malformed frame and shows the frame as it came, marked); the held frames stay bounded;
cut_when_due cuts at the due times."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from fieldctl.protocols.core.limits import DEFAULT_LIMITS
from fieldctl.protocols.core.message import Message
from fieldctl.protocols.sdk.contract import Context
from fieldctl.protocols.sdk.faults import Faults, parse_rule
from fieldctl.protocols.sdk.machine import Frame
from fieldctl.protocols.sdk.runners import relay
from fieldctl.protocols.sdk.runners.relay import MAX_HELD_FRAMES, Pipe, cut_when_due
from fieldctl.protocols.transport import within
from tests.helpers.waiting import until

T = TypeVar("T")


def tap(frame: Frame) -> list[Message]:
    """A JSON tap: each frame one message, or one malformed message (it never raises)."""
    body = frame[-1] if isinstance(frame, tuple) else frame
    raw = body.encode() if isinstance(body, str) else body
    try:
        data = json.loads(body)
        return [Message("p", "events", "in", data["channel"], data["kind"], payload=data, raw=(raw,))]
    except (ValueError, KeyError, TypeError) as exc:
        return [Message("p", "events", "in", "", "", raw=(raw,), error=f"not JSON: {exc}")]


def frame(n: int, channel: str = "events", kind: str = "tick") -> str:
    return json.dumps({"channel": channel, "kind": kind, "n": n})


class Relayed:
    """One Pipe with what it emitted and sent (with the loop time of each send)."""

    def __init__(self, *rules: str, seed: int = 1) -> None:
        self.emitted: list[Message] = []
        self.notes: list[str] = []
        self.sent: list[tuple[float, Frame]] = []
        self.faults = Faults([parse_rule(rule) for rule in rules], seed=seed)
        self.context = Context(self.emitted.append, self.notes.append, {}, DEFAULT_LIMITS)
        self.pipe = Pipe("in", self.send, tap, self.context, self.faults, endpoint="events")

    async def send(self, frame: Frame) -> None:
        self.sent.append((asyncio.get_running_loop().time(), frame))

    @property
    def frames(self) -> list[Frame]:
        return [frame for _, frame in self.sent]

    async def running(self, body: Callable[[], Awaitable[T]]) -> T:
        """Runs `body` with the pipe's own task beside it, started as a proxy starts."""
        self.faults.start(asyncio.get_running_loop().time())
        task = asyncio.create_task(self.pipe.run())
        try:
            return await body()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def test_without_faults_frames_pass_in_order_and_unchanged() -> None:
    relayed = Relayed()
    frames: list[Frame] = [frame(1), frame(2).encode(), (b"topic", frame(3).encode())]

    async def body() -> None:
        for each in frames:
            await relayed.pipe.relay(each)

    asyncio.run(relayed.running(body))
    assert relayed.frames == frames
    assert [msg.payload["n"] for msg in relayed.emitted] == [1, 2, 3]
    assert all(msg.fault is None for msg in relayed.emitted)


def test_a_rule_that_picks_nothing_relays_as_it_came() -> None:
    relayed = Relayed("drop channel=heartbeat")

    async def body() -> None:
        await relayed.pipe.relay(frame(1))

    asyncio.run(relayed.running(body))
    assert relayed.frames == [frame(1)]
    assert relayed.emitted[0].fault is None


def test_a_dropped_frame_is_shown_and_never_sent() -> None:
    relayed = Relayed("drop channel=heartbeat")

    async def body() -> None:
        await relayed.pipe.relay(frame(1, "heartbeat"))
        await relayed.pipe.relay(frame(2))

    asyncio.run(relayed.running(body))
    assert relayed.frames == [frame(2)]
    assert [(msg.channel, msg.fault) for msg in relayed.emitted] == [("heartbeat", "dropped"), ("events", None)]


def test_a_delayed_frame_is_held_and_sent_when_due_in_order() -> None:
    relayed = Relayed("delay 200ms")

    async def body() -> float:
        began = asyncio.get_running_loop().time()
        for n in range(5):
            await relayed.pipe.relay(frame(n))
        assert relayed.sent == []  # held, each shown already
        assert [msg.fault for msg in relayed.emitted] == ["delayed 200.0 ms"] * 5
        await until(lambda: len(relayed.sent) == 5, what="the delayed frames")
        return began

    began = asyncio.run(relayed.running(body))
    assert relayed.frames == [frame(n) for n in range(5)]
    assert all(at - began >= 0.2 - 0.01 for at, _ in relayed.sent)


def test_jittered_delays_never_reorder_the_frames_they_hold() -> None:
    relayed = Relayed("delay 10-150ms")

    async def body() -> None:
        for n in range(30):
            await relayed.pipe.relay(frame(n))
        await until(lambda: len(relayed.sent) == 30, what="the delayed frames")

    asyncio.run(relayed.running(body))
    assert relayed.frames == [frame(n) for n in range(30)]
    assert len({msg.fault for msg in relayed.emitted}) > 1  # each shows the delay it was given


def test_a_duplicated_frame_is_sent_twice() -> None:
    relayed = Relayed("duplicate kind=once")

    async def body() -> None:
        await relayed.pipe.relay(frame(1, kind="once"))
        await relayed.pipe.relay(frame(2))

    asyncio.run(relayed.running(body))
    assert relayed.frames == [frame(1, kind="once"), frame(1, kind="once"), frame(2)]
    assert [msg.fault for msg in relayed.emitted] == ["duplicated", None]


def test_a_corrupted_frame_is_sent_malformed_and_shown_as_it_came() -> None:
    relayed = Relayed("corrupt")
    good = (b"events", frame(1).encode())

    async def body() -> None:
        await relayed.pipe.relay(good)

    asyncio.run(relayed.running(body))
    [sent] = relayed.frames
    assert isinstance(sent, tuple) and len(sent) == 2 and sent[0] == b"events" and sent != good
    [shown] = relayed.emitted
    assert shown.fault == "corrupted" and shown.error is None, "the tap saw the frame once, as it came"
    assert sent[1] != good[1] and sent[1][:10] == good[1][:10]


def test_a_stall_holds_its_frames_until_it_ends_and_lets_others_pass() -> None:
    relayed = Relayed("stall channel=heartbeat for=300ms")

    async def body() -> float:
        began = asyncio.get_running_loop().time()
        await relayed.pipe.relay(frame(1, "heartbeat"))
        await relayed.pipe.relay(frame(2))
        await relayed.pipe.relay(frame(3, "heartbeat"))
        await until(lambda: len(relayed.sent) == 3, what="the stalled frames")
        return began

    began = asyncio.run(relayed.running(body))
    assert relayed.frames == [frame(2), frame(1, "heartbeat"), frame(3, "heartbeat")]
    assert [msg.fault for msg in relayed.emitted] == ["stalled", None, "stalled"]
    assert all(at - began >= 0.3 - 0.01 for at, sent in relayed.sent if sent != frame(2))


def test_a_stall_does_not_hold_back_what_a_delay_holds() -> None:
    relayed = Relayed("stall channel=heartbeat for=10s", "delay 10ms")

    async def body() -> None:
        await relayed.pipe.relay(frame(1, "heartbeat"))
        await relayed.pipe.relay(frame(2))
        await until(lambda: relayed.frames == [frame(2)], what="the delayed frame, before the stall ends")

    asyncio.run(relayed.running(body))
    assert [msg.fault for msg in relayed.emitted] == ["stalled, delayed 10.0 ms", "delayed 10.0 ms"]


def test_held_frames_are_bounded_in_bytes_too() -> None:
    relayed = Relayed("delay 60s")
    big = (b"topic", b"x" * (relay.MAX_HELD_BYTES // 2))

    async def body() -> None:
        for _ in range(3):
            await relayed.pipe.relay(big)

    asyncio.run(relayed.running(body))
    assert relayed.sent == []
    assert [msg.fault for msg in relayed.emitted][-1] == f"dropped ({relay.MAX_HELD_BYTES} bytes held already)"


def test_a_flood_past_the_held_frames_is_dropped_and_says_so() -> None:
    relayed = Relayed("delay 60s")

    async def body() -> None:
        for n in range(MAX_HELD_FRAMES + 3):
            await relayed.pipe.relay(frame(n))

    asyncio.run(relayed.running(body))
    assert relayed.sent == []
    held, over = relayed.emitted[:MAX_HELD_FRAMES], relayed.emitted[MAX_HELD_FRAMES:]
    assert all(msg.fault == "delayed 60.0 s" for msg in held)
    assert [msg.fault for msg in over] == [f"dropped ({MAX_HELD_FRAMES} frames held already)"] * 3
    assert len(relayed.pipe._held) == MAX_HELD_FRAMES


def test_the_flood_limit_is_the_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(relay, "MAX_HELD_FRAMES", 2)
    relayed = Relayed("delay 60s")

    async def body() -> None:
        for n in range(3):
            await relayed.pipe.relay(frame(n))

    asyncio.run(relayed.running(body))
    assert [msg.fault for msg in relayed.emitted][-1] == "dropped (2 frames held already)"


def test_cut_when_due_cuts_at_each_due_time_and_reports_it() -> None:
    faults = Faults([parse_rule("disconnect every=0.05s"), parse_rule("disconnect after=0.07s")])
    emitted: list[Message] = []
    cuts: list[float] = []

    async def run() -> float:
        loop = asyncio.get_running_loop()
        began = loop.time()
        faults.start(began)

        async def cut() -> None:
            cuts.append(loop.time() - began)

        task = asyncio.create_task(cut_when_due(faults, cut, Context(emitted.append, print, {}, DEFAULT_LIMITS), "p"))
        try:
            await until(lambda: len(cuts) >= 4, what="four cuts")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        return began

    asyncio.run(run())
    dues = [0.05, 0.07, 0.1, 0.15]
    assert all(due - 0.005 <= at for due, at in zip(dues, cuts, strict=False))
    assert cuts == sorted(cuts)
    assert [(msg.channel, msg.kind, msg.fault) for msg in emitted[:4]] == [("link", "disconnected", "disconnected")] * 4


def cuts_until_done(rule: str) -> list[float]:
    """Runs cut_when_due on one rule until no cut is left: the loop times of its cuts."""
    faults = Faults([parse_rule(rule)])
    cuts: list[float] = []

    async def run() -> None:
        loop = asyncio.get_running_loop()
        faults.start(loop.time())

        async def cut() -> None:
            cuts.append(loop.time())

        await within(cut_when_due(faults, cut, Context(print, print, {}, DEFAULT_LIMITS), "p"), 10)

    asyncio.run(run())
    return cuts


def test_cut_when_due_ends_when_no_cut_is_left() -> None:
    assert len(cuts_until_done("disconnect after=0.05s")) == 1


def test_a_sleep_that_ends_a_little_early_never_cuts_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    """asyncio may run a timer up to a clock tick before its time: the cut just made must not be
    due again."""
    sleep = asyncio.sleep

    async def early(delay: float) -> None:
        await sleep(max(0.0, delay - 0.001))

    monkeypatch.setattr(asyncio, "sleep", early)
    assert len(cuts_until_done("disconnect after=0.05s")) == 1
