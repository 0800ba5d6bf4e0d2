"""The RouterServer side over ZeroMQ: `simulate` (REP for calls, XPUB for streams, periodic streams,
scenario replay) and `publish` (the broadcast port alone)."""

from __future__ import annotations

import asyncio
import ipaddress
import time
from typing import Any
from urllib.parse import urlsplit

from fieldctl.profiles import Profile
from fieldctl.protocols.core.errors import UsageError
from fieldctl.protocols.core.message import IN, OUT, Message, link
from fieldctl.protocols.sdk import replay, schedule
from fieldctl.protocols.sdk.contract import CommandOutcome, Context, Emit, Notify, Simulation, link_emitter
from fieldctl.protocols.transport import together, zeromq

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


class StreamPublisher:
    """The broadcast port: one packet per sample, each reported as an outgoing Message."""

    def __init__(self, profile: Profile, emit: Emit, notify: Notify) -> None:
        self.profile, self.emit = profile.name, emit
        self.encodings = stream_encodings(profile)
        self.limits = profile.limits
        url = profile.endpoints[codec.STREAMS]
        warn_if_exposed(url, notify)
        self.pub = zeromq.Publisher(
            codec.STREAMS, url, link_emitter(profile.name, emit), max_frame_bytes=self.limits.max_frame_bytes
        )
        emit(link(profile.name, codec.STREAMS, "bound", {"url": self.pub.url}))

    def send(self, name: str, success: bool, value: Any, encoding: str, timestamp: float | None = None) -> Message:
        if not success and encoding == codec.JSON:
            value = str(value)  # an exception is not JSON: the real server's stream thread would die (§5.4)
        try:
            payload = codec.serialize(value, encoding)
        except (ValueError, TypeError) as exc:
            raise UsageError(f"cannot publish on {name} ({encoding}): {exc}") from None
        stamp = time.perf_counter() if timestamp is None else timestamp
        packet = codec.encode_packet(name, success, stamp, payload)
        self.pub.send_nowait([packet])
        msg = codec.sent_packet(
            self.profile,
            codec.STREAMS,
            name,
            codec.SAMPLE if success else codec.ERROR,
            packet,
            success,
            stamp,
            value,
            len(payload),
        )
        self.emit(msg)
        return msg

    def send_message(self, msg: Message) -> Message:
        """A `publish` or scenario line: a recorded packet goes out byte for byte, otherwise the
        payload (`{"data": ...}` as listen records it, or the bare value) in the stream's encoding."""
        if len(msg.raw) == 1:
            sent = codec.decode_stream(self.profile, msg.raw, self.encodings, direction=OUT, limits=self.limits)
            if not sent.error:
                self.pub.send_nowait(list(msg.raw))
                self.emit(sent)
                return sent
        body = msg.payload
        recorded = isinstance(body, dict) and "data" in body
        value = body["data"] if recorded else body
        success = bool(body.get("success", True)) if recorded else msg.kind != codec.ERROR
        return self.send(msg.channel, success, value, self.encodings.get(msg.channel) or codec.PICKLE)

    def close(self, linger_ms: int = 2000) -> None:
        self.pub.close(linger_ms)


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
    messages = replayable(messages, notify)
    await replay.publish_all(
        StreamPublisher(profile, emit, notify), messages, wait_s, realtime, zeromq.DELIVERY_LINGER_MS
    )


class Simulator(Simulation):
    """A RouterServer stand-in: the profile's [simulate] objects, named calls and streams."""

    def __init__(self, profile: Profile, context: Context, scenario: list[Message] | None) -> None:
        super().__init__(profile)
        self.emit, self.notify, self.scenario = context.emit, context.notify, scenario
        self.router = Router(profile.setting("simulate", {}))
        self.limits = profile.limits
        self.publisher: StreamPublisher | None = None  # bound by run(), for the control path

    async def run(self) -> None:
        scenario = self.scenario
        publisher = self.publisher = StreamPublisher(self.profile, self.emit, self.notify)
        url = self.profile.endpoints[codec.CALLS]
        warn_if_exposed(url, self.notify)
        try:
            replier = zeromq.replier(
                codec.CALLS, url, link_emitter(self.profile.name, self.emit), self.notify, self.limits.max_frame_bytes
            )
        except BaseException:
            publisher.close()
            raise
        self.emit(link(self.profile.name, codec.CALLS, "bound", {"url": replier.url}))
        work = [self._respond(replier), *(self._stream(publisher, name) for name in self.router.streamer.streams)]
        if scenario is not None:
            work.append(self._replay(publisher, replayable(scenario, self.notify)))
        try:
            await together(*work)
        finally:
            replier.close()
            publisher.close()

    async def _stream(self, publisher: StreamPublisher, name: str) -> None:
        stream = self.router.streamer.streams[name]
        failing = False  # warned once per run of samples that cannot be published
        async for _ in schedule.ticks(1 / stream.frequency_hz):
            if name in self.router.streamer.enabled:
                success, value = stream.sample()
                try:
                    publisher.send(name, success, value, stream.encoding)
                    failing = False
                except UsageError as exc:  # a value set by a client that this stream cannot carry
                    if not failing:
                        self.notify(f"{exc}; samples skipped until it can")
                    failing = True

    async def _replay(self, publisher: StreamPublisher, messages: list[Message]) -> None:
        # A scenario is a contract test: it starts once someone listens, so nothing is lost.
        await publisher.pub.subscribed.wait()
        async for msg in replay.paced(messages):
            publisher.send_message(msg)

    async def control(self, verb: str, msg: Message, emit: Emit) -> CommandOutcome:
        """`publish oneliner STREAM --data J --via SOCKET`: published on the running stream."""
        if verb != "publish" or self.publisher is None:
            return await super().control(verb, msg, emit)
        publisher = self.publisher
        await publisher.pub.wait_subscriber(float(self.profile.setting("timeouts.command_s", 5.0)))
        sent = publisher.send_message(msg)
        emit(sent)
        return CommandOutcome(True, f"published on {sent.channel}", [sent])

    async def _respond(self, replier: zeromq.Socket) -> None:
        while True:
            frames = await replier.recv()
            request, outcome = self._answer(frames)
            self.emit(request)
            if outcome.malformed:
                self.notify(
                    f"malformed request ({outcome.malformed}) would kill a real server's RPC thread; "
                    "answered with an error"
                )
            if outcome.delay:
                await asyncio.sleep(outcome.delay)  # a REP serves one call at a time, as the real one does
            reply = outcome.reply(time.perf_counter())
            await replier.send([reply.packet])
            target = outcome.request.target if outcome.request else "?"
            self.emit(
                codec.sent_packet(
                    self.profile.name,
                    codec.CALLS,
                    codec.REPLY,
                    target,
                    reply.packet,
                    reply.success,
                    reply.timestamp,
                    reply.value,
                    reply.payload_bytes,
                )
            )
            await asyncio.sleep(0)  # a flood of requests must not starve the streams and signals

    def _answer(self, frames: list[bytes]) -> tuple[Message, Outcome]:
        """The request as a Message and what to answer; whatever a client sends, an answer."""
        name = self.profile.name
        if len(frames) != 1:
            request = Message(
                profile=name,
                endpoint=codec.CALLS,
                direction=IN,
                channel=codec.CALL,
                kind="?",
                raw=tuple(frames),
                error=f"{len(frames)} parts: a request is one part",
            )
            return request, Outcome(False, "malformed request: more than one part", malformed="more than one part")
        return (
            codec.request_message(name, frames[0], direction=IN, limits=self.limits),
            self.router.handle(frames[0], self.limits),
        )
