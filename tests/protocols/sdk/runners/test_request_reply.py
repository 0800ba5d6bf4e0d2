"""The ZeroMQ request/reply runner on real loopback sockets in-process: a Machine answers every
request, now or at its wake_at; hostile clients leave the server serving; a client's timed-out
request takes only its socket with it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
import zmq
import zmq.asyncio

from fieldctl.protocols.core.errors import Timeout
from fieldctl.protocols.core.message import IN, OUT, Message
from fieldctl.protocols.sdk.machine import Effects, Frame
from fieldctl.protocols.sdk.runners import request_reply
from tests.helpers.ports import free_port
from tests.helpers.waiting import until


def message(frames: tuple[bytes, ...], direction: str) -> Message:
    return Message(profile="toy", endpoint="calls", direction=direction, channel="call", kind="x", raw=frames)


class Echo:
    """Replies with the request's parts upper-cased; `wait <seconds>` answers after that long, and
    `later <seconds>` answers now and asks for a tick then."""

    def __init__(self) -> None:
        self.ticks: list[float] = []
        self._held: tuple[bytes, ...] | None = None

    def start(self, now: float) -> Effects:
        return Effects()

    def receive(self, frame: Frame, now: float) -> Effects:
        frames = request_reply.parts(frame)
        verb, _, seconds = frames[0].partition(b" ")
        if verb == b"wait":
            self._held = frames
            return Effects(emit=[message(frames, IN)], wake_at=now + float(seconds))
        effects = Effects(emit=[message(frames, IN)], send=[tuple(part.upper() for part in frames)])
        if verb == b"later":
            effects.wake_at = now + float(seconds)
        return effects

    def tick(self, now: float) -> Effects:
        self.ticks.append(now)
        held, self._held = self._held, None
        return Effects(send=[held]) if held is not None else Effects(warn=["ticked"])


@contextlib.asynccontextmanager
async def serving(machine: Echo) -> AsyncIterator[tuple[str, list[Message], list[str]]]:
    emitted: list[Message] = []
    warnings: list[str] = []
    server = request_reply.Server("toy", "calls", f"tcp://127.0.0.1:{free_port()}", emitted.append, warnings.append)
    task = asyncio.get_running_loop().create_task(server.serve(machine))
    try:
        yield server.socket.url, emitted, warnings
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        server.close()


def client(url: str) -> request_reply.Client:
    return request_reply.Client("calls", url, lambda frames: message(tuple(frames), IN))


def test_every_request_is_answered_by_the_machine_and_reported() -> None:
    async def run() -> None:
        async with serving(Echo()) as (url, emitted, _):
            calls = client(url)
            reported: list[Message] = []
            try:
                sent, reply, rtt_s = await calls.exchange(message((b"ping", b"two"), OUT), 5, reported.append)
            finally:
                calls.close()
            assert reply.raw == (b"PING", b"TWO") and rtt_s > 0
            assert reported == [sent, reply]
            assert next(msg.kind for msg in emitted if msg.channel == "link") == "bound"
            assert [msg.raw for msg in emitted if msg.channel == "call"] == [(b"ping", b"two")]

    asyncio.run(run())


def test_an_answer_that_takes_time_holds_the_next_request_and_timers_tick_between_requests() -> None:
    async def run() -> None:
        machine = Echo()
        async with serving(machine) as (url, emitted, warnings):
            first, second = client(url), client(url)
            loop = asyncio.get_running_loop()
            try:
                started = loop.time()
                slow = loop.create_task(first.exchange(message((b"wait 0.3",), OUT), 5, lambda msg: None))
                await until(lambda: any(m.raw == (b"wait 0.3",) for m in emitted), 5, "the held call at the server")
                fast = await second.exchange(message((b"later 0.1",), OUT), 5, lambda msg: None)
                assert fast.reply.raw == (b"LATER 0.1",)
                assert loop.time() - started >= 0.3  # served after the held call, one at a time
                assert (await slow).reply.raw == (b"wait 0.3",)
                await until(lambda: warnings == ["ticked"], 5, "the tick between requests")
                assert len(machine.ticks) == 2
            finally:
                first.close()
                second.close()

    asyncio.run(run())


def test_a_hostile_peer_is_dropped_with_a_warning_and_the_server_keeps_serving() -> None:
    async def run() -> None:
        async with serving(Echo()) as (url, _, warnings):
            ctx = zmq.asyncio.Context()
            dealer = ctx.socket(zmq.DEALER)  # no request envelope: not a REQ client
            dealer.connect(url)
            calls = client(url)
            try:
                await dealer.send_multipart([b"garbage"])
                await until(lambda: any("without a request envelope" in text for text in warnings), 5, "a warning")
                assert (await calls.exchange(message((b"ok",), OUT), 5, lambda msg: None)).reply.raw == (b"OK",)
            finally:
                calls.close()
                ctx.destroy(linger=0)

    asyncio.run(run())


def test_a_timed_out_request_takes_its_socket_and_the_next_one_gets_a_new_one() -> None:
    async def run() -> None:
        machine = Echo()
        async with serving(machine) as (url, _, _):
            calls = client(url)
            try:
                with pytest.raises(Timeout, match="no reply"):
                    await calls.exchange(message((b"wait 1",), OUT), 0.2, lambda msg: None)
                # the held call is answered to the socket that has gone, then the next is taken
                await until(lambda: bool(machine.ticks), 5, "the held call answered")
                assert (await calls.exchange(message((b"again",), OUT), 5, lambda msg: None)).reply.raw == (b"AGAIN",)
            finally:
                calls.close()

    asyncio.run(run())
