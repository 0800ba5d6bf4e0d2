"""The mqtt roles: the device (simulate) and its clients (listen, command, publish, probe), all
connecting to one broker through aiomqtt. Everything here uses only fieldctl's public contract."""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

import aiomqtt

from fieldctl.sdk import ENDPOINT as ENDPOINT_SETTING
from fieldctl.sdk import (
    OUT,
    SECONDS,
    TEXT,
    Backoff,
    BaseDriver,
    ClientSession,
    CommandOutcome,
    CommandRequest,
    ConnectFailure,
    Context,
    Emit,
    Message,
    Notify,
    ProbeReport,
    Profile,
    Setting,
    Simulation,
    Timeout,
    UsageError,
    link,
    paced,
    replayable,
    verdict,
    within,
)

from .codec import ENDPOINT, Topics, encode

#: paho-mqtt (2.2) and aiomqtt leave Nagle's algorithm on: a request would wait for the broker's ack of the last one.
NO_DELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)
REPLAYED = ("event", "heartbeat")
#: How long a subscription or publication may wait for the broker's acknowledgement.
CALL_S = 10.0
T = TypeVar("T")


def replayed(messages: list[Message], notify: Notify) -> list[Message]:
    return replayable(messages, lambda msg: msg.channel in REPLAYED, notify, "not events or heartbeats")


class Driver(BaseDriver):
    roles: ClassVar[frozenset[str]] = frozenset({"listen", "command", "publish", "simulate", "probe"})
    settings: ClassVar[dict[str, Setting]] = {
        **BaseDriver.settings,
        "endpoints.broker": ENDPOINT_SETTING,
        "mqtt.prefix": TEXT,
        "simulate.identifier": TEXT,
        "simulate.event_interval_s": SECONDS,
    }
    ready_state: ClassVar[str] = "connected"  # the broker's CONNACK (and a listener's SUBACK)
    #: presence links (`present`/`absent`) tell whether the device is there, apart from the broker.
    presence: ClassVar[bool] = True
    #: One broker connection a role: its socket and paho's wake-up socket pair.
    open_files: ClassVar[dict[str, int]] = {"listen": 3, "command": 3, "publish": 3, "probe": 3, "simulate": 3}

    def __init__(self, profile: Profile, notify: Notify) -> None:
        super().__init__(profile, notify)
        self.url = profile.endpoints[ENDPOINT]
        parts = urlsplit(self.url)
        if parts.scheme != "mqtt" or not parts.hostname:
            raise UsageError(f"endpoint {ENDPOINT} {self.url!r}: expected mqtt://HOST:PORT")
        self.host, self.port = parts.hostname, parts.port or 1883
        self.prefix = str(profile.setting("mqtt.prefix", "fieldctl/device"))
        self.topics = Topics(self.prefix, profile.channels)

    def device_settings(self, device: str, index: int) -> dict[str, Any]:
        """Simulated devices share the broker, each under its own prefix."""
        return {"mqtt.prefix": f"{self.topics.prefix}/{device}"}

    def decode(self, topic: str, payload: Any, direction: str = "in") -> Message:
        raw = payload if isinstance(payload, bytes) else str(payload if payload is not None else "").encode()
        return self.topics.decode(topic, raw, self.profile.name, self.profile.limits, direction)

    def link(self, state: str) -> Message:
        return link(self.profile.name, ENDPOINT, state, {"url": self.url})

    @asynccontextmanager
    async def connected(self, timeout: float, will: aiomqtt.Will | None = None) -> AsyncIterator[aiomqtt.Client]:
        """A broker connection within `timeout` (ConnectFailure otherwise); a broker lost while in
        use is a ConnectFailure too."""
        client = aiomqtt.Client(
            self.host, self.port, will=will, timeout=max(timeout, 1.0), keepalive=10, socket_options=NO_DELAY
        )
        try:
            await within(client.__aenter__(), timeout)
        except (aiomqtt.MqttError, TimeoutError) as exc:
            raise ConnectFailure(f"{self.url}: {exc or f'no answer within {timeout:g} s'}") from None
        try:
            yield client
        except aiomqtt.MqttError as exc:
            raise ConnectFailure(f"{self.url}: {exc}") from None
        finally:
            with suppress(aiomqtt.MqttError):
                await within(client.__aexit__(None, None, None), 2.0)

    async def call(self, awaitable: Awaitable[T]) -> T:
        """An aiomqtt call, in a task of its own (`within`): aiomqtt waits with asyncio.wait_for,
        which before Python 3.12 swallows a cancellation that comes as the wait ends, and a
        cancelled simulator would go on for ever. A broker that does not acknowledge is lost."""
        try:
            return await within(awaitable, CALL_S)
        except TimeoutError:
            raise ConnectFailure(f"{self.url}: no acknowledgement within {CALL_S:g} s") from None

    async def messages(self, client: aiomqtt.Client) -> AsyncIterator[Message]:
        async for message in client.messages:
            yield self.decode(message.topic.value, message.payload)

    def publication(self, kind: str, data: Any) -> Message:
        if self.profile.events and kind not in self.profile.events:
            raise UsageError(f"unknown event {kind!r} (events: {', '.join(self.profile.events)})")
        return Message(self.profile.name, ENDPOINT, OUT, "event", kind, data)

    async def stay_connected(
        self, emit: Emit, session: Callable[[aiomqtt.Client], Awaitable[None]], will: aiomqtt.Will | None = None
    ) -> None:
        """Runs `session` on a broker connection until cancelled. No broker at first is a
        ConnectFailure (exit 3); one lost later is announced and connected again after a backoff."""
        delays = None
        while True:
            up = False
            try:
                async with self.connected(5.0, will) as client:
                    up, delays = True, Backoff(cap_s=5.0).delays()
                    await session(client)
            except ConnectFailure as exc:
                if delays is None:
                    raise
                if up:
                    self.notify(f"{exc}; reconnecting")
            delay = next(delays)
            state = "disconnected" if up else "retrying"
            emit(link(self.profile.name, ENDPOINT, state, {"url": self.url, "in_s": round(delay, 3)}))
            await asyncio.sleep(delay)

    async def listen(self, context: Context, channels: set[str] | None = None) -> None:
        """`present`/`absent` from the device's presence topic; a heartbeat from a device not known
        present makes it present too (a broker may have lost the retained `online`)."""

        emit = context.emit

        async def session(client: aiomqtt.Client) -> None:
            await self.call(client.subscribe(self.topics.everything, qos=1))
            emit(self.link("connected"))  # once subscribed: from now on nothing published is missed
            present = False
            async for msg in self.messages(client):
                if msg.is_link:
                    present = msg.kind == "present"
                elif msg.channel == "heartbeat" and not (present or msg.error):
                    present = True
                    emit(link(self.profile.name, ENDPOINT, "present", {"heard": "heartbeat"}))
                if msg.error or msg.is_link or channels is None or msg.channel in channels:
                    emit(msg)

        await self.stay_connected(emit, session)

    def spec_code(self, name: str) -> str:
        for key, spec in self.profile.commands.items():
            if name in (key, str(spec.code)):
                return str(spec.code)
        raise UsageError(f"unknown command {name!r} (commands: {', '.join(self.profile.commands)})")

    def session(self, context: Context) -> ClientSession:
        return ClientSession(self, context, self.request)

    async def request(self, command: CommandRequest) -> CommandOutcome:
        """A request on PREFIX/command/NAME, its reply on PREFIX/reply/NAME with the same id, on a
        broker connection of its own."""
        name, data, timeout, emit = command.name, command.data, command.timeout, command.emit
        code, ident = self.spec_code(name), secrets.token_hex(8)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout

        def left() -> float:
            return max(0.0, deadline - loop.time())

        async with self.connected(timeout) as client:
            try:
                await within(client.subscribe(self.topics.topic("reply", code), qos=1), left())
                topic, body = self.topics.topic("command", code), encode("command", ident, data)
                sent = loop.time()
                await within(client.publish(topic, body, qos=1), left())
                request = self.decode(topic, body, OUT)
                emit(request)
                reply = await within(self.first(client, lambda msg: msg.channel == "reply" and msg.id == ident), left())
            except TimeoutError:
                raise Timeout(f"no reply to {name} within {timeout:g} s (is the device on {self.prefix}?)") from None
        rtt = loop.time() - sent
        emit(reply)
        answer = reply.payload if isinstance(reply.payload, dict) else {}
        ok = answer.get("ok") is True
        summary = f"{name}: {'ok' if ok else answer.get('error', 'failed')}"
        return CommandOutcome(ok, summary, [request, reply], rtt_s=rtt, result=answer.get("data"))

    async def first(self, client: aiomqtt.Client, wanted: Callable[[Message], bool]) -> Message:
        async for msg in self.messages(client):
            if wanted(msg):
                return msg
        raise ConnectFailure(f"{self.url}: the broker closed the connection")

    async def publish(self, context: Context, messages: list[Message], *, wait_s: float, realtime: bool) -> None:
        """As the device would: nothing tells whether anyone subscribes, so `wait_s` is only for the broker."""
        emit, kept = context.emit, replayed(messages, self.notify)
        async with self.connected(wait_s) as client:
            emit(self.link("connected"))
            async for msg in paced(kept, realtime):
                topic, body = self.topics.topic(msg.channel, str(msg.kind)), encode(msg.channel, msg.id, msg.payload)
                await self.call(client.publish(topic, body, qos=1))
                emit(self.decode(topic, body, OUT))

    def simulator(self, context: Context, *, scenario: list[Message] | None, timeline: bool) -> Simulation:
        from .simulator import Device

        return Device(self, context.emit, scenario, timeline)

    async def probe(self, context: Context, *, warn: float, crit: float) -> ProbeReport:
        """OK once the device is present (its retained presence) or heard (a heartbeat) within crit;
        a broker that answers with no device there is CRITICAL."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        absent: list[Message] = []

        def heard(msg: Message) -> bool:
            if msg.kind == "absent":
                absent.append(msg)
            return msg.kind == "present" or (msg.channel == "heartbeat" and not msg.error)

        async with self.connected(crit) as client:
            metrics = {"connect_seconds": round(loop.time() - start, 4)}
            problems, parts = [], []
            try:
                await within(client.subscribe([(self.topics.presence, 1), (self.topics.topic("heartbeat"), 0)]), crit)
                msg = await within(self.first(client, heard), max(0.0, crit - (loop.time() - start)))
                metrics["device_seconds"] = round(loop.time() - start, 4)
                who = (
                    msg.payload.get("identifier")
                    if msg.channel == "heartbeat" and isinstance(msg.payload, dict)
                    else None
                )
                parts.append(f"device {who} heard" if who else "device present")
            except TimeoutError:
                missing = "is online" if absent else "was heard"
                problems.append(f"the broker answers but no device {missing} on {self.prefix} within {crit:g} s")
        return verdict(metrics, problems, parts, warn, crit)
