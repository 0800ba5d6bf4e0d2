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
from fieldctl.protocols.core.errors import ConnectFailure, NagiosCode, ProtocolFailure, Timeout, UsageError
from fieldctl.protocols.core.limits import Limits
from fieldctl.protocols.core.message import IN, OUT, Message, link
from fieldctl.protocols.core.urls import remember_password
from fieldctl.protocols.sdk.contract import Emit, Notify, ProbeReport
from fieldctl.protocols.sdk.probing import verdict
from fieldctl.protocols.sdk.websocket_options import connection_settings
from fieldctl.protocols.transport import together, within
from fieldctl.protocols.transport.backoff import Backoff
from fieldctl.protocols.transport.websocket import Unreachable, keep_connected, open_connection, send_text

from . import answers, codec

ENDPOINT = "server"
CONFIG_PLACES = ("serverConfig/server.config", "server.config")
MAX_STATUS_BEFORE_CONFIGURE = 10


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


class Wire:
    """Sends and receives frames for one role, reporting each as a Message."""

    def __init__(self, profile: str, emit: Emit, limits: Limits) -> None:
        self.profile, self.emit, self.limits = profile, emit, limits

    def decode(self, frame: str | bytes, source: str, direction: str = IN) -> Message:
        return codec.decode(
            frame, profile=self.profile, endpoint=ENDPOINT, direction=direction, source=source, limits=self.limits
        )

    async def send(self, conn: Any, frame: dict[str, Any], source: str) -> Message:
        text = codec.encode(frame)
        await send_text(conn, text)
        msg = self.decode(text, source, OUT)
        self.emit(msg)
        return msg

    async def receive(self, conn: Any, source: str, timeout: float | None = None) -> Message:
        frame = await within(conn.recv(), timeout)  # cancelling recv() loses no data
        msg = self.decode(frame, source)
        self.emit(msg)
        return msg


def own_reconnect_secret(source: str, fixed: str | None) -> str:
    """This connector's reconnectSecret for `source`: ours, so masked for as long as we run (not
    only while it is a recent secret a peer offered)."""
    secret = codec.reconnect_secret(source, fixed)
    redact.remember(secret)
    return secret


class Refused(Exception):
    """connectExtension was refused (or no configuration came): back off, then try again."""


async def handshake(wire: Wire, conn: Any, s: Settings, source: str, secret: str) -> Message:
    """validate, then connectExtension; returns the configureExtension Message. A refused token
    ends everything at once (ConnectFailure, exit 3): no retry storm."""
    await wire.send(conn, codec.validate(s.token.reveal()), source)
    try:
        reply = await wire.receive(conn, source, s.timeout_s)
    except TimeoutError:
        raise ConnectFailure(f"{s.url}: no answer to validate within {s.timeout_s:g} s") from None
    answer = codec.frame_of(reply) if reply.error is None else reply.payload
    if reply.channel != codec.STATUS or reply.payload.get("status") != 200:
        raise ConnectFailure(f"{s.url} refused the access token (source {source}): {codec.refusal_text(answer)}")
    await connect_source(wire, conn, s, source, secret)
    return await await_configuration(wire, conn, s, source)


async def connect_source(wire: Wire, conn: Any, s: Settings, source: str, secret: str) -> None:
    await wire.send(conn, codec.connect_extension(source, secret), source)


async def await_configuration(wire: Wire, conn: Any, s: Settings, source: str) -> Message:
    """Skips up to 10 harmless status frames; a status >= 300 or anything else is a refusal."""
    for _ in range(MAX_STATUS_BEFORE_CONFIGURE + 1):
        try:
            msg = await wire.receive(conn, source, s.timeout_s)
        except TimeoutError:
            raise Refused(f"no configureExtension within {s.timeout_s:g} s") from None
        if msg.channel == codec.CONFIGURE and msg.error is None:
            return msg
        if msg.channel == codec.STATUS and msg.payload["status"] < 300:
            continue
        if msg.channel == codec.STATUS:
            raise Refused(f"connectExtension refused: {codec.refusal_text(codec.frame_of(msg))}")
        raise Refused(f"expected configureExtension, got {msg.error or msg.channel}")
    raise Refused(f"no configureExtension after {MAX_STATUS_BEFORE_CONFIGURE} status frames")


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
        self.wire = Wire(profile.name, emit, self.s.limits)
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
        self.secret = own_reconnect_secret(source, connector.s.fixed_secret)
        self.refusals = connector.backoff.delays()
        self.answering: set[asyncio.Task[None]] = set()

    def on_link(self, endpoint: str, state: str, detail: Any) -> None:
        self.c.emit(link(self.c.profile.name, endpoint, state, {"source": self.source, **(detail or {})}))

    async def run(self) -> None:
        await keep_connected(
            self.c.s.url,
            self.session,
            name=ENDPOINT,
            on_link=self.on_link,
            backoff=self.c.backoff,
            tls=self.c.tls,
            max_size=self.c.s.limits.max_frame_bytes,
            retry_first=self.c.backoff.max_retries is not None,
        )
        self.on_link(ENDPOINT, "stopped", {"reason": "the server asked this source to stop"})

    async def session(self, conn: Any) -> bool:
        with redact.connection():  # the credentials this server hands out are searched for while it lasts
            return await self._session(conn)

    async def _session(self, conn: Any) -> bool:
        try:
            configure = await handshake(self.c.wire, conn, self.c.s, self.source, self.secret)
            while True:
                self.refusals = self.c.backoff.delays()  # a configured source starts the count again
                self.on_link(ENDPOINT, "ready", {"config": configure.payload})
                await self.c.set_active(self.source, True)
                ending = await self.serve(conn)
                await self.c.set_active(self.source, False)
                if ending != codec.RECONNECT or not self.c.same_socket:
                    return ending == codec.TEST_CLOSE
                self.on_link(ENDPOINT, "reconnecting", {"socket": "same"})
                await connect_source(self.c.wire, conn, self.c.s, self.source, self.secret)
                configure = await await_configuration(self.c.wire, conn, self.c.s, self.source)
        except Refused as exc:
            await self.back_off(str(exc))
            return False
        finally:
            await self.c.set_active(self.source, False)
            await self.stop_answering()

    async def back_off(self, why: str) -> None:
        delay = next(self.refusals, None)
        if delay is None:
            raise ConnectFailure(f"source {self.source}: {why} (gave up after {self.c.backoff.max_retries} retries)")
        self.on_link(ENDPOINT, "retrying", {"in_s": round(delay, 2), "error": why})
        await asyncio.sleep(delay)

    async def serve(self, conn: Any) -> str:
        """Until reconnectRequired, testRequestsClientClose, or a closed socket (ConnectionClosed
        for an abnormal close; a normal close returns)."""
        async for frame in conn:
            msg = self.c.wire.decode(frame, self.source)
            self.c.emit(msg)
            if msg.error is not None:
                continue
            if msg.channel == codec.QUERY:
                if len(self.answering) >= self.c.concurrency:  # stop reading: the server waits, not our memory
                    await asyncio.wait(self.answering, return_when=asyncio.FIRST_COMPLETED)
                task = asyncio.ensure_future(self.answer(conn, msg))
                self.answering.add(task)
                task.add_done_callback(self.answering.discard)
            elif msg.channel in (codec.RECONNECT, codec.TEST_CLOSE):
                return msg.channel
            elif msg.channel == codec.STATUS and msg.payload["status"] >= 300:
                self.c.notify(f"source {self.source}: the server reported {codec.refusal_text(codec.frame_of(msg))}")
            elif msg.channel == codec.CONFIGURE:
                self.c.notify(f"source {self.source}: configureExtension while active ignored (use reconnectRequired)")
        self.on_link(ENDPOINT, "disconnected", {"code": conn.close_code})
        return "closed"

    async def answer(self, conn: Any, query: Message) -> None:
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
                    await self.c.wire.send(conn, codec.query_response(reply_to, status, body), source)
                    sent += 1
            except (ConnectionClosed, asyncio.CancelledError):
                raise
            except Exception as exc:  # noqa: BLE001  the server must get an answer whatever failed
                error = codec.query_error("fieldctl.query.failed", "Answering the query failed: {0}", [str(exc)])
                await self.c.wire.send(conn, codec.query_response(reply_to, codec.QUERY_ERROR, error), source)
        except (ConnectionClosed, asyncio.CancelledError):
            self.c.notify(
                f"source {source}: query {query.id} not fully answered: the connection closed after "
                f"{sent} response frame(s); the rest was not sent"
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
    wire = Wire(profile.name, emit, s.limits)
    by_source: dict[str, list[Message]] = {}
    for msg in messages:
        by_source.setdefault(str(msg.kind), []).append(msg)
    for source, batch in by_source.items():
        await _notify_as(wire, s, source, batch, tls, backoff, wait_s)


async def _notify_as(
    wire: Wire, s: Settings, source: str, batch: list[Message], tls: Any, backoff: Backoff, wait_s: float
) -> None:
    deadline = time.monotonic() + wait_s
    conn = await _open_within(s.url, tls, backoff, deadline, len(batch), s.limits)
    acked = sent = 0
    try:
        try:
            await handshake(wire, conn, s, source, own_reconnect_secret(source, s.fixed_secret))
        except Refused as exc:
            raise ConnectFailure(f"source {source}: {exc}; {len(batch)} notification(s) not sent") from None
        for msg in batch:
            await wire.send(conn, codec.notification(source, msg.payload), source)
            sent += 1
        while acked < sent:
            reply = await wire.receive(conn, source, max(0.0, deadline - time.monotonic()))
            if reply.channel == codec.STATUS and reply.payload["status"] < 300:
                acked += 1
    except TimeoutError:
        raise Timeout(f"source {source}: {acked} of {sent} notification(s) acknowledged within {wait_s:g} s") from None
    except ConnectionClosed:
        raise ProtocolFailure(
            f"source {source}: connection closed; {sent} of {len(batch)} notification(s) sent, {acked} acknowledged"
        ) from None
    finally:
        await conn.close()


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
    wire = Wire(profile.name, lambda msg: None, s.limits)
    source = s.sources[0] if s.sources else None
    start = time.monotonic()
    try:
        conn = await open_connection(s.url, tls=tls, timeout=crit, max_size=s.limits.max_frame_bytes)
    except ConnectFailure as exc:
        return NagiosCode.CRITICAL, str(exc)
    try:
        if source is None:
            await wire.send(conn, codec.validate(s.token.reveal()), "")
            reply = await wire.receive(conn, "", crit)
            if reply.channel != codec.STATUS or reply.payload.get("status") != 200:
                return NagiosCode.CRITICAL, f"token refused: {codec.refusal_text(reply.payload)}"
            text = "token accepted"
        else:
            await handshake(wire, conn, s, source, own_reconnect_secret(source, s.fixed_secret))
            text = f"source {source} configured"
        metrics["round_trip_seconds"] = round(time.monotonic() - start, 4)  # the answers, not the close
    except ConnectFailure as exc:
        return NagiosCode.CRITICAL, str(exc)
    except Refused as exc:
        return NagiosCode.WARNING, f"token accepted, source {source}: {exc}"
    except (TimeoutError, ConnectionClosed) as exc:
        return NagiosCode.CRITICAL, f"{s.url}: no complete answer ({exc or 'timeout'})"
    finally:
        await conn.close()
    return NagiosCode.OK, f"{text} in {metrics['round_trip_seconds']:.3f} s"
