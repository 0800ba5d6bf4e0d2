"""The autotrainer proxy between the REAL auto-trainer-api device (tests/peers/autotrainer_device.py)
and fieldctl's own client roles (listen, a command session) and raw pyzmq clients, run at the
driver level: every frame arrives byte for byte, and the proxy's feed shows heartbeats and events
`in`, subscriptions and requests `out`, replies `in` with their round trip."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import zmq
import zmq.asyncio

from fieldctl.profiles.loader import load_profile
from fieldctl.protocols.autotrainer.driver import Driver
from fieldctl.protocols.core.message import IN, OUT, Message
from fieldctl.protocols.sdk.faults import Faults, parse_rule
from tests.helpers.autotrainer import Device as RawDevice
from tests.helpers.autotrainer import Endpoints, start_device, stop_device, topic
from tests.helpers.processes import FIELDCTL, Proc
from tests.helpers.proxying import proxying
from tests.helpers.waiting import until

REPLY_WITHIN_S = 10


@pytest.fixture(scope="module")
def device() -> Iterator[tuple[Proc, Endpoints]]:
    """The real device on ports of its own, shared by the tests here, and those ports."""
    ports = Endpoints()
    proc = start_device(ports)
    yield proc, ports
    stop_device(proc)


def driver(local: Endpoints) -> Driver:
    profile = load_profile("autotrainer", endpoints=[f"events={local.events}", f"commands={local.commands}"])
    return Driver(profile, lambda text: None)


@contextlib.asynccontextmanager
async def through_proxy(
    upstream: Endpoints, faults: Faults | None = None
) -> AsyncIterator[tuple[Endpoints, list[Message]]]:
    """The proxy of `upstream` on ports of its own: those ports, and what it reports."""
    local, feed = Endpoints(), []
    relayed = {"events": upstream.events, "commands": upstream.commands}
    async with proxying(driver(local), relayed, feed, faults):
        yield local, feed


def send_event(device: Proc, body: dict[str, Any]) -> None:
    """One event through the real service's send_event_dict, once the device says it went."""
    device.write(json.dumps({"op": "event", "event": body}) + "\n")
    device.wait_json(lambda m: m.get("sent") is True, timeout=10)


def shown(feed: list[Message], channel: str, direction: str) -> list[Message]:
    return [m for m in feed if m.channel == channel and m.direction == direction]


async def request(url: str, body: bytes) -> bytes:
    """One request on a REQ socket of its own; its one-part reply."""
    sock = zmq.asyncio.Context.instance().socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(url)
    try:
        await sock.send(body)
        (reply,) = await asyncio.wait_for(sock.recv_multipart(), REPLY_WITHIN_S)
        return reply
    finally:
        sock.close()


def test_listen_and_a_command_session_through_the_proxy_see_the_device_byte_for_byte(
    device: tuple[Proc, Endpoints],
) -> None:
    peer, device_endpoints = device

    async def run() -> None:
        async with through_proxy(device_endpoints) as (local, feed):
            client = driver(local)
            heard: list[Message] = []
            listening = asyncio.get_running_loop().create_task(client.listen(client.context(heard.append), None))
            await until(lambda: [m for m in heard if m.channel == "heartbeat"], 10, "a heartbeat through the proxy")
            beat = next(m for m in heard if m.channel == "heartbeat")
            assert not beat.error and beat.payload["identifier"] == "interop-device-7"
            assert beat.raw in [m.raw for m in shown(feed, "heartbeat", IN)]  # the same parts, both sides
            subscriptions = shown(feed, "subscription", OUT)
            assert [(m.kind, m.payload) for m in subscriptions] == [("subscribe", {"topic": ""})]
            await asyncio.to_thread(send_event, peer, {"kind": 1101, "when": 1.5, "index": 2**60, "context": None})
            await until(lambda: [m for m in heard if m.channel == "event"], 10, "the event through the proxy")
            (event,) = [m for m in heard if m.channel == "event"]
            assert event.kind == "tunnelEnter" and event.payload["index"] == 2**60
            assert [m.raw for m in shown(feed, "event", IN)] == [event.raw]

            sent: list[Message] = []
            async with client.session(client.context(sent.append)) as session:
                outcome = await session.command("get-configuration", None, timeout=REPLY_WITHIN_S, wait=False)
            assert outcome.ok, outcome.summary
            request_sent, reply_got = sent
            await until(lambda: shown(feed, "reply", IN), 5, "the reply shown")
            (request_shown,) = shown(feed, "command", OUT)
            (reply_shown,) = shown(feed, "reply", IN)
            assert request_shown.raw == request_sent.raw and request_shown.kind == "get-configuration"
            assert reply_shown.raw == reply_got.raw and reply_shown.id == request_sent.id
            assert reply_shown.rtt_s is not None and 0 < reply_shown.rtt_s < outcome.rtt_s + 0.5
            assert reply_shown.payload["data"]["deviceId"] == "peer-0001"
            listening.cancel()
            await asyncio.gather(listening, return_exceptions=True)

    asyncio.run(run())


def test_raw_clients_at_once_get_the_replies_the_device_gives_directly(
    device: tuple[Proc, Endpoints],
) -> None:
    _, device_endpoints = device

    async def run() -> None:
        requests = [json.dumps({"command": 300, "nonce": nonce}).encode() for nonce in range(11, 16)]
        direct = [await request(device_endpoints.commands, body) for body in requests]
        async with through_proxy(device_endpoints) as (local, feed):
            relayed = await asyncio.gather(*(request(local.commands, body) for body in requests))
            assert relayed == direct
            await until(lambda: len(shown(feed, "reply", IN)) == 5, 5, "every reply shown")
            by_nonce = {m.id: m for m in shown(feed, "reply", IN)}
            assert sorted(by_nonce) == list(range(11, 16))
            assert all(m.rtt_s is not None and not m.error for m in by_nonce.values())
            assert {m.raw for m in shown(feed, "command", OUT)} == {(body,) for body in requests}

    asyncio.run(run())


def test_an_unparseable_request_goes_through_unchanged_and_its_answer_is_matched_to_it(
    device: tuple[Proc, Endpoints],
) -> None:
    _, device_endpoints = device

    async def run() -> None:
        async with through_proxy(device_endpoints) as (local, feed):
            reply = await request(local.commands, b"not json \xff")
            assert json.loads(reply)["nonce"] == 0  # the device could not read it: the 107-byte answer
            await until(lambda: shown(feed, "reply", IN), 5, "the reply shown")
            (shown_request,) = shown(feed, "command", OUT)
            assert shown_request.raw == (b"not json \xff",) and shown_request.error
            (shown_reply,) = shown(feed, "reply", IN)
            assert shown_reply.raw == (reply,) and shown_reply.rtt_s is not None

    asyncio.run(run())


def test_a_publication_that_does_not_decode_is_relayed_unchanged_and_shown_malformed() -> None:
    async def run() -> None:
        publisher, local, feed = RawDevice(), Endpoints(), []
        try:
            async with proxying(driver(local), {"events": publisher.url}, feed):
                subscriber = zmq.asyncio.Context.instance().socket(zmq.SUB)
                subscriber.setsockopt(zmq.LINGER, 0)
                subscriber.setsockopt(zmq.SUBSCRIBE, b"")
                subscriber.connect(local.events)
                await asyncio.to_thread(publisher.wait_subscriber)
                garbage = [[topic(4001), b"{not json"], [b"\x01\x02", b"{}", b"three parts"]]
                for message in garbage:
                    publisher.sock.send_multipart(message)
                arrived = [await asyncio.wait_for(subscriber.recv_multipart(), REPLY_WITHIN_S) for _ in garbage]
                subscriber.close()
                assert arrived == garbage
                await until(lambda: len([m for m in feed if m.error]) == 2, 5, "both shown")
                malformed = [m for m in feed if m.error]
                assert [m.raw for m in malformed] == [tuple(message) for message in garbage]
                assert all(m.direction == IN and m.kind == "malformed" for m in malformed)
        finally:
            publisher.close()

    asyncio.run(run())


def test_fieldctl_proxy_on_the_command_line_relays_and_shows_both_directions(device: tuple[Proc, Endpoints]) -> None:
    _, upstream = device
    local = Endpoints()
    proxy = Proc(
        [
            *FIELDCTL,
            "proxy",
            "autotrainer",
            f"--upstream-endpoint=events={upstream.events}",
            f"--upstream-endpoint=commands={upstream.commands}",
            *local.args,
            "--json",
            "--count",
            "5",  # the request, its reply, the subscription, a heartbeat, then whatever comes: once the
            # first heartbeat has been taken, the proxy has relayed it whole
        ]
    )
    for name in ("events", "commands"):
        proxy.wait_json(lambda m, name=name: m["channel"] == "link" and m["kind"] == "bound" and m["endpoint"] == name)
    body = json.dumps({"command": 300, "nonce": 41}).encode()
    reply = asyncio.run(request(local.commands, body))
    assert reply == asyncio.run(request(upstream.commands, body))
    subscriber = zmq.Context.instance().socket(zmq.SUB)
    subscriber.setsockopt(zmq.LINGER, 0)
    subscriber.setsockopt(zmq.SUBSCRIBE, topic(1001))
    subscriber.connect(local.events)
    try:
        assert subscriber.poll(REPLY_WITHIN_S * 1000), "no heartbeat through the proxy"
        beat = subscriber.recv_multipart()
    finally:
        subscriber.close()
    assert proxy.wait(REPLY_WITHIN_S) == 0
    shown = [json.loads(line) for line in proxy.output() if '"link"' not in line]
    assert [(m["direction"], m["channel"], m["kind"]) for m in shown[:4]] == [
        (OUT, "command", "get-configuration"),
        (IN, "reply", "get-configuration"),
        (OUT, "subscription", "subscribe"),
        (IN, "heartbeat", "heartbeat"),
    ]
    sent, answered, subscribed, heard, _ = shown
    assert base64.b64decode(sent["raw"][0]) == body
    assert base64.b64decode(answered["raw"][0]) == reply and answered["rtt_s"] > 0
    assert subscribed["payload"] == {"topic": "heartbeat"}
    assert [base64.b64decode(part) for part in heard["raw"]] == beat


def test_fault_rules_drop_the_heartbeats_and_a_cut_leaves_the_clients_to_reconnect(
    device: tuple[Proc, Endpoints],
) -> None:
    _, upstream = device
    faults = Faults([parse_rule("drop channel=heartbeat"), parse_rule("disconnect after=1s")])

    async def run() -> None:
        async with through_proxy(upstream, faults) as (local, feed):
            client = driver(local)
            heard: list[Message] = []
            listening = asyncio.get_running_loop().create_task(client.listen(client.context(heard.append), None))
            await until(lambda: len(shown(feed, "heartbeat", IN)) >= 2, 10, "heartbeats reaching the proxy")
            assert {m.fault for m in shown(feed, "heartbeat", IN)} == {"dropped"}
            await until(lambda: [m for m in feed if m.fault == "disconnected"], 10, "the cut")
            bound = lambda: [m.endpoint for m in feed if m.channel == "link" and m.kind == "bound"]  # noqa: E731
            await until(lambda: len(bound()) == 4, 10, "both endpoints bound again")
            async with client.session(client.context(lambda msg: None)) as session:
                outcome = await session.command("get-status", None, timeout=REPLY_WITHIN_S, wait=False)
            assert outcome.ok, outcome.summary
            assert not [m for m in heard if m.channel == "heartbeat"]  # every one dropped on the way
            listening.cancel()
            await asyncio.gather(listening, return_exceptions=True)

    asyncio.run(run())
