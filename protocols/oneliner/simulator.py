"""The RouterServer side over ZeroMQ: `simulate` (REP for calls, XPUB for streams, periodic streams,
scenario replay) and `publish` (the broadcast port alone)."""

from __future__ import annotations

import ipaddress
import time
from typing import Any
from urllib.parse import urlsplit

from fieldctl.profiles import Profile
from fieldctl.protocols.core.errors import UsageError
from fieldctl.protocols.core.message import IN, OUT, Message
from fieldctl.protocols.sdk import replay
from fieldctl.protocols.sdk.contract import CommandOutcome, Context, Emit, Notify, Simulation
from fieldctl.protocols.sdk.machine import Effects, Frame
from fieldctl.protocols.sdk.runners import publish_subscribe, request_reply
from fieldctl.protocols.transport import together

from . import codec
from .client import stream_encodings
from .simulator_state import Outcome, Router


def warn_if_exposed(url: str, notify: Notify) -> None:
    """Spec §9: the request format runs code on a real server; a stand-in stays on loopback."""
    host = urlsplit(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if url.startswith("tcp://") and not loopback:
        notify(f"{url} is reachable beyond this machine: one-liner has no authentication (spec §9)")


class Packets:
    """The broadcast port's packets: one per sample, each the outgoing Message that reports it,
    with its packet as `raw`. No I/O: the publisher runner sends them."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile.name
        self.encodings = stream_encodings(profile)
        self.limits = profile.limits

    def sample(self, name: str, success: bool, value: Any, encoding: str) -> Message:
        if not success and encoding == codec.JSON:
            value = str(value)  # an exception is not JSON: the real server's stream thread would die (§5.4)
        try:
            payload = codec.serialize(value, encoding)
        except (ValueError, TypeError) as exc:
            raise UsageError(f"cannot publish on {name} ({encoding}): {exc}") from None
        stamp = time.perf_counter()
        packet = codec.encode_packet(name, success, stamp, payload)
        kind = codec.SAMPLE if success else codec.ERROR
        return codec.sent_packet(self.profile, codec.STREAMS, name, kind, packet, success, stamp, value, len(payload))

    def message(self, msg: Message) -> list[Message]:
        """A `publish` or scenario line: a recorded packet goes out byte for byte, otherwise the
        payload (`{"data": ...}` as listen records it, or the bare value) in the stream's encoding."""
        if len(msg.raw) == 1:
            sent = codec.decode_stream(self.profile, msg.raw, self.encodings, direction=OUT, limits=self.limits)
            if not sent.error:
                return [sent]
        body = msg.payload
        recorded = isinstance(body, dict) and "data" in body
        value = body["data"] if recorded else body
        success = bool(body.get("success", True)) if recorded else msg.kind != codec.ERROR
        return [self.sample(msg.channel, success, value, self.encodings.get(msg.channel) or codec.PICKLE)]


def _publisher(profile: Profile, emit: Emit, notify: Notify) -> publish_subscribe.Publisher:
    url = profile.endpoints[codec.STREAMS]
    warn_if_exposed(url, notify)
    return publish_subscribe.Publisher(profile.name, codec.STREAMS, url, emit, profile.limits.max_frame_bytes)


def replayable(messages: list[Message], notify: Notify) -> list[Message]:
    """Recordings also hold link states, calls, replies and malformed packets: only samples replay."""
    return replay.replayable(
        messages,
        lambda msg: msg.endpoint in ("", codec.STREAMS) and msg.channel not in ("", "?"),
        notify,
        "not stream samples",
    )


async def publish(
    profile: Profile, messages: list[Message], emit: Emit, notify: Notify, wait_s: float, realtime: bool
) -> None:
    packets = Packets(profile)  # its stream encodings checked before anything is bound
    messages = replayable(messages, notify)
    await _publisher(profile, emit, notify).publish_all(messages, packets.message, wait_s, realtime)


class Responder:
    """The call socket's Machine: each request answered by the Router; a declared `sleep` answers
    at its `wake_at`, holding every other call meanwhile, as the real REP loop does."""

    def __init__(self, profile: Profile, router: Router) -> None:
        self.profile, self.router, self.limits = profile.name, router, profile.limits
        self._pending: Outcome | None = None  # a call whose reply waits for its delay

    def start(self, now: float) -> Effects:
        return Effects()

    def receive(self, frame: Frame, now: float) -> Effects:
        request, outcome = self._answer(list(request_reply.parts(frame)))
        effects = Effects(emit=[request])
        if outcome.malformed:
            effects.warn.append(
                f"malformed request ({outcome.malformed}) would kill a real server's RPC thread; answered with an error"
            )
        if outcome.delay:
            self._pending = outcome
            effects.wake_at = now + outcome.delay
            return effects
        effects += self._reply(outcome)
        return effects

    def tick(self, now: float) -> Effects:
        outcome, self._pending = self._pending, None
        return self._reply(outcome) if outcome is not None else Effects()

    def _reply(self, outcome: Outcome) -> Effects:
        reply = outcome.reply(time.perf_counter())
        target = outcome.request.target if outcome.request else "?"
        sent = codec.sent_packet(
            self.profile,
            codec.CALLS,
            codec.REPLY,
            target,
            reply.packet,
            reply.success,
            reply.timestamp,
            reply.value,
            reply.payload_bytes,
        )
        return Effects(emit=[sent], send=[(reply.packet,)])

    def _answer(self, frames: list[bytes]) -> tuple[Message, Outcome]:
        """The request as a Message and what to answer; whatever a client sends, an answer."""
        if len(frames) != 1:
            request = Message(
                profile=self.profile,
                endpoint=codec.CALLS,
                direction=IN,
                channel=codec.CALL,
                kind="?",
                raw=tuple(frames),
                error=f"{len(frames)} parts: a request is one part",
            )
            return request, Outcome(False, "malformed request: more than one part", malformed="more than one part")
        return (
            codec.request_message(self.profile, frames[0], direction=IN, limits=self.limits),
            self.router.handle(frames[0], self.limits),
        )


class Simulator(Simulation):
    """A RouterServer stand-in: the profile's [simulate] objects, named calls and streams."""

    def __init__(self, profile: Profile, context: Context, scenario: list[Message] | None) -> None:
        super().__init__(profile)
        self.emit, self.notify, self.scenario = context.emit, context.notify, scenario
        self.router = Router(profile.setting("simulate", {}))
        self.packets = Packets(profile)
        self.publisher: publish_subscribe.Publisher | None = None  # bound by run(), for the control path

    async def run(self) -> None:
        scenario = self.scenario
        publisher = self.publisher = _publisher(self.profile, self.emit, self.notify)
        url = self.profile.endpoints[codec.CALLS]
        warn_if_exposed(url, self.notify)
        try:
            server = request_reply.Server(
                self.profile.name, codec.CALLS, url, self.emit, self.notify, self.profile.limits.max_frame_bytes
            )
        except BaseException:
            publisher.close()
            raise
        work = [
            server.serve(Responder(self.profile, self.router)),
            *(self._stream(publisher, name) for name in self.router.streamer.streams),
        ]
        if scenario is not None:
            work.append(publisher.replay(replayable(scenario, self.notify), self.packets.message))
        try:
            await together(*work)
        finally:
            server.close()
            publisher.close()

    async def _stream(self, publisher: publish_subscribe.Publisher, name: str) -> None:
        stream = self.router.streamer.streams[name]
        failing = False  # warned once per run of samples that cannot be published

        def samples() -> list[Message]:
            nonlocal failing
            if name not in self.router.streamer.enabled:
                return []
            success, value = stream.sample()
            try:
                sample = self.packets.sample(name, success, value, stream.encoding)
            except UsageError as exc:  # a value set by a client that this stream cannot carry
                if not failing:
                    self.notify(f"{exc}; samples skipped until it can")
                failing = True
                return []
            failing = False
            return [sample]

        await publisher.every(1 / stream.frequency_hz, samples)

    async def control(self, verb: str, msg: Message, emit: Emit) -> CommandOutcome:
        """`publish oneliner STREAM --data J --via SOCKET`: published on the running stream."""
        if verb != "publish" or self.publisher is None:
            return await super().control(verb, msg, emit)
        publisher = self.publisher
        await publisher.wait_subscriber(float(self.profile.setting("timeouts.command_s", 5.0)))
        sent = publisher.send(self.packets.message(msg))
        for published in sent:
            emit(published)
        return CommandOutcome(True, f"published on {sent[0].channel}", sent)
