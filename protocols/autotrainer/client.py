"""The remote side: what a technician's tool does against a real device (spec 'What a compatible
tool must do'): SUB + REQ, nonce correlation, async results, emergency de-duplication."""

from __future__ import annotations

import asyncio
import random
from collections import OrderedDict
from typing import Any

from fieldctl.protocols.driver import CommandOutcome, Emit, ProbeReport, Stats, link_emitter
from fieldctl.protocols.probing import verdict
from fieldctl.protocols.errors import ConnectFailure, NagiosCode, ProtocolFailure, Timeout, UsageError
from fieldctl.protocols.message import Message
from fieldctl.protocols.transport import LISTEN_REFUSED_AFTER_S, within, zeromq

from . import codec
from .codec import PENDING, PENDING_WITH_NOTIFICATION, SUCCESS, Vocabulary

NONCE_MAX = 2**31 - 1


class EmergencyDeduper:
    """The device publishes each emergency body on EMERGENCY, then again on EVENT (spec §5.2)."""

    def __init__(self, size: int = 256) -> None:
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        self._size = size

    def is_duplicate(self, msg: Message) -> bool:
        if msg.error or len(msg.raw) != 2 or not codec.is_emergency(msg):
            return False
        body = msg.raw[1]
        if msg.channel == "emergency":
            self._seen[body] = None
            if len(self._seen) > self._size:
                self._seen.popitem(last=False)
            return False
        if body in self._seen:
            del self._seen[body]
            return True
        return False


async def listen(url: str, vocab: Vocabulary, emit: Emit, stats: Stats, channels: set[str] | None) -> None:
    wanted = channels if channels and channels <= vocab.channel_topic.keys() else None
    prefixes = [vocab.topic_frame(name) for name in sorted(wanted)] if wanted else []
    sub = _subscriber(url, vocab, prefixes, link_emitter(vocab.profile, emit),
                      LISTEN_REFUSED_AFTER_S)
    dedupe = EmergencyDeduper()
    try:
        while True:  # recv() yields to timers, signals and the output flush even under a flood
            msg = codec.decode_publication(await sub.recv(), vocab)
            if dedupe.is_duplicate(msg):
                stats.duplicates += 1
            else:
                emit(msg)
    finally:
        sub.close()


def _subscriber(url: str, vocab: Vocabulary, prefixes: list[bytes], on_link: zeromq.LinkCallback | None = None,
                refuse_after_s: float = 0.0) -> zeromq.Socket:
    return zeromq.subscriber("events", url, prefixes, on_link, vocab.limits.max_frame_bytes, refuse_after_s)


def _requester(url: str, vocab: Vocabulary) -> zeromq.Requester:
    return zeromq.Requester("commands", url, max_frame_bytes=vocab.limits.max_frame_bytes)


def resolve_command(name: str, vocab: Vocabulary) -> int:
    if name in vocab.command_code:
        return vocab.command_code[name]
    if name.lstrip("-").isdigit():
        return int(name)
    close = [known for known in vocab.command_code if name in known or known in name][:5]
    hint = f" (did you mean {', '.join(close)}?)" if close else " (see: fieldctl profiles show " + vocab.profile + ")"
    raise UsageError(f"unknown command {name!r}{hint}")


async def _matching_result(sub: zeromq.Socket, vocab: Vocabulary, nonce: int) -> Message:
    """The COMMAND_RESULT for our nonce; other clients' results are broadcast too (spec §6.7)."""
    while True:
        msg = codec.decode_publication(await sub.recv(), vocab)
        if not msg.error and msg.channel == "command_result" and msg.id == nonce:
            return msg


async def command(endpoints: dict[str, str], vocab: Vocabulary, name: str, data: Any, options: dict[str, Any],
                  timeout: float, wait: bool, emit: Emit) -> CommandOutcome:
    code = resolve_command(name, vocab)
    nonce = random.randint(1, NONCE_MAX)
    frame = codec.encode_request(code, nonce, data, custom_command=options.get("custom_command"),
                                 with_data=data is not None)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    sub = _subscriber(endpoints["events"], vocab, [vocab.topic_frame("command_result")]) if wait else None
    requester = _requester(endpoints["commands"], vocab)
    result_task: asyncio.Task[Message] | None = None
    try:
        if sub is not None:
            # Subscribed before sending: a result may be published before the 201 reply arrives.
            await sub.wait_ready(min(1.0, timeout / 2))
            result_task = loop.create_task(_matching_result(sub, vocab, nonce))
        request = codec.decode_request([frame], vocab)
        emit(request)
        sent = loop.time()
        reply = codec.decode_reply(await requester.request([frame], max(0.0, deadline - loop.time())), vocab)
        rtt_s = loop.time() - sent
        emit(reply)
        messages = [request, reply]
        if reply.error:
            raise ProtocolFailure(f"malformed reply from {endpoints['commands']}: {reply.error}")
        body = reply.payload
        if codec.is_service_rejection(body):
            return CommandOutcome(False, "the device rejected the request as unparseable (reply nonce 0)", messages, rtt_s)
        if body.get("nonce") != nonce:
            raise ProtocolFailure(f"reply nonce {body.get('nonce')!r} does not match request nonce {nonce}")
        if body.get("result") == PENDING_WITH_NOTIFICATION and result_task is not None:
            try:
                result = await within(result_task, max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                raise Timeout(f"{reply.kind}: accepted (201) but no COMMAND_RESULT for nonce {nonce} "
                              f"within {timeout:g} s") from None
            emit(result)
            messages.append(result)
            body = result.payload
        return CommandOutcome(body.get("result") in (SUCCESS, PENDING, PENDING_WITH_NOTIFICATION),
                              describe_result(str(reply.kind), body), messages, rtt_s)
    finally:
        if result_task is not None:
            result_task.cancel()
        requester.close()
        if sub is not None:
            sub.close()


def describe_result(kind: str, body: dict[str, Any]) -> str:
    text = f"{kind}: {codec.result_name(body.get('result'))}"
    if body.get("errorCode"):
        text += f" (error {body['errorCode']})"
    if body.get("errorMessage"):
        text += f": {body['errorMessage']}"
    return text


async def probe(endpoints: dict[str, str], vocab: Vocabulary, warn: float, crit: float) -> ProbeReport:
    """A heartbeat within the thresholds and a GET_CONFIGURATION round trip; bounded by crit.
    A refused connection ends it at once (ConnectFailure: CRITICAL)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    sub = _subscriber(endpoints["events"], vocab, [vocab.topic_frame("heartbeat")])
    requester = _requester(endpoints["commands"], vocab)

    async def heartbeat() -> tuple[Message, float]:
        while True:
            msg = codec.decode_publication(await sub.recv(), vocab)
            if not msg.error:
                return msg, loop.time() - start

    async def round_trip() -> float:
        sent = loop.time()
        frame = codec.encode_request(vocab.command_code.get("get-configuration", 300), random.randint(1, NONCE_MAX))
        codec.decode_reply(await requester.request([frame], crit), vocab)
        return loop.time() - sent

    beat_task, rtt_task = loop.create_task(heartbeat()), loop.create_task(round_trip())
    try:
        pending = {beat_task, rtt_task}
        while pending and (remaining := start + crit - loop.time()) > 0:
            done, pending = await asyncio.wait(pending, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if isinstance(error := task.exception(), ConnectFailure):
                    return ProbeReport(NagiosCode.CRITICAL, str(error), {}, warn, crit)
    finally:
        for task in (beat_task, rtt_task):
            task.cancel()
        requester.close()
        sub.close()
    metrics: dict[str, float] = {}
    problems: list[str] = []
    parts: list[str] = []
    if beat_task.done() and not beat_task.cancelled() and beat_task.exception() is None:
        beat, waited = beat_task.result()
        metrics["heartbeat_wait_seconds"] = round(waited, 3)
        payload = beat.payload or {}
        parts.append(f"heartbeat from {payload.get('identifier')} {payload.get('version')}")
    else:
        problems.append(f"no heartbeat within {crit:g} s")
    if rtt_task.done() and not rtt_task.cancelled() and rtt_task.exception() is None:
        metrics["command_rtt_seconds"] = round(rtt_task.result(), 4)
        parts.append(f"command round trip {rtt_task.result() * 1000:.0f} ms")
    else:
        problems.append(f"no command reply within {crit:g} s")
    return verdict(metrics, problems, parts, warn, crit)

