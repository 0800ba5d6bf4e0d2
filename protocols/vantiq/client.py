"""The connector side: `register vantiq` (one websocket per source: validate, connectExtension,
configuration, then publishes, queries and reconnectRequired), `publish vantiq SOURCE` (one
notification as that source's connector) and `probe vantiq`."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from websockets.exceptions import ConnectionClosed

from fieldctl.profiles import Profile
from fieldctl.profiles.secrets import Secret, SecretRef
from fieldctl.protocols.core import redact
from fieldctl.protocols.core.errors import ConnectFailure, NagiosCode, ProtocolFailure, UsageError
from fieldctl.protocols.core.limits import Limits
from fieldctl.protocols.core.message import OUT, Message, link
from fieldctl.protocols.core.urls import remember_password
from fieldctl.protocols.sdk.contract import Emit, Notify, ProbeReport
from fieldctl.protocols.sdk.probing import verdict
from fieldctl.protocols.sdk.runners.stream_client import Driven, Link, StreamClient, drive
from fieldctl.protocols.sdk.websocket_options import connection_settings
from fieldctl.protocols.transport import together, within
from fieldctl.protocols.transport.backoff import Backoff
from fieldctl.protocols.transport.websocket import Unreachable, open_connection

from . import answers, client_state, codec
from .client_state import ENDPOINT

CONFIG_PLACES = ("serverConfig/server.config", "server.config")


def read_server_config(path: str | None) -> codec.ServerConfig | None:
    """--config FILE, else serverConfig/server.config then server.config, as the SDKs look."""
    candidates = [path] if path else [p for p in CONFIG_PLACES if os.path.isfile(p)][:1]
    for candidate in candidates:
        try:
            text = Path(candidate).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"--config {candidate}: cannot read: {exc.strerror}") from None
        try:
            config = codec.ServerConfig.from_properties(codec.parse_properties(text))
        except ValueError as exc:
            raise UsageError(f"{candidate}: {exc}") from None
        remember_password(config.target_server or "")
        return config
    return None


def resolve_token(profile: Profile, options: dict[str, Any], config: codec.ServerConfig | None) -> Secret:
    """--token-file, else authToken from server.config, else the profile's reference
    (CONNECTOR_AUTH_TOKEN). The value only ever travels inside a Secret."""
    if options.get("token_file"):
        return SecretRef(file=options["token_file"]).resolve()
    if config is not None and config.token:
        return Secret(config.token)
    ref = profile.auth.get("token") or SecretRef(env="CONNECTOR_AUTH_TOKEN")
    try:
        return ref.resolve()
    except UsageError:
        raise UsageError(
            f"no access token: set {ref.describe().split(':', 1)[1]} ({ref.describe()}), "
            "or give --token-file FILE or authToken in server.config"
        ) from None


@dataclass
class Settings:
    url: str
    token: Secret
    sources: tuple[str, ...]
    fixed_secret: str | None
    timeout_s: float
    limits: Limits


def settings(profile: Profile, options: dict[str, Any], *, need_sources: bool = True) -> Settings:
    config = read_server_config(options.get("config"))
    try:
        url = (
            config.target_server
            if config and config.target_server
            else codec.normalize_url(profile.endpoints[ENDPOINT])
        )
    except ValueError as exc:
        raise UsageError(f"endpoint server: not a URL: {exc}") from None
    sources = tuple(
        options.get("sources") or (config.sources if config else ()) or profile.setting("connector.sources", [])
    )
    if need_sources and not sources:
        raise UsageError(
            "no source: give --source NAME, `sources` in server.config, or connector.sources in the profile"
        )
    return Settings(
        url=url,
        token=resolve_token(profile, options, config),
        sources=sources,
        fixed_secret=config.reconnect_secret if config else None,
        timeout_s=float(profile.setting("timeouts.connect_s", 10.0)),
        limits=profile.limits,
    )


def own_reconnect_secret(source: str, fixed: str | None) -> str:
    """This connector's reconnectSecret for `source`: ours, so masked for as long as we run (not
    only while it is a recent secret a peer offered)."""
    secret = codec.reconnect_secret(source, fixed)
    redact.remember(secret)
    return secret


def source_link(profile: str, s: Settings, source: str | None, **role: Any) -> client_state.SourceLink:
    """The Machine of one source's connection with these settings (the secret ours, remembered)."""
    secret = own_reconnect_secret(source, s.fixed_secret) if source is not None else ""
    token = s.token
    return client_state.SourceLink(profile, s.limits, s.url, s.timeout_s, token.reveal, source, secret, **role)


class HealthProbe:
    """The SDK's declare_healthy(): a TCP listener that accepts and closes at once, up while
    every source is active. Binds loopback unless register.health_host says otherwise (the SDK
    binds all interfaces)."""

    def __init__(self, host: str, port: int, emit: Emit, profile: str) -> None:
        self.host, self.port, self.emit, self.profile = host, port, emit, profile
        self.server: asyncio.Server | None = None

    async def declare(self, healthy: bool) -> None:
        if healthy and self.server is None:
            try:
                self.server = await asyncio.start_server(self._close_at_once, self.host, self.port)
            except OSError as exc:
                raise ConnectFailure(f"--health-port {self.port}: cannot listen: {exc.strerror}") from None
            self.emit(link(self.profile, "health", "healthy", {"port": self.port}))
        elif not healthy and self.server is not None:
            await self.close()
            self.emit(link(self.profile, "health", "unhealthy", {"port": self.port}))

    @staticmethod
    async def _close_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None


class Connector:
    """`register vantiq`: one SourceSession per source, all over the same URL and token."""

    def __init__(self, profile: Profile, options: dict[str, Any], emit: Emit, notify: Notify) -> None:
        self.profile, self.options, self.emit, self.notify = profile, options, emit, notify
        self.s = settings(profile, options)
        self.tls, self.backoff = connection_settings(self.s.url, options, notify)
        self.client = StreamClient(self.s.url, emit, notify, tls=self.tls, max_size=self.s.limits.max_frame_bytes)
        self.answers = make_answers(profile, options)
        self.concurrency = max(1, int(profile.setting("answers.concurrency", 8)))
        self.same_socket = bool(options.get("same_socket"))
        port = options.get("health_port")
        self.health = (
            HealthProbe(profile.setting("register.health_host", "127.0.0.1"), port, emit, profile.name)
            if port
            else None
        )
        self.active: set[str] = set()

    async def run(self) -> None:
        try:
            await together(*(SourceSession(self, source).run() for source in self.s.sources))
        finally:
            if self.health is not None:
                await self.health.close()

    async def set_active(self, source: str, active: bool) -> None:
        (self.active.add if active else self.active.discard)(source)
        if self.health is not None:
            await self.health.declare(self.active == set(self.s.sources))


def make_answers(profile: Profile, options: dict[str, Any]) -> Any:
    chunk = int(profile.setting("answers.chunk_rows", 100))
    if options.get("data_file") and options.get("answer_with"):
        raise UsageError("give --data-file or --answer-with, not both")
    if options.get("data_file"):
        return answers.DataFileAnswers(options["data_file"], chunk)
    if options.get("answer_with"):
        ref = profile.auth.get("token")
        token_variables = {"CONNECTOR_AUTH_TOKEN", *([ref.env] if isinstance(ref, SecretRef) and ref.env else [])}
        return answers.CommandAnswers(
            options["answer_with"],
            chunk,
            float(profile.setting("answers.timeout_s", 30.0)),
            answers.child_environment(token_variables),
        )
    return None


class SourceSession:
    """One source's websocket: reconnects with backoff, and stops for good on refused credentials
    or on the server's testRequestsClientClose."""

    def __init__(self, connector: Connector, source: str) -> None:
        self.c, self.source = connector, source
        self.refusals = connector.backoff.delays()
        self.answering: set[asyncio.Task[None]] = set()

    def on_link(self, endpoint: str, state: str, detail: Any) -> None:
        self.c.emit(link(self.c.profile.name, endpoint, state, {"source": self.source, **(detail or {})}))

    async def run(self) -> None:
        await self.c.client.keep(
            lambda: source_link(self.c.profile.name, self.c.s, self.source, stays=True, same_socket=self.c.same_socket),
            name=ENDPOINT,
            on_link=self.on_link,
            backoff=self.c.backoff,
            retry_first=self.c.backoff.max_retries is not None,
            done=self.ended,
            after=self.follow,
        )
        self.on_link(ENDPOINT, "stopped", {"reason": "the server asked this source to stop"})

    async def follow(self, machine: client_state.SourceLink, link: Link) -> None:
        """What the Machine cannot do: the health port follows whether the source is active; each
        new query gets its answer, at most `concurrency` at once (reading waits meanwhile: the
        server holds the rest, not our memory)."""
        if machine.active != (self.source in self.c.active):
            if machine.active:
                self.refusals = self.c.backoff.delays()  # a configured source starts the count again
            await self.c.set_active(self.source, machine.active)
        while machine.queries:
            if len(self.answering) >= self.c.concurrency:
                await asyncio.wait(self.answering, return_when=asyncio.FIRST_COMPLETED)
            task = asyncio.ensure_future(self.answer(link, machine.queries.pop(0)))
            self.answering.add(task)
            task.add_done_callback(self.answering.discard)

    async def ended(self, machine: client_state.SourceLink, driven: Driven) -> bool:
        await self.c.set_active(self.source, False)
        await self.stop_answering()
        if machine.failure is not None:
            raise machine.failure
        if machine.refused is not None:
            await self.back_off(machine.refused)
        return machine.ending == codec.TEST_CLOSE

    async def back_off(self, why: str) -> None:
        delay = next(self.refusals, None)
        if delay is None:
            raise ConnectFailure(f"source {self.source}: {why} (gave up after {self.c.backoff.max_retries} retries)")
        self.on_link(ENDPOINT, "retrying", {"in_s": round(delay, 2), "error": why})
        await asyncio.sleep(delay)

    async def answer(self, link: Link, query: Message) -> None:
        """Always answers, even when the answering itself fails; what the lost connection kept
        from being sent is reported, never dropped silently."""
        sent = 0
        source = self.source
        reply_to = query.id if isinstance(query.id, str) else None  # what the decoder sets: a string or None
        try:
            frames = (
                self.c.answers.frames(source, query.payload)
                if self.c.answers
                else _listed(answers.unanswerable(source))
            )
            try:
                async for status, body in frames:
                    await self.send(link, codec.query_response(reply_to, status, body))
                    sent += 1
            except (ConnectionClosed, asyncio.CancelledError):
                raise
            except Exception as exc:  # noqa: BLE001  the server must get an answer whatever failed
                error = codec.query_error("fieldctl.query.failed", "Answering the query failed: {0}", [str(exc)])
                await self.send(link, codec.query_response(reply_to, codec.QUERY_ERROR, error))
        except (ConnectionClosed, asyncio.CancelledError):
            self.c.notify(
                f"source {source}: query {query.id} not fully answered: the connection closed after "
                f"{sent} response frame(s); the rest was not sent"
            )

    async def send(self, link: Link, frame: dict[str, Any]) -> None:
        text = codec.encode(frame)
        await link.send(text)
        self.c.emit(
            codec.decode(
                text,
                profile=self.c.profile.name,
                endpoint=ENDPOINT,
                direction=OUT,
                source=self.source,
                limits=self.c.s.limits,
            )
        )

    async def stop_answering(self) -> None:
        for task in list(self.answering):
            task.cancel()
        await asyncio.gather(*self.answering, return_exceptions=True)


async def _listed(frames: list[answers.Frame]) -> Any:
    for frame in frames:
        yield frame


# --- publish: one notification as the source's connector ----------------------------------------


async def publish(
    profile: Profile, messages: list[Message], emit: Emit, notify: Notify, wait_s: float, options: dict[str, Any]
) -> None:
    """Connects as each message's source, sends its notification(s), waits for the server's
    acknowledgements and disconnects. What could not be sent or was not acknowledged is named
    in the error."""
    s = settings(profile, options, need_sources=False)
    tls, backoff = connection_settings(s.url, options, notify)
    by_source: dict[str, list[Message]] = {}
    for msg in messages:
        by_source.setdefault(str(msg.kind), []).append(msg)
    for source, batch in by_source.items():
        await _notify_as(profile.name, s, source, batch, emit, notify, tls, backoff, wait_s)


async def _notify_as(
    profile: str,
    s: Settings,
    source: str,
    batch: list[Message],
    emit: Emit,
    notify: Notify,
    tls: Any,
    backoff: Backoff,
    wait_s: float,
) -> None:
    deadline = asyncio.get_running_loop().time() + wait_s
    conn = await _open_within(s.url, tls, backoff, deadline, len(batch), s.limits)
    machine = source_link(
        profile, s, source, notifications=[msg.payload for msg in batch], acks_by=deadline, wait_s=wait_s
    )
    try:
        driven = await drive(conn, machine, emit, notify)
    finally:
        await conn.close()
    if machine.refused is not None:
        raise ConnectFailure(f"source {source}: {machine.refused}; {len(batch)} notification(s) not sent")
    if machine.failure is not None:
        raise machine.failure
    if driven.reason is None:
        raise ProtocolFailure(
            f"source {source}: connection closed; {machine.sent} of {len(batch)} notification(s) sent, "
            f"{machine.acked} acknowledged"
        )


async def _open_within(url: str, tls: Any, backoff: Backoff, deadline: float, pending: int, limits: Limits) -> Any:
    """Retries an unreachable server only when asked to (--max-retries), within the deadline."""
    delays = _bounded(backoff.delays(), deadline) if backoff.max_retries is not None else iter(())
    while True:
        try:
            return await open_connection(url, tls=tls, max_size=limits.max_frame_bytes)
        except Unreachable as exc:
            delay = next(delays, None)
            if delay is None:
                raise ConnectFailure(f"{exc}; {pending} notification(s) not sent") from None
            await asyncio.sleep(delay)


def _bounded(delays: Iterator[float], deadline: float) -> Iterator[float]:
    for delay in delays:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        yield min(delay, left)


# --- probe ---------------------------------------------------------------------------------------


async def probe(profile: Profile, warn: float, crit: float, options: dict[str, Any]) -> ProbeReport:
    """The TCP health port (--health-port) and/or a validate (+ connectExtension with --source)
    round trip; the slower part decides WARNING."""
    metrics: dict[str, float] = {}
    notes: list[str] = []
    port = options.get("health_port")
    if port:
        start = time.monotonic()
        try:
            _, writer = await within(asyncio.open_connection(profile.host, port), crit)
            writer.close()
        except (TimeoutError, OSError) as exc:
            return ProbeReport(
                NagiosCode.CRITICAL, f"health port {profile.host}:{port}: {exc or 'timeout'}", warn=warn, crit=crit
            )
        metrics["health_port_seconds"] = round(time.monotonic() - start, 4)
        notes.append(f"health port {port} open")
    if not port or options.get("sources") or options.get("token_file") or options.get("config"):
        status, text = await _round_trip(profile, options, crit, metrics)
        if status is not NagiosCode.OK:
            return ProbeReport(status, text, metrics, warn, crit)
        notes.append(text)
    return verdict(metrics, [], notes, warn, crit)


async def _round_trip(
    profile: Profile, options: dict[str, Any], crit: float, metrics: dict[str, float]
) -> tuple[NagiosCode, str]:
    s = settings(profile, options, need_sources=False)
    s.timeout_s = crit
    tls, _ = connection_settings(s.url, options, lambda text: None)
    source = s.sources[0] if s.sources else None
    machine = source_link(profile.name, s, source)
    client = StreamClient(s.url, lambda msg: None, lambda text: None, tls=tls, max_size=s.limits.max_frame_bytes)
    loop = asyncio.get_running_loop()
    start = loop.time()
    try:
        driven = await client.once(machine, crit)
    except ConnectFailure as exc:
        return NagiosCode.CRITICAL, str(exc)
    answered = machine.validated if source is None else machine.configured
    if source is None and machine.validated is not None:
        reply = machine.validated
        if reply.channel != codec.STATUS or reply.payload.get("status") != 200:
            return NagiosCode.CRITICAL, f"token refused: {codec.refusal_text(reply.payload)}"
    if machine.failure is not None:
        return NagiosCode.CRITICAL, str(machine.failure)
    if machine.refused is not None:
        return NagiosCode.WARNING, f"token accepted, source {source}: {machine.refused}"
    if answered is None or machine.answered_at is None:
        why = driven.why if driven.reason is None else "timeout"
        return NagiosCode.CRITICAL, f"{s.url}: no complete answer ({why})"
    metrics["round_trip_seconds"] = round(machine.answered_at - start, 4)  # the answers, not the close
    text = "token accepted" if source is None else f"source {source} configured"
    return NagiosCode.OK, f"{text} in {metrics['round_trip_seconds']:.3f} s"
