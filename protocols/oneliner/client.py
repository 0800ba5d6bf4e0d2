"""The RouterClient side (spec §10.1): SUB with exact topics, REQ calls that always time out and
replace their socket, stream management, and the probe."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from fieldctl.profiles import Profile
from fieldctl.protocols.core.errors import ProtocolFailure, Timeout, UsageError
from fieldctl.protocols.core.message import Message
from fieldctl.protocols.core.readable import duration_text, value_text
from fieldctl.protocols.sdk.contract import CommandOutcome, CommandRequest, Emit, Notify, ProbeReport, link_emitter
from fieldctl.protocols.sdk.probing import verdict
from fieldctl.protocols.sdk.runners import publish_subscribe, request_reply
from fieldctl.protocols.transport import LISTEN_REFUSED_AFTER_S, LinkCallback

from . import codec
from .codec import Request
from .safe_pickle import clip
from .simulator_state import ROUTER, RPC, STREAMER

TRUST_WARNING = (
    "--trust-pickle: payloads are unpickled without restriction; a hostile server can run "
    "code in this process (spec §9)"
)


def stream_encodings(profile: Profile) -> dict[str, str]:
    """The profile's [channels]: stream name -> payload encoding. Streams not listed are detected
    from the payload, since the wire does not say (spec §5.5)."""
    encodings = {name: str(value) for name, value in profile.channels.items()}
    for name, encoding in encodings.items():
        if encoding not in codec.ENCODINGS:
            raise UsageError(f"channels.{name}: {encoding!r} is not one of {', '.join(codec.ENCODINGS)}")
    return encodings


# --- listen ------------------------------------------------------------------------------------------


async def listen(profile: Profile, emit: Emit, streams: set[str], trusted: bool) -> None:
    """Every stream, or only `streams` by their exact topic (name + 0x00)."""
    try:
        prefixes = [codec.subscription(name) for name in sorted(streams)]
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    subscriber = _subscriber(
        profile, prefixes, stream_encodings(profile), trusted, link_emitter(profile.name, emit), LISTEN_REFUSED_AFTER_S
    )
    await publish_subscribe.listen(subscriber, emit)


def _subscriber(
    profile: Profile,
    prefixes: list[bytes],
    encodings: dict[str, str],
    trusted: bool = False,
    on_link: LinkCallback | None = None,
    refuse_after_s: float = 0.0,
) -> publish_subscribe.Subscriber:
    decode = functools.partial(
        codec.decode_stream, profile.name, encodings=encodings, trusted=trusted, limits=profile.limits
    )
    return publish_subscribe.Subscriber(
        codec.STREAMS,
        profile.endpoints[codec.STREAMS],
        prefixes,
        decode,
        on_link=on_link,
        max_frame_bytes=profile.limits.max_frame_bytes,
        refuse_after_s=refuse_after_s,
    )


# --- calls -------------------------------------------------------------------------------------------


class Caller:
    """RPC over REQ: one request outstanding, a timeout on each, a new socket after a timeout."""

    def __init__(self, profile: Profile, emit: Emit, notify: Notify, trusted: bool = False) -> None:
        self.profile, self.emit, self.notify, self.trusted = profile.name, emit, notify, trusted
        self.limits = profile.limits
        self.url = profile.endpoints[codec.CALLS]
        self.client = request_reply.Client(codec.CALLS, self.url, self._decoder("?"), self.limits.max_frame_bytes)

    def _decoder(self, target: str) -> publish_subscribe.Decode:
        """A reply's decoder: its Message names the call it answers."""
        return functools.partial(
            codec.decode_reply, self.profile, target=target, trusted=self.trusted, limits=self.limits
        )

    async def call(self, request: Request, timeout: float) -> request_reply.Exchange:
        """The request, its reply and the round trip; raises Timeout, or ProtocolFailure for an
        undecodable reply."""
        body = codec.encode_request(request)
        sent = codec.request_message(self.profile, body, limits=self.limits)
        if sent.error:  # what we would refuse from a peer, we do not send to one
            raise UsageError(f"{request.target}: not sent: {sent.error}")
        try:
            exchange = await self.client.exchange(sent, timeout, self.emit, self._decoder(request.target))
        except Timeout:
            self.notify(f"{request.target}: no reply within {timeout:g} s; the call may still run on the server")
            raise
        reply = exchange.reply
        if reply.error:
            hint = " (only for a trusted server: --trust-pickle)" if "unsafe pickle" in reply.error else ""
            raise ProtocolFailure(f"undecodable reply from {self.url}: {reply.error}{hint}")
        return exchange

    def close(self) -> None:
        self.client.close()


def _one_param(operation: str, params: list[str], what: str) -> str:
    if len(params) != 1 or not params[0]:
        raise UsageError(f"command oneliner {operation} takes one {what}")
    return params[0]


def build_request(operation: str, options: dict[str, Any]) -> Request:
    """`command oneliner OPERATION [PARAM]`: validated here, since a malformed request takes a real
    server's RPC service down for good (spec §4.6)."""
    params: list[str] = options.get("params", [])
    args, kwargs = options.get("args", []), options.get("kwargs", {})
    if not isinstance(args, list):
        raise UsageError("--args: expected a JSON array")
    if not isinstance(kwargs, dict):
        raise UsageError("--kwargs: expected a JSON object")
    stamp = bool(options.get("timestamp"))
    if operation == "call":
        obj, dot, attr = _one_param(operation, params, "OBJECT.ATTR").rpartition(".")
        if not dot or not obj or not attr:
            raise UsageError(f"call {params[0]!r}: expected OBJECT.ATTR, e.g. counter.add")
        return Request(obj, attr, args, kwargs, stamp)
    if operation == "named":
        name = _one_param(operation, params, "NAME")
        return Request(RPC, "_call_by_name", [name], {"args": args or None, "kwargs": kwargs or None}, stamp)
    if operation in ("enable", "disable"):
        return Request(STREAMER, operation, [_one_param(operation, params, "STREAM")], {}, stamp)
    if params:
        raise UsageError(f"command oneliner {operation} takes no further arguments")
    if operation == "streams":
        return Request(STREAMER, "get_configuration", [], {"as_dict": True}, stamp)
    if operation == "version":
        return Request(ROUTER, "get_version", [], {}, stamp)
    raise UsageError(f"unknown command {operation!r} (one of call, named, streams, enable, disable, version)")


#: What a failed management call usually means (the real server's quirks, spec §5.5).
_FAILURE_HINTS = {
    "get_configuration": "a one-liner server cannot list its streams while one of them is disabled",
    "disable": "not enabled, or not a periodic stream",
}


def describe(request: Request, reply: Message) -> str:
    body = reply.payload
    stamp = f" (server t={body['timestamp']:.6f})" if body.get("timestamp") is not None else ""
    if body["success"]:
        return f"{request.target}: ok{stamp}"
    data = body["data"]
    text = clip(data if isinstance(data, str) else value_text(data, 300), 300)  # the server's text: one bounded line
    if len(text) > 1 and text[0] == text[-1] and text[0] in "'\"":
        text = f"not found: {text}"  # the server's lookups fail with a KeyError's quoted str
    hint = _FAILURE_HINTS.get(request.attr)
    return f"{request.target}: failed: {text}{stamp}" + (f" ({hint})" if hint else "")


async def command(profile: Profile, notify: Notify, command: CommandRequest) -> CommandOutcome:
    """A call of its own, on a REQ socket of its own (as RouterClient calls)."""
    if command.data is not None:
        raise UsageError("oneliner commands take --args JSON and --kwargs JSON, not --data")
    operation, options = command.name, command.options
    request = build_request(operation, options)
    trusted = bool(options.get("trust_pickle"))
    if trusted:
        notify(TRUST_WARNING)
    if operation in ("enable", "disable"):
        notify(f"{operation} {request.args[0]} affects every client of this server, not only this one")
    caller = Caller(profile, command.emit, notify, trusted)
    try:
        sent, reply, rtt_s = await caller.call(request, command.timeout)
    finally:
        caller.close()
    return CommandOutcome(
        bool(reply.payload["success"]), describe(request, reply), [sent, reply], rtt_s, result=reply.payload["data"]
    )  # the call's return value, or the server's error text


# --- probe -------------------------------------------------------------------------------------------


async def probe(profile: Profile, warn: float, crit: float, stream: str | None) -> ProbeReport:
    """A version call within the thresholds (the only ping there is, spec §7) and, when asked,
    a sample of one stream. Bounded by crit."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    caller = Caller(profile, lambda msg: None, lambda text: None)
    sub = _subscriber(profile, [codec.subscription(stream)], {}) if stream is not None else None

    async def round_trip() -> tuple[str, float]:
        _, reply, _ = await caller.call(build_request("version", {}), crit)
        if not reply.payload["success"]:
            raise ProtocolFailure(f"version call failed: {clip(str(reply.payload['data']))}")
        return clip(str(reply.payload["data"]), 60), loop.time() - start

    async def sample() -> float:
        assert sub is not None
        await sub.first(lambda msg: msg.channel == stream and not msg.error)
        return loop.time() - start

    tasks: dict[str, asyncio.Task[Any]] = {"version": loop.create_task(round_trip())}
    if sub is not None:
        tasks["stream"] = loop.create_task(sample())
    try:
        await asyncio.wait(tasks.values(), timeout=crit)
    finally:
        for task in tasks.values():
            task.cancel()
        caller.close()
        if sub is not None:
            sub.close()
    return _verdict(tasks, stream, warn, crit)


def _outcome(task: asyncio.Task[Any]) -> tuple[Any, str | None]:
    """(result, None) for a task that finished well, (None, why not) otherwise."""
    if not task.done() or task.cancelled():
        return None, "timeout"
    error = task.exception()
    return (None, str(error)) if error is not None else (task.result(), None)


def _verdict(tasks: dict[str, asyncio.Task[Any]], stream: str | None, warn: float, crit: float) -> ProbeReport:
    metrics: dict[str, float] = {}
    notes: list[str] = []
    problems: list[str] = []
    version, why = _outcome(tasks["version"])
    if version is None:
        problems.append(f"no reply to a version call within {crit:g} s" if why == "timeout" else str(why))
    else:
        name, rtt = version
        metrics["call_rtt_seconds"] = round(rtt, 4)
        notes.append(f"server {name}, call round trip {duration_text(rtt)}")
    if stream is not None:
        waited, _ = _outcome(tasks["stream"])
        if waited is None:
            problems.append(f"no sample on {stream} within {crit:g} s")
        else:
            metrics["stream_wait_seconds"] = round(waited, 3)
            notes.append(f"{stream} seen after {duration_text(waited)}")
    return verdict(metrics, problems, notes, warn, crit)
