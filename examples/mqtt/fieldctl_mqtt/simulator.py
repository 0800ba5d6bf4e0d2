"""The device side: one broker connection with a last will, heartbeats and events under the
prefix, a reply to every command, and presence (retained `online`, cleared on a clean exit so
nothing is left at the broker; the broker's will says `offline` when the device dies)."""

from __future__ import annotations

import time
from contextlib import suppress
from typing import Any

import aiomqtt

from fieldctl.sdk import OUT, Emit, Message, Simulation, link, paced, ticks, together, within

from .codec import ENDPOINT, encode
from .driver import Driver, replayed
from .simulator_state import DeviceState


class Device(Simulation):
    def __init__(self, driver: Driver, emit: Emit, scenario: list[Message] | None, timeline: bool) -> None:
        super().__init__(driver.profile)
        self.driver, self.emit, self.topics = driver, emit, driver.topics
        self.scenario, self.timeline = scenario, timeline
        profile = driver.profile
        identifier = str(profile.setting("simulate.identifier", "mqtt-device"))
        self.state = DeviceState(identifier, time.monotonic())
        self.event_interval_s = float(profile.setting("simulate.event_interval_s", 1.0))
        self.ticks = self.replayed = 0  # how far the timeline, and the scenario, have got

    async def run(self) -> None:
        """Until cancelled; a broker lost on the way is connected again, and the device goes on
        where it was (its heartbeat count, its timeline, its place in the scenario)."""
        will = aiomqtt.Will(self.topics.presence, b"offline", qos=1, retain=True)
        kept = None if self.scenario is None else replayed(self.scenario, self.driver.notify)

        async def session(client: aiomqtt.Client) -> None:
            call = self.driver.call
            await call(client.subscribe(self.topics.topic("command", "+"), qos=1))
            await call(client.publish(self.topics.presence, b"online", qos=1, retain=True))
            detail = {"url": self.driver.url, "prefix": self.topics.prefix}
            self.emit(link(self.driver.profile.name, ENDPOINT, "connected", detail))
            work = [self._heartbeats(client), self._answers(client)]
            if kept is not None:
                work.append(self._replay(client, kept))
            elif self.timeline:
                work.append(self._timeline(client))
            try:
                await together(*work)
            finally:
                with suppress(aiomqtt.MqttError, TimeoutError):
                    await within(client.publish(self.topics.presence, b"", qos=1, retain=True), 2.0)

        await self.driver.stay_connected(self.emit, session, will)

    async def _send(self, client: aiomqtt.Client, channel: str, kind: str, ident: Any, payload: Any) -> None:
        topic, body = self.topics.topic(channel, kind), encode(channel, ident, payload)
        await self.driver.call(client.publish(topic, body, qos=0 if channel == "heartbeat" else 1))
        self.emit(self.driver.decode(topic, body, OUT))

    async def _heartbeats(self, client: aiomqtt.Client) -> None:
        async for _ in ticks(self.driver.profile.heartbeat.interval_s):
            await self._send(client, "heartbeat", "", None, self.state.heartbeat())

    async def _timeline(self, client: aiomqtt.Client) -> None:
        if not self.ticks:
            await self._send(client, "event", "started", None, {"identifier": self.state.identifier})
        async for _ in ticks(self.event_interval_s):
            self.ticks += 1
            await self._send(client, "event", "tick", None, {"count": self.ticks})

    async def _replay(self, client: aiomqtt.Client, kept: list[Message]) -> None:
        async for msg in paced(kept[self.replayed :]):
            await self._send(client, msg.channel, str(msg.kind), msg.id, msg.payload)
            self.replayed += 1

    async def _answers(self, client: aiomqtt.Client) -> None:
        """Every request gets a reply; a malformed one (no id to answer to) a warning."""
        async for msg in self.driver.messages(client):
            self.emit(msg)
            if msg.error:
                self.driver.notify(f"a malformed request: {msg.error}")
            elif msg.channel == "command":
                now = time.monotonic()
                await self._send(
                    client, "reply", str(msg.kind), msg.id, self.state.answer(str(msg.kind), msg.payload, now)
                )
