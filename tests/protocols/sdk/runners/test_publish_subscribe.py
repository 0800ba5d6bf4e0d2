"""The ZeroMQ publish/subscribe runner on real loopback sockets in-process: a publisher waits for
its subscriber and reports what it sends; a subscriber decodes, filters duplicates and links."""

from __future__ import annotations

import asyncio
import random

import pytest

from fieldctl.protocols.core.errors import Timeout
from fieldctl.protocols.core.message import IN, OUT, Message
from fieldctl.protocols.sdk.runners import publish_subscribe
from tests.helpers.ports import free_port
from tests.helpers.waiting import until


def sample(body: bytes) -> Message:
    return Message(profile="toy", endpoint="events", direction=OUT, channel="tick", kind="x", raw=(b"tick", body))


def decode(frames: list[bytes]) -> Message:
    return Message(
        profile="toy", endpoint="events", direction=IN, channel=frames[0].decode(), kind="x", raw=tuple(frames)
    )


def test_published_messages_reach_a_subscriber_decoded_and_duplicates_are_counted_apart() -> None:
    async def run() -> None:
        sent: list[Message] = []
        publisher = publish_subscribe.Publisher("toy", "events", f"tcp://127.0.0.1:{free_port()}", sent.append)
        states: list[str] = []
        subscriber = publish_subscribe.Subscriber(
            "events", publisher.socket.url, [b"tick"], decode, on_link=lambda name, state, detail: states.append(state)
        )
        shown: list[Message] = []
        twice: list[Message] = []
        listening = asyncio.get_running_loop().create_task(
            publish_subscribe.listen(subscriber, shown.append, lambda msg: msg.raw[1] == b"again", twice.append)
        )
        try:
            await publisher.wait_subscriber(5)
            publisher.send([sample(b"one"), sample(b"again")])
            await until(lambda: len(shown) + len(twice) == 2, 5, "both messages")
            assert [msg.raw for msg in shown] == [(b"tick", b"one")] and len(twice) == 1
            assert [msg.raw for msg in sent if msg.channel == "tick"] == [(b"tick", b"one"), (b"tick", b"again")]
            assert "ready" in states
        finally:
            listening.cancel()
            await asyncio.gather(listening, return_exceptions=True)
            publisher.close(0)

    asyncio.run(run())


def test_periodic_publications_and_the_first_one_a_subscriber_accepts() -> None:
    async def run() -> None:
        publisher = publish_subscribe.Publisher("toy", "events", f"tcp://127.0.0.1:{free_port()}", lambda msg: None)
        subscriber = publish_subscribe.Subscriber("events", publisher.socket.url, [], decode)
        count = 0

        def beat() -> list[Message]:
            nonlocal count
            count += 1
            return [sample(str(count).encode())]

        beating = asyncio.get_running_loop().create_task(publisher.every(0.05, beat, random.Random(1)))
        try:
            first = await asyncio.wait_for(subscriber.first(lambda msg: int(msg.raw[1]) >= 3), 5)
            assert int(first.raw[1]) >= 3
        finally:
            beating.cancel()
            await asyncio.gather(beating, return_exceptions=True)
            subscriber.close()
            publisher.close(0)

    asyncio.run(run())


def test_publish_all_without_a_subscriber_times_out_and_closes() -> None:
    async def run() -> None:
        publisher = publish_subscribe.Publisher("toy", "events", f"tcp://127.0.0.1:{free_port()}", lambda msg: None)
        with pytest.raises(Timeout, match="no subscriber"):
            await publisher.publish_all([sample(b"x")], lambda msg: [msg], 0.2, realtime=False)
        assert publisher.closed

    asyncio.run(run())
