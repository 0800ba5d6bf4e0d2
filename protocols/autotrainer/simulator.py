"""The device side over ZeroMQ: `simulate` (heartbeats, timeline, command responder) and
`publish` (the device's publisher alone)."""

from __future__ import annotations

import functools
import heapq
import random
import time
from collections.abc import Callable

from fieldctl.profiles import Profile
from fieldctl.protocols.core.errors import UsageError
from fieldctl.protocols.core.message import Message
from fieldctl.protocols.sdk import replay
from fieldctl.protocols.sdk.contract import CommandOutcome, Context, Emit, Notify, Simulation
from fieldctl.protocols.sdk.machine import Effects, Frame
from fieldctl.protocols.sdk.runners import publish_subscribe, request_reply
from fieldctl.protocols.transport import Throttle, together

from . import codec, timeline
from .client_state import EmergencyDeduper
from .simulator_state import DeviceState

REPLAYED_CHANNELS = ("event", "emergency", "property_change")
#: How far each gap between the timeline's events strays from simulate.event_interval_s (a fraction).
EVENT_JITTER = 0.25


def publications(msg: Message, vocab: codec.Vocabulary) -> list[Message]:
    """What publishing `msg` (from a scenario, `publish` or the control socket) sends: each
    publication an outgoing Message with its frames."""
    try:
        body = codec.publication_body(msg, vocab)
    except ValueError as exc:
        raise UsageError(f"cannot publish {msg.channel}/{msg.kind}: {exc}") from None
    return codec.publication_messages(msg.channel, body, vocab)


def _publisher(profile: Profile, vocab: codec.Vocabulary, emit: Emit) -> publish_subscribe.Publisher:
    return publish_subscribe.Publisher(
        profile.name, "events", profile.endpoints["events"], emit, vocab.limits.max_frame_bytes
    )


class Responder:
    """The command socket's Machine: each request answered by the DeviceState; its publications
    go out after the reply (a tick due at once), an asynchronous command's result after the
    simulated delay. `publish` is the events publisher's send."""

    def __init__(
        self,
        state: DeviceState,
        async_delay: float,
        publish: Callable[[list[Message]], object],
    ) -> None:
        self.state, self.async_delay, self.publish = state, async_delay, publish
        self._warnings: list[str] = []
        self._multi_frame = Throttle(self._warnings.append)
        self._due: list[tuple[float, int, list[Message]]] = []  # (when, order, publications): a heap
        self._order = 0

    def start(self, now: float) -> Effects:
        return Effects()

    def receive(self, frame: Frame, now: float) -> Effects:
        frames = request_reply.parts(frame)
        vocab = self.state.vocab
        handling = self.state.handle(frames)
        if handling.request is None and len(frames) != 1:
            self._multi_frame(
                "a multi-frame request would kill a real device's service thread; answered as unparseable"
            )
        self._later(now, handling.publish)
        self._later(now + self.async_delay, handling.later)
        effects = Effects(
            emit=[codec.decode_request(frames, vocab, direction="in"), handling.reply],
            send=[handling.reply.raw],
            warn=self._warnings[:],
            wake_at=self._due[0][0] if self._due else None,
        )
        self._warnings.clear()
        return effects

    def _later(self, when: float, publications: list[Message]) -> None:
        if publications:
            self._order += 1
            heapq.heappush(self._due, (when, self._order, publications))

    def tick(self, now: float) -> Effects:
        while self._due and self._due[0][0] <= now:
            self.publish(heapq.heappop(self._due)[2])
        return Effects(wake_at=self._due[0][0] if self._due else None)


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
    await _publisher(profile, vocab, emit).publish_all(
        messages, functools.partial(publications, vocab=vocab), wait_s, realtime
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
        self.publisher: publish_subscribe.Publisher | None = None  # bound by run(), for the control path

    async def run(self) -> None:
        scenario, vocab = self.scenario, self.vocab
        publisher = self.publisher = _publisher(self.profile, vocab, self.emit)
        try:  # any client may connect: garbage, raw TCP and vanished peers are dropped with a warning
            server = request_reply.Server(
                self.profile.name,
                "commands",
                self.profile.endpoints["commands"],
                self.emit,
                self.notify,
                vocab.limits.max_frame_bytes,
            )
        except BaseException:
            publisher.close()
            raise
        identifier = self.profile.setting("simulate.identifier", "autotrainer-device")
        version = self.profile.setting("simulate.version", "0.12.0")

        def heartbeat() -> list[Message]:
            body = {"identifier": identifier, "version": version, "timestamp": time.time()}
            return codec.publication_messages("heartbeat", body, vocab)

        tasks = [
            publisher.every(self.profile.heartbeat.interval_s, heartbeat, random.Random(f"{self.seed}:heartbeat")),
            server.serve(Responder(self.state, self.async_delay, self._publish)),
        ]
        encode = functools.partial(publications, vocab=vocab)
        if scenario is not None:
            tasks.append(publisher.replay(replayable(scenario, REPLAYED_CHANNELS, self.notify), encode))
        elif self.use_timeline:
            steps = timeline.sessions(self.state, self.seed)  # endless
            interval = float(self.profile.setting("simulate.event_interval_s", 1.0))
            rng = random.Random(f"{self.seed}:timeline")
            tasks.append(publisher.every(interval, lambda: self.state.event(*next(steps)), rng, EVENT_JITTER))
        try:
            await together(*tasks)
        finally:
            server.close()
            publisher.close()

    def _publish(self, messages: list[Message]) -> None:
        if self.publisher is not None and not self.publisher.closed:
            self.publisher.send(messages)

    async def control(self, verb: str, msg: Message, emit: Emit) -> CommandOutcome:
        """`publish autotrainer KIND --via SOCKET`: published once it has a subscriber (as
        `publish` does)."""
        if verb != "publish" or self.publisher is None:
            return await super().control(verb, msg, emit)
        publisher = self.publisher
        await publisher.wait_subscriber(float(self.profile.setting("timeouts.command_s", 5.0)))
        sent = publisher.send(publications(msg, self.vocab))
        for published in sent:
            emit(published)
        return CommandOutcome(True, f"published {msg.kind}", sent)
