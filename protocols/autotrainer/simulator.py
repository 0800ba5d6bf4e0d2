"""The device side over ZeroMQ: `simulate` (heartbeats, timeline, command responder) and
`publish` (the device's publisher alone)."""

from __future__ import annotations

import asyncio
import random
import time

from fieldctl.profiles import Profile
from fieldctl.protocols.core.errors import UsageError
from fieldctl.protocols.core.message import Message, link
from fieldctl.protocols.sdk import replay, schedule
from fieldctl.protocols.sdk.contract import CommandOutcome, Context, Emit, Notify, Simulation, link_emitter
from fieldctl.protocols.transport import together, zeromq

from . import codec, timeline
from .client_state import EmergencyDeduper
from .simulator_state import DeviceState

REPLAYED_CHANNELS = ("event", "emergency", "property_change")
#: How far each gap between the timeline's events strays from simulate.event_interval_s (a fraction).
EVENT_JITTER = 0.25


class DevicePublisher:
    """Sends publications, each an outgoing Message with its frames (codec.publication_messages),
    and reports each one as it goes."""

    def __init__(self, profile: Profile, vocab: codec.Vocabulary, emit: Emit) -> None:
        self.vocab, self.emit = vocab, emit
        self.pub = zeromq.Publisher(
            "events", profile.endpoints["events"], link_emitter(profile.name, emit), vocab.limits.max_frame_bytes
        )
        emit(link(profile.name, "events", "bound", {"url": self.pub.url}))

    def send(self, publications: list[Message]) -> list[Message]:
        for msg in publications:
            self.pub.send_nowait(msg.raw)
            msg.ts = time.time()  # built earlier (a delayed COMMAND_RESULT): reported as sent now
            self.emit(msg)
        return publications

    def send_message(self, msg: Message) -> list[Message]:
        try:
            body = codec.publication_body(msg, self.vocab)
        except ValueError as exc:
            raise UsageError(f"cannot publish {msg.channel}/{msg.kind}: {exc}") from None
        return self.send(codec.publication_messages(msg.channel, body, self.vocab))

    def close(self, linger_ms: int = 2000) -> None:
        self.pub.close(linger_ms)


def replayable(messages: list[Message], channels: tuple[str, ...], notify: Notify) -> list[Message]:
    """Only publications replay. A raw capture may hold both copies of an emergency; publishing
    one sends both again."""
    dedupe = EmergencyDeduper()
    return replay.replayable(
        messages,
        lambda msg: msg.channel in channels and not dedupe.is_duplicate(msg),
        notify,
        f"not publications on {', '.join(channels)}, or a second copy of an emergency",
    )


async def publish(
    profile: Profile,
    vocab: codec.Vocabulary,
    messages: list[Message],
    emit: Emit,
    notify: Notify,
    wait_s: float,
    realtime: bool,
) -> None:
    messages = replayable(messages, codec.PUBLICATION_CHANNELS, notify)
    await replay.publish_all(
        DevicePublisher(profile, vocab, emit), messages, wait_s, realtime, zeromq.DELIVERY_LINGER_MS
    )


class Simulator(Simulation):
    def __init__(
        self,
        profile: Profile,
        vocab: codec.Vocabulary,
        context: Context,
        scenario: list[Message] | None,
        use_timeline: bool,
    ) -> None:
        super().__init__(profile)
        self.vocab, self.emit, self.notify = vocab, context.emit, context.notify
        self.scenario, self.use_timeline = scenario, use_timeline
        async_names = profile.setting("simulate.async_commands", [])
        unknown = [name for name in async_names if name not in vocab.command_code]
        if unknown:
            raise UsageError(f"simulate.async_commands: unknown command(s) {', '.join(unknown)}")
        self.state = DeviceState(
            vocab, profile.setting("simulate.configuration", {}), [vocab.command_code[name] for name in async_names]
        )
        self.async_delay = float(profile.setting("simulate.async_delay_s", 0.3))
        self.seed = int(profile.setting("simulate.seed", 1))
        self.publisher: DevicePublisher | None = None  # bound by run(), for the control path

    async def run(self) -> None:
        scenario = self.scenario
        publisher = self.publisher = DevicePublisher(self.profile, self.vocab, self.emit)
        try:  # any client may connect: garbage, raw TCP and vanished peers are dropped with a warning
            replier = zeromq.replier(
                "commands",
                self.profile.endpoints["commands"],
                link_emitter(self.profile.name, self.emit),
                self.notify,
                self.vocab.limits.max_frame_bytes,
            )
        except BaseException:
            publisher.close()
            raise
        self.emit(link(self.profile.name, "commands", "bound", {"url": replier.url}))
        tasks = [self._heartbeats(publisher), self._respond(replier, publisher)]
        if scenario is not None:
            tasks.append(self._replay(publisher, replayable(scenario, REPLAYED_CHANNELS, self.notify)))
        elif self.use_timeline:
            tasks.append(self._timeline(publisher))
        try:
            await together(*tasks)
        finally:
            replier.close()
            publisher.close()

    async def control(self, verb: str, msg: Message, emit: Emit) -> CommandOutcome:
        """`publish autotrainer KIND --via SOCKET`: published once it has a subscriber (as
        `publish` does)."""
        if verb != "publish" or self.publisher is None:
            return await super().control(verb, msg, emit)
        publisher = self.publisher
        await publisher.pub.wait_subscriber(float(self.profile.setting("timeouts.command_s", 5.0)))
        sent = publisher.send_message(msg)
        for published in sent:
            emit(published)
        return CommandOutcome(True, f"published {msg.kind}", sent)

    async def _heartbeats(self, publisher: DevicePublisher) -> None:
        interval = self.profile.heartbeat.interval_s
        identifier = self.profile.setting("simulate.identifier", "autotrainer-device")
        version = self.profile.setting("simulate.version", "0.12.0")
        async for _ in schedule.ticks(interval, random.Random(f"{self.seed}:heartbeat")):
            body = {"identifier": identifier, "version": version, "timestamp": time.time()}
            publisher.send(codec.publication_messages("heartbeat", body, self.vocab))

    async def _timeline(self, publisher: DevicePublisher) -> None:
        interval = float(self.profile.setting("simulate.event_interval_s", 1.0))
        steps = timeline.sessions(self.state, self.seed)  # endless
        async for _ in schedule.ticks(interval, random.Random(f"{self.seed}:timeline"), EVENT_JITTER):
            publisher.send(self.state.event(*next(steps)))

    async def _replay(self, publisher: DevicePublisher, messages: list[Message]) -> None:
        # A scenario is a contract test: it starts once someone listens, so nothing is lost.
        await publisher.pub.subscribed.wait()
        async for msg in replay.paced(messages, realtime=True):
            publisher.send_message(msg)

    async def _respond(self, replier: zeromq.Replier, publisher: DevicePublisher) -> None:
        loop = asyncio.get_running_loop()
        multi_frame = zeromq.Throttle(self.notify)
        while True:
            frames = await replier.recv()
            self.emit(codec.decode_request(frames, self.vocab, direction="in"))
            handling = self.state.handle(frames)
            if handling.request is None and len(frames) != 1:
                multi_frame("a multi-frame request would kill a real device's service thread; answered as unparseable")
            await replier.send(handling.reply.raw)
            self.emit(handling.reply)
            publisher.send(handling.publish)
            if handling.later:
                loop.call_later(self.async_delay, self._send_later, publisher, handling.later)
            await asyncio.sleep(0)  # a flood of requests must not starve heartbeats and signals

    @staticmethod
    def _send_later(publisher: DevicePublisher, publications: list[Message]) -> None:
        if not publisher.pub.sock.closed:
            publisher.send(publications)
