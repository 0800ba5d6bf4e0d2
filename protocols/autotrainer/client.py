"""The remote side: what a technician's tool does against a real device (spec 'What a compatible
tool must do'): SUB + REQ, nonce correlation, async results, emergency de-duplication."""

from __future__ import annotations

import asyncio
import functools
import json
import random
from typing import Any

from fieldctl.profiles.schema import did_you_mean
from fieldctl.protocols.core.errors import ConnectFailure, NagiosCode, Timeout, UsageError
from fieldctl.protocols.core.message import Message
from fieldctl.protocols.core.readable import duration_text
from fieldctl.protocols.sdk.contract import (
    BaseDriver,
    ClientSession,
    CommandOutcome,
    CommandRequest,
    Context,
    Emit,
    ProbeReport,
    link_emitter,
)
from fieldctl.protocols.sdk.probing import verdict
from fieldctl.protocols.sdk.runners import publish_subscribe, request_reply
from fieldctl.protocols.transport import LISTEN_REFUSED_AFTER_S, LinkCallback, within

from . import codec
from .client_state import READS, EmergencyDeduper, Waiting, judge_reply, outcome
from .codec import Vocabulary

NONCE_MAX = 2**31 - 1


async def listen(url: str, vocab: Vocabulary, context: Context, channels: set[str] | None) -> None:
    wanted = channels if channels and channels <= vocab.channel_topic.keys() else None
    prefixes = [vocab.topic_frame(name) for name in sorted(wanted)] if wanted else []
    on_link = link_emitter(vocab.profile, context.emit)
    subscriber = _subscriber(url, vocab, prefixes, on_link, LISTEN_REFUSED_AFTER_S)
    await publish_subscribe.listen(subscriber, context.emit, EmergencyDeduper().is_duplicate, context.duplicate)


def _subscriber(
    url: str,
    vocab: Vocabulary,
    prefixes: list[bytes],
    on_link: LinkCallback | None = None,
    refuse_after_s: float = 0.0,
) -> publish_subscribe.Subscriber:
    return publish_subscribe.Subscriber(
        "events",
        url,
        prefixes,
        functools.partial(codec.decode_publication, vocab=vocab),
        on_link=on_link,
        max_frame_bytes=vocab.limits.max_frame_bytes,
        refuse_after_s=refuse_after_s,
    )


def _client(url: str, vocab: Vocabulary) -> request_reply.Client:
    return request_reply.Client(
        "commands", url, functools.partial(codec.decode_reply, vocab=vocab), vocab.limits.max_frame_bytes
    )


def resolve_command(name: str, vocab: Vocabulary) -> int:
    if name in vocab.command_code:
        return vocab.command_code[name]
    if name.lstrip("-").isdigit():
        return int(name)
    hint = did_you_mean(name, vocab.command_code) or f" (see: fieldctl profiles show {vocab.profile})"
    raise UsageError(f"unknown command {name!r}{hint}")


class _Results:
    """The COMMAND_RESULT subscription of a session: one reader hands each result to the command
    waiting for its nonce (client_state.Waiting decides which)."""

    def __init__(self, url: str, vocab: Vocabulary) -> None:
        self.sub = _subscriber(url, vocab, [vocab.topic_frame("command_result")])
        self.books = Waiting()
        self.futures: dict[int, asyncio.Future[Message]] = {}
        self.reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        try:
            await self.sub.run(self._deliver)
        except Exception as exc:  # noqa: BLE001  whatever ends the reader, every waiting command hears it
            for future in self.futures.values():
                if not future.done():
                    future.set_exception(exc)

    def _deliver(self, msg: Message) -> None:
        nonce = self.books.answered(msg)
        future = self.futures.get(nonce) if nonce is not None else None
        if future is not None and not future.done():
            future.set_result(msg)

    def expect(self, nonce: int) -> asyncio.Future[Message]:
        self.books.expect(nonce)
        future = self.futures[nonce] = asyncio.get_running_loop().create_future()
        return future

    def forget(self, nonce: int) -> None:
        self.books.forget(nonce)
        self.futures.pop(nonce, None)

    async def close(self) -> None:
        self.reader.cancel()
        await asyncio.gather(self.reader, return_exceptions=True)
        self.sub.close()


class Session(ClientSession):
    """Many commands over the same sockets. One REQ socket is kept (lazy pirate: a request that
    times out takes only its socket with it, the next command opens a new one). The COMMAND_RESULT
    subscription is opened by the first command that may get an asynchronous result, before its
    request leaves (the result can overtake the reply), and kept for later ones; a command in
    READS, or one sent with wait=False, opens none and returns after the reply, even a 201 one."""

    def __init__(self, driver: BaseDriver, context: Context, endpoints: dict[str, str], vocab: Vocabulary) -> None:
        super().__init__(driver, context)
        self.endpoints, self.vocab = endpoints, vocab
        self._client = _client(endpoints["commands"], vocab)
        self._results: _Results | None = None

    async def _subscribed(self, timeout: float) -> _Results:
        """The subscription, (re)opened when it is not there or its reader ended."""
        if self._results is not None and self._results.reader.done():
            await self._results.close()
            self._results = None
        if self._results is None:
            self._results = _Results(self.endpoints["events"], self.vocab)
        await self._results.sub.wait_ready(min(1.0, timeout / 2))
        return self._results

    async def send(self, request: CommandRequest) -> CommandOutcome:
        name, data, timeout = request.name, request.data, request.timeout
        for path, before, after in codec.mangled_values(data):
            self.context.notify(
                f"the device lower-cases and strips whitespace in request strings: {path} "
                f"{json.dumps(before)} will arrive as {json.dumps(after)}"
            )
        code = resolve_command(name, self.vocab)
        nonce = random.randint(1, NONCE_MAX)
        body = codec.request_body(
            code, nonce, data, custom_command=request.options.get("custom_command"), with_data=data is not None
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        results = await self._subscribed(timeout) if request.wait and code not in READS else None
        result = results.expect(nonce) if results is not None else None
        try:
            return await self._exchange(body, nonce, result, timeout, deadline, request.emit)
        except BaseException:
            self._client.close()  # e.g. cancelled mid-request: a REQ socket cannot send again
            raise
        finally:
            if results is not None:
                results.forget(nonce)

    async def _exchange(
        self,
        body: dict[str, Any],
        nonce: int,
        result: asyncio.Future[Message] | None,
        timeout: float,
        deadline: float,
        emit: Emit,
    ) -> CommandOutcome:
        loop = asyncio.get_running_loop()
        request = codec.request_message(body, self.vocab)  # the frame and its report, nothing decoded
        _, reply, rtt_s = await self._client.exchange(request, max(0.0, deadline - loop.time()), emit)
        messages = [request, reply]
        verdict = judge_reply(reply, nonce, self.endpoints["commands"])
        final = None
        if verdict.pending and result is not None:
            try:
                final = await within(result, max(0.0, deadline - loop.time()))
            except TimeoutError:
                raise Timeout(
                    f"{reply.kind}: accepted (201) but no COMMAND_RESULT for nonce {nonce} within {timeout:g} s"
                ) from None
            emit(final)
            messages.append(final)
        return outcome(reply, verdict, messages, rtt_s, final)

    async def close(self) -> None:
        self._client.close()
        if self._results is not None:
            await self._results.close()
            self._results = None


async def probe(endpoints: dict[str, str], vocab: Vocabulary, warn: float, crit: float) -> ProbeReport:
    """A heartbeat within the thresholds and a GET_CONFIGURATION round trip; bounded by crit.
    A refused connection ends it at once (ConnectFailure: CRITICAL)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    sub = _subscriber(endpoints["events"], vocab, [vocab.topic_frame("heartbeat")])
    client = _client(endpoints["commands"], vocab)

    async def heartbeat() -> tuple[Message, float]:
        msg = await sub.first(lambda msg: not msg.error)
        return msg, loop.time() - start

    async def round_trip() -> float:
        body = codec.request_body(vocab.command_code.get("get-configuration", 300), random.randint(1, NONCE_MAX))
        return (await client.exchange(codec.request_message(body, vocab), crit, request_reply.ignore)).rtt_s

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
        client.close()
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
        parts.append(f"command round trip {duration_text(rtt_task.result())}")
    else:
        problems.append(f"no command reply within {crit:g} s")
    return verdict(metrics, problems, parts, warn, crit)
