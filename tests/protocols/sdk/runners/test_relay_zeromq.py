"""The ZeroMQ relays of `fieldctl proxy` between raw pyzmq peers on loopback, in-process: every
part goes through byte for byte both ways, several clients at once each get their own replies,
subscriptions reach the real publisher, a hostile client leaves the others served, an absent
upstream is waited for, and fault rules (a Faults with fixed verdicts) apply."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence

import pytest
import zmq
import zmq.asyncio

from fieldctl.protocols.core.limits import Limits
from fieldctl.protocols.core.message import IN, OUT, Message
from fieldctl.protocols.sdk.contract import Context
from fieldctl.protocols.sdk.faults import Faults, Verdict
from fieldctl.protocols.sdk.machine import Frame
from fieldctl.protocols.sdk.runners import relay_zeromq
from fieldctl.protocols.sdk.runners.request_reply import parts
from tests.helpers.ports import free_port
from tests.helpers.waiting import until

PROFILE = "toy"
MAX_FRAME_BYTES = 64 * 1024
REPLY_WITHIN_S = 10


class Feed:
    """What a relay reports: its messages and its warnings."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.warnings: list[str] = []
        self.context = Context(self.messages.append, self.warnings.append, {}, Limits(max_frame_bytes=MAX_FRAME_BYTES))

    def frames(self, direction: str) -> list[tuple[bytes, ...]]:
        return [msg.raw for msg in self.messages if msg.channel == "frame" and msg.direction == direction]

    def links(self, state: str) -> list[Message]:
        return [msg for msg in self.messages if msg.channel == "link" and msg.kind == state]


def tap(direction: str) -> relay_zeromq.Tap:
    def decode(frame: Frame) -> list[Message]:
        return [Message(PROFILE, "calls", direction, "frame", "x", raw=parts(frame))]

    return decode


class Frames:
    """A client's taps: each request and reply as one Message with its parts."""

    request, reply = staticmethod(tap(OUT)), staticmethod(tap(IN))


def url() -> str:
    return f"tcp://127.0.0.1:{free_port()}"


OPENED: list[zmq.asyncio.Socket] = []


@pytest.fixture(autouse=True)
def _closed_sockets() -> Iterator[None]:
    """Every peer socket a test opens is closed after it."""
    yield
    while OPENED:
        OPENED.pop().close()


def socket(kind: int, *, bind: str = "", connect: str = "") -> zmq.asyncio.Socket:
    sock = zmq.asyncio.Context.instance().socket(kind)
    OPENED.append(sock)
    sock.setsockopt(zmq.LINGER, 0)
    if bind:
        sock.bind(bind)
    if connect:
        sock.connect(connect)
    return sock


async def received(sock: zmq.asyncio.Socket) -> list[bytes]:
    return await asyncio.wait_for(sock.recv_multipart(), REPLY_WITHIN_S)


@contextlib.asynccontextmanager
async def proxying(
    relays: Sequence[relay_zeromq.Publications | relay_zeromq.Requests], feed: Feed, faults: Faults
) -> AsyncIterator[asyncio.Task[None]]:
    """The relays served in a task, once every local endpoint is bound."""
    task = asyncio.get_running_loop().create_task(relay_zeromq.serve(relays, feed.context, faults, PROFILE))
    await until(lambda: len(feed.links("bound")) >= len(relays) or task.done(), 10, "the local endpoints bound")
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def requests(
    feed: Feed, local: str, upstream: str, faults: Faults | None = None, **options: int
) -> relay_zeromq.Requests:
    route = relay_zeromq.Relayed(PROFILE, "calls", local, upstream)
    return relay_zeromq.Requests(route, feed.context, faults or Faults(), exchanges=Frames, **options)


@contextlib.asynccontextmanager
async def replier(at: str) -> AsyncIterator[None]:
    """A REP upstream bound at `at`, answering each request with its last part reversed."""
    server = socket(zmq.REP, bind=at)
    serving = asyncio.get_running_loop().create_task(serve_replies(server))
    try:
        yield
    finally:
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)
        server.close()


async def serve_replies(server: zmq.asyncio.Socket) -> None:
    while True:
        try:
            message = await server.recv_multipart()
        except zmq.Again:  # pyzmq's asyncio REP: a message without an envelope, which REP drops
            continue
        body = message[-1]
        await server.send_multipart([*message[:-1], body[::-1]])


def test_req_clients_at_once_each_get_their_reply_byte_for_byte_and_both_directions_are_shown() -> None:
    async def run() -> None:
        feed, local, upstream = Feed(), url(), url()
        async with replier(upstream), proxying([requests(feed, local, upstream)], feed, Faults()):
            clients = [socket(zmq.REQ, connect=local) for _ in range(5)]

            async def ask(index: int, client: zmq.asyncio.Socket) -> None:
                for turn in range(3):
                    body = f"request {index}.{turn} \x00\xff".encode("latin-1")
                    await client.send(body)
                    assert await received(client) == [body[::-1]]

            await asyncio.gather(*(ask(index, client) for index, client in enumerate(clients)))
            sent = {f"request {i}.{t} \x00\xff".encode("latin-1") for i in range(5) for t in range(3)}
            assert {frame for (frame,) in feed.frames(OUT)} == sent  # the tap sees the content, no envelope
            await until(lambda: len(feed.frames(IN)) == 15, 5, "every reply shown")
            assert {frame for (frame,) in feed.frames(IN)} == {body[::-1] for body in sent}

    asyncio.run(run())


def test_a_dealer_client_and_a_router_upstream_see_what_they_would_see_directly() -> None:
    async def run() -> None:
        feed, local, upstream = Feed(), url(), url()
        server = socket(zmq.ROUTER, bind=upstream)
        async with proxying([requests(feed, local, upstream)], feed, Faults()):
            client = socket(zmq.DEALER, connect=local)
            for message in ([b"", b"one"], [b"", b"two", b"parts"], [b"no delimiter"]):
                await client.send_multipart(message)
                ident, *arrived = await received(server)
                assert arrived == message  # after the upstream DEALER's own routing id, unchanged
                await server.send_multipart([ident, *message[:-1], b"reply " + message[-1]])
                assert await received(client) == [*message[:-1], b"reply " + message[-1]]
            assert feed.frames(OUT) == [(b"one",), (b"two", b"parts"), (b"no delimiter",)]

    asyncio.run(run())


def test_a_hostile_client_does_not_stop_the_others() -> None:
    async def run() -> None:
        feed, local, upstream = Feed(), url(), url()
        async with replier(upstream), proxying([requests(feed, local, upstream)], feed, Faults()):
            hostile, oversized = socket(zmq.DEALER, connect=local), socket(zmq.DEALER, connect=local)
            good = socket(zmq.REQ, connect=local)
            await hostile.send_multipart([b"\xff" * 10, b"garbage"])  # no envelope: the upstream REP drops it
            await oversized.send_multipart([b"", b"x" * (MAX_FRAME_BYTES + 1)])  # its connection is dropped
            for turn in range(3):
                await good.send(b"still served %d" % turn)
                assert await received(good) == [(b"still served %d" % turn)[::-1]]
            await until(lambda: (b"\xff" * 10, b"garbage") in feed.frames(OUT), 5, "the garbage shown")
            assert all(len(b"".join(frame)) <= MAX_FRAME_BYTES for frame in feed.frames(OUT))

    asyncio.run(run())


def test_clients_past_the_limit_close_the_upstream_connection_idle_longest() -> None:
    async def run() -> None:
        feed, local, upstream = Feed(), url(), url()
        relay = requests(feed, local, upstream, max_clients=2)
        async with replier(upstream), proxying([relay], feed, Faults()):
            clients = [socket(zmq.REQ, connect=local) for _ in range(3)]
            for client in (*clients, clients[0]):
                await client.send(b"ping")
                assert await received(client) == [b"gnip"]
            assert len(relay.clients) == 2
            assert any("2 clients at once" in text for text in feed.warnings)

    asyncio.run(run())


def test_requests_wait_for_an_absent_upstream_and_are_answered_once_it_is_there() -> None:
    async def run() -> None:
        feed, local, upstream = Feed(), url(), url()
        async with proxying([requests(feed, local, upstream)], feed, Faults()):
            client = socket(zmq.REQ, connect=local)
            await client.send(b"early")
            await until(lambda: feed.links("retrying"), 10, "the upstream retried")
            assert any("does not answer" in text for text in feed.warnings)
            async with replier(upstream):
                assert await received(client) == [b"ylrae"]
                await until(lambda: feed.links("connected"), 10, "the upstream connected")
            await until(lambda: feed.links("disconnected"), 10, "the upstream gone")  # away, then back
            await client.send(b"later")
            async with replier(upstream):
                assert await received(client) == [b"retal"]

    asyncio.run(run())


def publications(feed: Feed, local: str, upstream: str, faults: Faults | None = None) -> relay_zeromq.Publications:
    route = relay_zeromq.Relayed(PROFILE, "events", local, upstream)
    subscriptions = relay_zeromq.subscription_tap(PROFILE, "events")
    return relay_zeromq.Publications(route, feed.context, faults or Faults(), tap_in=tap(IN), tap_out=subscriptions)


def test_publications_pass_byte_for_byte_and_subscriptions_reach_the_publisher() -> None:
    async def run() -> None:
        feed, local, upstream = Feed(), url(), url()
        publisher = socket(zmq.XPUB, bind=upstream)
        async with proxying([publications(feed, local, upstream)], feed, Faults()):
            subscriber = socket(zmq.SUB, connect=local)
            subscriber.setsockopt(zmq.SUBSCRIBE, b"tick\x00")
            assert await received(publisher) == [b"\x01tick\x00"]  # as the subscriber sent it
            for message in ([b"tock\x00", b"filtered out"], [b"tick\x00", b"\x00\xff two parts"], [b"tick\x00"]):
                await publisher.send_multipart(message)
            assert await received(subscriber) == [b"tick\x00", b"\x00\xff two parts"]
            assert await received(subscriber) == [b"tick\x00"]
            await until(lambda: len(feed.frames(IN)) == 2, 5, "both publications shown")
            subscriptions = [msg for msg in feed.messages if msg.channel == relay_zeromq.SUBSCRIPTION]
            assert [(msg.direction, msg.kind, msg.payload, msg.raw) for msg in subscriptions] == [
                (OUT, "subscribe", {"topic": "tick\x00"}, (b"\x01tick\x00",))
            ]
            subscriber.close()
            assert await received(publisher) == [b"\x00tick\x00"]  # the last subscriber gone

    asyncio.run(run())


def test_every_subscribers_subscription_is_shown_and_the_publisher_keeps_serving_the_others() -> None:
    async def run() -> None:
        feed, local, upstream = Feed(), url(), url()
        publisher = socket(zmq.XPUB, bind=upstream)
        async with proxying([publications(feed, local, upstream)], feed, Faults()):
            first, second = socket(zmq.SUB, connect=local), socket(zmq.SUB, connect=local)
            for sub in (first, second):
                sub.setsockopt(zmq.SUBSCRIBE, b"")
            await until(lambda: len([m for m in feed.messages if m.kind == "subscribe"]) == 2, 10, "both subscriptions")
            first.close()
            await publisher.send_multipart([b"a", b"b"])
            assert await received(second) == [b"a", b"b"]

    asyncio.run(run())


class Fixed(Faults):
    """Every frame judged the same way; one cut of every connection, `cut_after` s in."""

    def __init__(self, verdict: Verdict | None, cut_after: float | None = None) -> None:
        super().__init__()
        self.verdict, self.cut_after = verdict, cut_after

    @property
    def active(self) -> bool:
        return True

    def judge(self, direction: str, messages: Sequence[Message], now: float) -> Verdict | None:
        return self.verdict

    def next_disconnect(self, now: float) -> float | None:
        if self.cut_after is None:
            return None
        due, self.cut_after = self.started_at + self.cut_after, None
        return due


def test_a_dropped_request_is_shown_with_its_fault_and_never_reaches_the_upstream() -> None:
    async def run() -> None:
        feed, local, upstream = Feed(), url(), url()
        server = socket(zmq.ROUTER, bind=upstream)
        faults = Fixed(Verdict("dropped", drop=True))
        async with proxying([requests(feed, local, upstream, faults)], feed, faults):
            client = socket(zmq.REQ, connect=local)
            await client.send(b"lost")
            await until(lambda: feed.frames(OUT), 10, "the request shown")
            assert [msg.fault for msg in feed.messages if msg.channel == "frame"] == ["dropped"]
            assert not await server.poll(300)

    asyncio.run(run())


def test_a_delayed_publication_arrives_late_and_a_cut_drops_every_connection_which_comes_back() -> None:
    async def run() -> None:
        feed, local, upstream = Feed(), url(), url()
        publisher = socket(zmq.XPUB, bind=upstream)
        faults = Fixed(Verdict("delayed 200 ms", delay_s=0.2), cut_after=1.0)
        async with proxying([publications(feed, local, upstream, faults)], feed, faults):
            subscriber = socket(zmq.SUB, connect=local)
            subscriber.setsockopt(zmq.SUBSCRIBE, b"")
            assert (await received(publisher))[0][:1] == b"\x01"
            loop = asyncio.get_running_loop()
            sent_at = loop.time()
            await publisher.send_multipart([b"late"])
            assert await received(subscriber) == [b"late"]
            assert loop.time() - sent_at >= 0.15
            assert [msg.fault for msg in feed.messages if msg.channel == "frame"] == ["delayed 200 ms"]
            await until(lambda: len(feed.links("bound")) == 2, 10, "bound again after the cut")
            cuts = [msg for msg in feed.links("disconnected") if msg.fault == "disconnected"]
            assert len(cuts) == 1
            # the old XSUB's subscription went with it; the subscriber reconnects and subscribes again by
            # itself, and the new XSUB passes that up
            assert await received(publisher) == [b"\x00"]
            assert await received(publisher) == [b"\x01"]
            await publisher.send_multipart([b"after the cut"])
            assert await received(subscriber) == [b"after the cut"]

    asyncio.run(run())
