"""The client (plugin) side of a TracimDaemon (spec §10.1): registration with pongs and
re-registration when the daemon restarts, one-shot queries on a temporary socket, the probe."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import time
from dataclasses import dataclass
from typing import Any

from fieldctl.profiles import Profile
from fieldctl.protocols.core.errors import FieldctlError, NagiosCode, Timeout, UsageError
from fieldctl.protocols.core.limits import Limits
from fieldctl.protocols.core.message import IN, OUT, Message, link
from fieldctl.protocols.core.readable import duration_text, value_text
from fieldctl.protocols.sdk.contract import (
    CommandOutcome,
    Emit,
    Notify,
    ProbeReport,
)
from fieldctl.protocols.sdk.probing import verdict
from fieldctl.protocols.sdk.runners import documents
from fieldctl.protocols.transport.unix import SocketIdentity, socket_identity

from . import client_state, codec

#: Request type -> the reply type that answers it (§4); matching is by type only (§10.1.9).
REPLIES = {
    codec.GET_CLIENTS: codec.CLIENTS,
    codec.GET_ACCOUNT_INFO: codec.ACCOUNT_INFO,
    codec.PING: codec.PONG,
    codec.DO_REQUEST: codec.REQUEST_RESULT,
}
#: How often the client looks at the master socket file (a restarted daemon has a new one).
WATCH_S = 0.25


@dataclass
class Wiring:
    """How a tracim role is wired: the profile, both socket paths and the output callbacks."""

    profile: Profile
    channels: codec.Channels
    master: str
    path: str
    emit: Emit
    notify: Notify
    listening: str = "client"  # the endpoint name of our own socket: "master" when simulating

    @property
    def name(self) -> str:
        return self.profile.name

    def timeout(self, key: str, default: float) -> float:
        return float(self.profile.setting(f"timeouts.{key}", default))

    @functools.cached_property
    def limits(self) -> Limits:
        return self.profile.limits

    def reading(self, single_read: int | None = None) -> documents.Reading:
        """Each document within limits.max_frame_bytes and read_s (§10.1.3: to EOF, any size)."""
        return documents.Reading(self.timeout("read_s", 5.0), self.limits.max_frame_bytes, single_read)

    def decode(self, raw: bytes, *, direction: str = IN, peer: str | None = None) -> Message:
        """`endpoint` names the socket the document was written to."""
        return codec.decode(
            raw,
            profile=self.name,
            channels=self.channels,
            endpoint=self._endpoint(direction, peer),
            direction=direction,
            peer=peer,
            max_depth=self.limits.max_depth,
        )

    def sent(self, envelope: codec.Envelope, raw: bytes, peer: str) -> Message:
        """The Message for a document we encoded and sent to `peer`: built from its envelope."""
        return codec.message_of(
            envelope,
            raw,
            profile=self.name,
            channels=self.channels,
            endpoint=self._endpoint(OUT, peer),
            direction=OUT,
            peer=peer,
            max_depth=self.limits.max_depth,
        )

    def _endpoint(self, direction: str, peer: str | None) -> str:
        if direction == OUT:
            return "master" if peer == self.master else "client"
        return self.listening

    def refused(self, sender: str, reason: str) -> None:
        """A sender past a limit: a malformed Message and a warning line; we go on."""
        self.notify(f"{self.path}: dropped the connection of {sender}: {reason}")
        self.emit(codec.malformed(reason, profile=self.name, endpoint=self.listening))

    def listener(self, on_document: documents.OnDocument) -> documents.DocumentListener:
        """Our own socket: each connection one document."""
        return documents.DocumentListener(self.path, self.reading(), on_document, self.refused, backlog=64)

    async def send(self, destination: str, envelope: codec.Envelope) -> Message:
        """One document, one connection; warns first when the real daemon could not read it whole.
        Shown from the envelope, not parsed back."""
        raw = codec.encode(envelope.path, envelope.type, envelope.data)
        if destination == self.master and len(raw) > codec.DAEMON_READ_LIMIT:
            self.notify(
                f"a {len(raw)}-byte document is over the daemon's {codec.DAEMON_READ_LIMIT}-byte single "
                "read: a real TracimDaemon will cut it and reject it as invalid JSON"
            )
        await documents.send(destination, raw, self.timeout("send_s", 1.0))
        msg = self.sent(envelope, raw, destination)
        self.emit(msg)
        return msg


class Plugin:
    """`register`/`listen`: a registered client that answers pings, shows what arrives, notices a
    restarted daemon (a new master socket file, within WATCH_S + retry_s) or a silent one
    (heartbeat.stale_after_s), registers again, unregisters on exit."""

    def __init__(self, ctx: Wiring) -> None:
        self.ctx = ctx
        self.pid = str(os.getpid())
        self.foreign_pings = 0
        self.rules = client_state.Registration(
            ctx.profile.heartbeat.stale_after_s, ctx.timeout("retry_s", 1.0), time.monotonic()
        )

    def _link(self, change: client_state.LinkState | None) -> None:
        if change is not None:
            self.ctx.emit(link(self.ctx.name, "master", change.state, {"url": self.ctx.master, **change.detail}))

    def _registration(self, type_: str) -> codec.Envelope:
        path = self.ctx.path
        return codec.Envelope(path, type_, {"path": path, "pid": self.pid})

    async def run(self) -> None:
        async with self.ctx.listener(self._received):
            self.ctx.emit(link(self.ctx.name, "client", "bound", {"url": self.ctx.path}))
            try:
                await self._watch()
            finally:
                if self.rules.registered_as is not None:
                    with contextlib.suppress(FieldctlError):
                        await self.ctx.send(self.ctx.master, self._registration(codec.CLIENT_DELETE))

    async def _watch(self) -> None:
        while True:
            identity = socket_identity(self.ctx.master)
            register, change = self.rules.look(identity, time.monotonic())
            self._link(change)
            if register:
                assert identity is not None
                await self._register(identity)
            await asyncio.sleep(WATCH_S)

    async def _register(self, identity: SocketIdentity) -> None:
        try:
            await self.ctx.send(self.ctx.master, self._registration(codec.CLIENT_ADD))
        except FieldctlError as exc:
            self._link(self.rules.not_sent(str(exc)))
            return
        self._link(self.rules.sent(identity))

    async def _received(self, raw: bytes, _sender: str) -> None:
        msg = self.ctx.decode(raw)
        self.ctx.emit(msg)
        change, pong_to = self.rules.heard(msg, time.monotonic())
        self._link(change)
        if pong_to is None:
            return
        if not self._the_daemons(pong_to):
            self.foreign_pings += 1
            if self.foreign_pings == 1:  # one line, however many come
                named = pong_to if len(pong_to) <= 120 else pong_to[:120] + "..."
                self.ctx.notify(
                    f"a ping named {named}, not the daemon's socket {self.ctx.master}: not answered "
                    "(pongs go to the daemon only; further such pings are only shown)"
                )
            return
        try:
            await self.ctx.send(pong_to, codec.Envelope(self.ctx.path, codec.PONG))
        except FieldctlError as exc:
            self.ctx.notify(f"pong not delivered: {exc}")

    def _the_daemons(self, path: str) -> bool:
        """Whether `path` is the master socket (spelled as the daemon spells it, or otherwise): the
        only place a real daemon's ping names. Whoever else can write to our socket must not make
        us write to a socket of their choosing (docs/protocols/tracim.md §8)."""
        if path == self.ctx.master:
            return True
        named = socket_identity(path)
        return named is not None and named == socket_identity(self.ctx.master)


async def round_trip(ctx: Wiring, type_: str, data: Any, timeout: float) -> tuple[list[Message], float]:
    """One query on our own temporary socket (§10.1.9): the request and the reply of the matching
    type (whatever came in between is emitted, not kept). `timeout` bounds all of it; raises
    Timeout without a reply."""
    expected = REPLIES.get(type_)

    def reply(raw: bytes) -> Message | None:
        msg = ctx.decode(raw)
        ctx.emit(msg)
        return msg if msg.kind in (expected, codec.ACK) and not msg.error else None

    async def request() -> Message:
        return await ctx.send(ctx.master, codec.Envelope(ctx.path, type_, data))

    try:
        sent, answer, elapsed = await documents.exchange(ctx.path, ctx.reading(), ctx.refused, request, reply, timeout)
    except TimeoutError:
        raise Timeout(f"no {expected or 'reply'} from {ctx.master} within {timeout:g} s") from None
    return [sent, answer], elapsed


def command_type(profile: Profile, name: str) -> str:
    if name in profile.commands:
        return str(profile.commands[name].code)
    if name in REPLIES:
        return name
    known = ", ".join(profile.commands)
    raise UsageError(f"unknown command {name!r} (commands: {known})")


async def command(ctx: Wiring, name: str, data: Any, timeout: float) -> CommandOutcome:
    type_ = command_type(ctx.profile, name)
    if type_ == codec.DO_REQUEST:
        data = {} if data is None else data
        if not isinstance(data, dict):
            raise UsageError("do-request --data must be a JSON object: anything else kills the real daemon")
        ctx.notify(
            "the real daemon ignores every field of daemon_do_request and answers only when a GET of "
            "its Tracim API root returns 200"
        )
    messages, elapsed = await round_trip(ctx, type_, data, timeout)
    reply = messages[-1]
    if reply.kind == codec.ACK:
        return CommandOutcome(
            False, f"the daemon acknowledged {type_} without answering: it does not know it", messages
        )
    detail = describe(reply)
    summary = f"{reply.kind} in {duration_text(elapsed)}" + (f": {detail}" if detail else "")
    return CommandOutcome(True, summary, messages, result=reply.payload)  # the daemon's document


def describe(msg: Message) -> str:
    """The useful part of a daemon document, for the table and a command's summary."""
    body = msg.payload
    if msg.channel == codec.TRACIM_CHANNEL and isinstance(body, dict):
        return describe_tlm(body)
    if msg.kind == codec.CLIENTS and isinstance(body, list):
        listed = ", ".join(f"{c.get('path')} (pid {c.get('pid')})" for c in body if isinstance(c, dict))
        return f"{len(body)} client(s)" + (f": {listed}" if listed else "")
    if isinstance(body, dict) and msg.kind in (
        codec.CLIENT_ADD,
        codec.CLIENT_DELETE,
        codec.CLIENT_ADDED,
        codec.CLIENT_DELETED,
    ):
        return f"{body.get('path')} (pid {body.get('pid')})"
    if msg.kind == codec.ACCOUNT_INFO and isinstance(body, dict):
        return f"user_id {body.get('user_id')}"
    if msg.kind == codec.REQUEST_RESULT and isinstance(body, dict):
        return f"{body.get('Status')}, body {len(str(body.get('data', '')))} base64 chars"
    return "" if body is None else value_text(body)


def _label(value: Any, *keys: str) -> str | None:
    if not isinstance(value, dict):
        return None
    return next((str(value[key]) for key in keys if value.get(key) not in (None, "")), None)


def describe_tlm(tlm: dict[str, Any]) -> str:
    """#id, who, where, what: author, workspace, content (type), user, member role, reaction."""
    fields = tlm.get("fields")
    if not isinstance(fields, dict):
        fields = {}
    parts = [f"#{tlm.get('event_id')}"]
    for key, label in (
        ("author", "by"),
        ("workspace", "in"),
        ("content", ""),
        ("user", "user"),
        ("member", "role"),
        ("reaction", "reaction"),
        ("mention", "mention"),
        ("tag", "tag"),
    ):
        text = _label(fields.get(key), "public_name", "username", "label", "role", "value", "recipient", "tag_name")
        if text is not None:
            content_type = _label(fields.get(key), "content_type") if key == "content" else None
            text = f"{text} ({content_type})" if content_type else text
            parts.append(f"{label} {text}".strip())
    return " ".join(parts)


async def probe(ctx: Wiring, warn: float, crit: float) -> ProbeReport:
    """A ping on the master socket answered with a pong within the thresholds (§10.1.11)."""
    try:
        _, rtt = await round_trip(ctx, codec.PING, None, crit)
    except Timeout:
        return ProbeReport(
            NagiosCode.CRITICAL, f"no pong from {ctx.master} within {crit:g} s (daemon wedged?)", {}, warn, crit
        )
    return verdict(
        {"pong_rtt_seconds": round(rtt, 4)}, [], [f"pong from {ctx.master} in {duration_text(rtt)}"], warn, crit
    )
