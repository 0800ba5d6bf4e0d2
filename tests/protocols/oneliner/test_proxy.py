"""The oneliner proxy between fieldctl's own two sides, run at the driver level: `simulate oneliner`
upstream, listen and command sessions (and a raw DEALER) through the proxy. Streams and calls
arrive byte for byte; a client's exact-topic subscription reaches the server, which then sends
only that stream; calls and replies are shown named after the call, with their round trip."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

import pytest
import zmq
import zmq.asyncio

from fieldctl.profiles.loader import load_profile
from fieldctl.protocols.core.errors import ProtocolFailure
from fieldctl.protocols.core.message import IN, OUT, Message
from fieldctl.protocols.oneliner import codec
from fieldctl.protocols.oneliner.driver import Driver
from fieldctl.protocols.sdk.faults import Faults, parse_rule
from tests.helpers.oneliner import PROFILE, Ports, start
from tests.helpers.proxying import proxying
from tests.helpers.waiting import until

REPLY_WITHIN_S = 10


@pytest.fixture
def upstream() -> Iterator[Ports]:
    ports = Ports()
    simulator = start(ports)
    yield ports
    simulator.stop()


def driver(local: Ports) -> Driver:
    profile = load_profile(PROFILE, endpoints=[f"calls={local.calls}", f"streams={local.streams}"])
    return Driver(profile, lambda text: None)


@contextlib.asynccontextmanager
async def through_proxy(upstream: Ports, faults: Faults | None = None) -> AsyncIterator[tuple[Ports, list[Message]]]:
    """The proxy of `upstream` on ports of its own: those ports, and what it reports."""
    local, feed = Ports(), []
    async with proxying(driver(local), {"calls": upstream.calls, "streams": upstream.streams}, feed, faults):
        yield local, feed


def samples(messages: list[Message], direction: str = IN) -> list[Message]:
    return [m for m in messages if m.endpoint == codec.STREAMS and m.channel != "link" and m.direction == direction]


def test_a_streams_subscription_reaches_the_server_and_its_samples_come_back_byte_for_byte(upstream: Ports) -> None:
    async def run() -> None:
        async with through_proxy(upstream) as (local, feed):
            client = driver(local)
            heard: list[Message] = []
            context = client.context(heard.append, {"streams": ["frame"]})
            listening = asyncio.get_running_loop().create_task(client.listen(context, None))
            await until(lambda: len(samples(heard)) >= 3, 10, "samples through the proxy")
            (subscription,) = [m for m in feed if m.channel == "subscription"]
            assert (subscription.direction, subscription.kind, subscription.raw) == (
                OUT,
                "subscribe",
                (b"\x01frame\x00",),
            )
            relayed = samples(feed)
            # the server filtered on the subscription it got: frame_2 never came up to the proxy
            assert {m.channel for m in relayed} == {"frame"} and not any(m.error for m in relayed)
            assert {m.raw for m in samples(heard)} <= {m.raw for m in relayed}
            assert [m.payload for m in samples(heard)] == [m.payload for m in relayed][: len(samples(heard))]
            listening.cancel()
            await asyncio.gather(listening, return_exceptions=True)
            await until(lambda: [m for m in feed if m.kind == "unsubscribe"], 10, "the unsubscription shown")

    asyncio.run(run())


def test_calls_through_the_proxy_are_answered_byte_for_byte_and_named_after_their_call(upstream: Ports) -> None:
    async def run() -> None:
        async with through_proxy(upstream) as (local, feed):
            client = driver(local)
            sent: list[Message] = []
            async with client.session(client.context(sent.append)) as session:
                version = await session.command("version", None, timeout=REPLY_WITHIN_S, wait=False)
                added = await session.command(
                    "call", None, timeout=REPLY_WITHIN_S, wait=False, options={"params": ["counter.add"], "args": [2]}
                )
            assert version.ok and version.result == "0.1.1.dev4" and added.ok, (version.summary, added.summary)
            await until(lambda: len([m for m in feed if m.channel == codec.REPLY]) == 2, 5, "both replies shown")
            calls = [m for m in feed if m.channel == codec.CALL]
            replies = [m for m in feed if m.channel == codec.REPLY]
            assert [m.raw for m in calls] == [m.raw for m in sent if m.channel == codec.CALL]
            assert [m.raw for m in replies] == [m.raw for m in sent if m.channel == codec.REPLY]
            assert (
                [m.kind for m in calls] == [m.kind for m in replies] == ["__router_server.get_version", "counter.add"]
            )
            assert all(m.direction == OUT for m in calls) and all(m.direction == IN for m in replies)
            assert all(m.rtt_s is not None and not m.error for m in replies)

    asyncio.run(run())


def test_a_dealer_client_is_answered_as_directly(upstream: Ports) -> None:
    async def run() -> None:
        body = codec.encode_request(codec.Request("counter", "echo", ["through"], {}))
        async with through_proxy(upstream) as (local, feed):
            dealer = zmq.asyncio.Context.instance().socket(zmq.DEALER)
            dealer.setsockopt(zmq.LINGER, 0)
            dealer.connect(local.calls)
            await dealer.send_multipart([b"", body])
            empty, reply = await asyncio.wait_for(dealer.recv_multipart(), REPLY_WITHIN_S)
            dealer.close()
            assert empty == b""
            packet = codec.decode_packet(reply)
            assert packet.success and packet.topic == ""
            await until(lambda: [m for m in feed if m.channel == codec.REPLY], 5, "the reply shown")
            (shown,) = [m for m in feed if m.channel == codec.REPLY]
            assert shown.raw == (reply,) and shown.kind == "counter.echo" and shown.payload["success"]

    asyncio.run(run())


def test_the_proxy_keeps_serving_while_its_upstream_is_away() -> None:
    async def run() -> None:
        async with through_proxy(Ports()) as (local, feed):  # nothing listens there
            await until(lambda: [m for m in feed if m.channel == "link" and m.kind == "retrying"], 10, "retrying")
            client = driver(local)
            async with client.session(client.context(lambda msg: None)) as session:
                with pytest.raises(Exception, match="no reply"):
                    await session.command("version", None, timeout=0.5, wait=False)
            assert [m.kind for m in feed if m.channel == codec.CALL] == ["__router_server.get_version"]

    asyncio.run(run())


def test_a_corrupted_reply_reaches_the_client_malformed_and_is_shown_marked(upstream: Ports) -> None:
    async def run() -> None:
        faults = Faults([parse_rule("corrupt channel=reply")])
        async with through_proxy(upstream, faults) as (local, feed):
            client = driver(local)
            async with client.session(client.context(lambda msg: None)) as session:
                with pytest.raises(ProtocolFailure, match="undecodable reply"):
                    await session.command("version", None, timeout=REPLY_WITHIN_S, wait=False)
            (reply,) = [m for m in feed if m.channel == codec.REPLY]
            assert reply.fault == "corrupted" and not reply.error and reply.kind == "__router_server.get_version"

    asyncio.run(run())
