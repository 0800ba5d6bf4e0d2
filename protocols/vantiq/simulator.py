"""The Vantiq side: `simulate vantiq`, a stand-in server for connector developers. Checks tokens,
configures sources, acknowledges notifications, and lets the operator (control path, scenario,
--reconnect-after) publish, query, ask for a reconnect, stop or close a source's connector."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import time
import uuid
from collections import deque
from pathlib import Path
from typing import Any

from websockets.exceptions import ConnectionClosed, ProtocolError

from fieldctl.profiles import Profile
from fieldctl.protocols import redact
from fieldctl.protocols.driver import CommandOutcome, Emit, Notify
from fieldctl.protocols.errors import RemoteFailure, UsageError
from fieldctl.protocols.limits import Limits
from fieldctl.protocols.message import IN, OUT, Message, link
from fieldctl.protocols.transport.websocket import send_text, start_server

from . import codec, scenario

ENDPOINT = "server"
#: Notifications a scenario's `notification` steps can still find (the newest ones).
KEPT_NOTIFICATIONS = 1000


def load_sources(profile: Profile, specs: list[str] | None) -> dict[str, Any]:
    """--source NAME[=CONFIG.json] (repeatable), else the profile's simulate.sources table."""
    if not specs:
        return dict(profile.setting("simulate.sources", {}))
    sources: dict[str, Any] = {}
    for spec in specs:
        name, _, path = spec.partition("=")
        if not name:
            raise UsageError(f"--source {spec!r}: expected NAME or NAME=CONFIG.json")
        try:
            sources[name] = json.loads(Path(path).read_text(encoding="utf-8")) if path else {}
        except OSError as exc:
            raise UsageError(f"--source {name}: {path}: cannot read: {exc.strerror}") from None
        except ValueError as exc:
            raise UsageError(f"--source {name}: {path}: not JSON: {exc}") from None
    return sources


def load_tokens(path: str | None) -> set[str] | None:
    """Accepted tokens, one a line (--token-file), else CONNECTOR_AUTH_TOKEN; None accepts any.
    Each is a secret from now on: a connector echoing one back does not get it shown."""
    if path:
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise UsageError(f"--token-file {path}: cannot read: {exc.strerror}") from None
        tokens = {line.strip() for line in lines if line.strip()}
    else:
        token = os.environ.get("CONNECTOR_AUTH_TOKEN")
        tokens = {token} if token else set()
    for token in tokens:
        redact.remember(token)
    return tokens or None


class Session:
    """One connector's websocket."""

    numbers = itertools.count(1)

    def __init__(self, conn: Any) -> None:
        self.conn, self.number = conn, next(self.numbers)
        self.authenticated = False
        self.source: str | None = None
        self.secret: Any = None
        self.queries: set[str] = set()
        self.malformed = 0
        self.refused = 0  # authentication attempts refused


class PendingQuery:
    def __init__(self, result: codec.QueryResult, emit: Emit) -> None:
        self.result, self.emit, self.done = result, emit, asyncio.Event()


class Simulator:
    def __init__(self, profile: Profile, options: dict[str, Any], emit: Emit, notify: Notify) -> None:
        self.profile, self.emit, self.notify = profile, emit, notify
        self.sources = load_sources(profile, options.get("sources"))
        self.tokens = load_tokens(options.get("token_file"))
        send = options.get("send") or profile.setting("simulate.send", "binary")
        if send not in ("binary", "text"):
            raise UsageError(f"--send {send}: expected binary or text")
        self.binary = send == "binary"
        self.reconnect_after = options.get("reconnect_after")
        self.query_timeout = float(options.get("query_timeout") or profile.setting("timeouts.query_s", 10.0))
        self.query_bytes = int(profile.setting("simulate.query_bytes_kept", 64 << 20))
        self.wait_s = float(profile.setting("simulate.wait_for_connector_s", 30.0))
        self.limits = Limits.of(profile)
        self.status_frames = int(profile.setting("simulate.status_before_configure", 1))
        self.active: dict[str, Session] = {}
        self.configured: dict[str, int] = {}
        #: (source, object) of recent notifications, kept only while a scenario may look for them.
        self.notifications: deque[tuple[str, Any]] | None = None
        self.pending: dict[str, PendingQuery] = {}
        self.changed = asyncio.Condition()
        self.url = profile.endpoints[ENDPOINT]

    # --- serving -------------------------------------------------------------------------------

    async def run(self, steps: list[Message] | None) -> None:
        if self.tokens is None:
            self.notify("no accepted token configured (--token-file or CONNECTOR_AUTH_TOKEN): accepting any token")
        if not self.sources:
            raise UsageError("no source to serve: give --source NAME[=CONFIG.json] or simulate.sources in the profile")
        if steps is not None:
            self.notifications = deque(maxlen=KEPT_NOTIFICATIONS)
        server, url = await start_server(self.url, self.handle, max_size=self.limits.max_frame_bytes)
        self.emit(link(self.profile.name, ENDPOINT, "bound", {"url": url, "sources": sorted(self.sources)}))
        try:
            if steps is None:
                await asyncio.get_running_loop().create_future()  # until cancelled
            else:
                await self.play(steps)
        finally:
            server.close()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 5)

    async def handle(self, conn: Any) -> None:
        session = Session(conn)
        path = conn.request.path if conn.request is not None else ""
        detail = {"conn": session.number, "peer": "%s:%s" % conn.remote_address[:2]}
        self.emit(link(self.profile.name, ENDPOINT, "connected", {**detail, "path": path}))
        if not codec.is_websocket_path(path):
            self.notify(f"connection {session.number}: path {path} is not /api/vN/wsock/websocket; closed")
            await conn.close(1008, "not a Vantiq websocket path")
            return
        sent_code = None
        try:
            async for frame in conn:
                await self.receive(session, frame)
        except ConnectionClosed as exc:
            sent_code = exc.sent.code if exc.sent is not None else None
        except Exception as exc:  # noqa: BLE001 - whatever one peer caused costs its connection only
            self.notify(f"connection {session.number}: dropped: {type(exc).__name__}: {codec.quoted(str(exc))}")
            sent_code = 1011
            await conn.close(1011, "internal error")
        finally:
            await self.forget(session)
            if sent_code == 1009:
                self.notify(f"connection {session.number}: a frame over {self.limits.max_frame_bytes} bytes "
                            "closed it (1009)")
            self.emit(link(self.profile.name, ENDPOINT, "disconnected",
                           {**detail, "source": session.source, "code": conn.close_code, "sent_code": sent_code,
                            "reason": conn.close_reason, "malformed": session.malformed}))

    async def forget(self, session: Session) -> None:
        for reply_to in session.queries:
            pending = self.pending.get(reply_to)
            if pending is not None and not pending.result.done:
                pending.result.problem = "the connection closed before the final response"
                pending.done.set()
        async with self.changed:
            if session.source is not None and self.active.get(session.source) is session:
                del self.active[session.source]
            self.changed.notify_all()

    async def send(self, session: Session, frame: dict[str, Any], emit: Emit | None = None) -> Message:
        text = codec.encode(frame)
        await send_text(session.conn, text, self.binary)
        msg = self.decode(text, session, OUT)
        self.emit(msg)
        if emit is not None:
            emit(msg)
        return msg

    def decode(self, frame: str | bytes, session: Session, direction: str = IN) -> Message:
        return codec.decode(frame, profile=self.profile.name, endpoint=ENDPOINT, direction=direction,
                            source=session.source or "", limits=self.limits)

    async def receive(self, session: Session, frame: str | bytes) -> None:
        msg = self.decode(frame, session)
        if not session.authenticated:
            await self.authenticate(session, frame, msg)
            return
        pending = self.pending.get(str(msg.id)) if msg.channel == codec.RESPONSE else None
        self.emit(msg)
        if msg.error is not None:
            await self.refuse_malformed(session, msg)
        elif msg.channel == codec.CONNECT:
            await self.connect(session, msg)
        elif msg.channel == codec.NOTIFICATION:
            await self.send(session, codec.status(200))
            if self.notifications is not None:
                async with self.changed:
                    self.notifications.append((str(msg.kind), msg.payload))
                    self.changed.notify_all()
        elif pending is not None:
            pending.emit(msg)
            if pending.result.add(msg.payload["status"], msg.payload.get("body"), time.monotonic(), len(msg.raw[0])):
                pending.done.set()
        elif msg.channel == codec.RESPONSE:
            self.notify(f"a response for reply address {msg.id}, which no open query has")
        elif msg.channel != codec.STATUS:
            self.notify(f"connection {session.number}: unexpected {msg.channel} from the connector, ignored")

    async def refuse_malformed(self, session: Session, msg: Message) -> None:
        """A status >= 300 with the list body: both SDKs log it and carry on (Java counts it as an
        acknowledgement). The first one per connection is also a warning line."""
        session.malformed += 1
        if session.malformed == 1:
            self.notify(f"connection {session.number}: malformed frame ({msg.error}): answered 400; "
                        "the connection stays open, further ones are only shown")
        await self.send(session, codec.refusal(400, "io.vantiq.message.malformed",
                                               f"Malformed message: {msg.error}"))

    async def authenticate(self, session: Session, frame: str | bytes, msg: Message) -> None:
        """The first frame must be validate with an accepted token; the token is never shown."""
        self.emit(msg)
        op, token = codec.credentials_of(frame, self.limits)
        if isinstance(token, str):
            redact.remember(token)  # even a wrong token is someone's credential, perhaps mistyped
        if op == codec.VALIDATE and (self.tokens is None or token in self.tokens):
            session.authenticated = True
            await self.send(session, codec.validated())
            return
        if op == codec.VALIDATE:
            why = "The supplied access token is not valid"
        elif op == codec.AUTHENTICATE:
            why = "User/password authentication is not simulated; use an access token"
        else:
            why = "The first message must authenticate (op validate)"
        session.refused += 1
        if session.refused == 1:  # one line per peer, however often it tries on this connection
            self.notify(f"connection {session.number}: authentication refused: {why}")
        await self.send(session, codec.refusal(codec.AUTH_REFUSED, "io.vantiq.authentication.failed", why))

    async def connect(self, session: Session, msg: Message) -> None:
        """connectExtension: known source, not held by another live connector unless the
        reconnect secret matches (takeover); same-socket reconnects (Java) come here too."""
        source = str(msg.kind)
        secret = msg.payload.get("reconnectSecret") if isinstance(msg.payload, dict) else None
        holder = self.active.get(source)
        if source not in self.sources:
            await self.send(session, codec.refusal(400, "io.vantiq.resource.not.found",
                                                   f"The source {source} does not have an associated stream", [source]))
            return
        if holder is not None and holder is not session:
            if secret is None or secret != holder.secret:
                await self.send(session, codec.refusal(400, "io.vantiq.source.in.use",
                                                       f"The source {source} is already served by another connector",
                                                       [source]))
                return
            self.notify(f"source {source}: reconnect secret matches, dropping connection {holder.number}")
            holder.source = None
            with contextlib.suppress(ConnectionClosed):
                await holder.conn.close(1000, "taken over")
        session.source, session.secret = source, secret
        async with self.changed:
            self.active[source] = session
            self.configured[source] = self.configured.get(source, 0) + 1
            self.changed.notify_all()
        for _ in range(self.status_frames):
            await self.send(session, codec.status(200))
        await self.send(session, codec.configure_extension(source, self.sources[source]))
        self.emit(link(self.profile.name, ENDPOINT, "configured", {"conn": session.number, "source": source}))
        if self.reconnect_after is not None and self.configured[source] == 1:
            asyncio.get_running_loop().call_later(float(self.reconnect_after), self._reconnect_later, source, session)

    def _reconnect_later(self, source: str, session: Session) -> None:
        if self.active.get(source) is session:
            asyncio.ensure_future(self._send_quietly(session, codec.reconnect_required(source)))

    async def _send_quietly(self, session: Session, frame: dict[str, Any]) -> None:
        """For timers: a connection gone meanwhile is reported by its handler, not as an
        unretrieved task exception."""
        with contextlib.suppress(ConnectionClosed):
            await self.send(session, frame)

    # --- operator actions (control path and scenario) ------------------------------------------

    def session_of(self, source: str) -> Session:
        session = self.active.get(source)
        if session is None:
            held = ", ".join(sorted(self.active)) or "none"
            raise RemoteFailure(f"source {source!r} has no connected connector (connected: {held})")
        return session

    async def wait_active(self, source: str, timeout: float, after: int = 0) -> bool:
        """Until `source` has a connector configured more than `after` times."""
        async with self.changed:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.changed.wait_for(
                    lambda: source in self.active and self.configured.get(source, 0) > after), timeout)
            return source in self.active and self.configured.get(source, 0) > after

    async def publish(self, source: str, obj: Any, emit: Emit | None = None) -> Message:
        return await self.send(self.session_of(source), codec.publish(source, obj), emit)

    async def query(self, source: str, params: Any, emit: Emit) -> codec.QueryResult:
        session = self.session_of(source)
        reply_to = str(uuid.uuid4())
        pending = PendingQuery(codec.QueryResult(source, reply_to, max_bytes=self.query_bytes), emit)
        self.pending[reply_to] = pending
        session.queries.add(reply_to)
        try:
            pending.result.sent_at = time.monotonic()
            await self.send(session, codec.query(source, params, reply_to), emit)
            try:
                await asyncio.wait_for(pending.done.wait(), self.query_timeout)
            except asyncio.TimeoutError:
                pending.result.problem = f"no final response within {self.query_timeout:g} s"
        except ConnectionClosed:
            pending.result.problem = "the connection closed before the query was sent"
        finally:
            del self.pending[reply_to]
            session.queries.discard(reply_to)
        return pending.result

    async def reconnect(self, source: str, emit: Emit | None = None) -> bool:
        """Sends reconnectRequired; True once the connector is configured again (either style)."""
        before = self.configured.get(source, 0)
        await self.send(self.session_of(source), codec.reconnect_required(source), emit)
        return await self.wait_active(source, self.wait_s, after=before)

    async def client_close(self, source: str, emit: Emit | None = None) -> bool:
        session = self.session_of(source)
        await self.send(session, codec.client_close(), emit)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(session.conn.wait_closed(), self.wait_s)
        return session.conn.close_code is not None

    async def close(self, source: str, code: int) -> None:
        try:
            await self.session_of(source).conn.close(code)
        except ProtocolError as exc:
            raise UsageError(f"close: {code} is not a WebSocket close code ({exc})") from None

    async def command(self, name: str, data: Any, emit: Emit) -> CommandOutcome:
        """`command vantiq NAME --via SOCKET`; data {"source": S, "params": {...}, "code": N}."""
        data = data if isinstance(data, dict) else {}
        source = data.get("source") or self._only_source()
        if not isinstance(source, str):
            raise UsageError(f"the source must be a name, not {json.dumps(source)[:40]}")
        start = time.monotonic()
        if name == "query":
            result = await self.query(source, data.get("params", {}), emit)
            return CommandOutcome(result.ok, result.summary(), rtt_s=result.rtt_s, result=result.rows)
        if name == "reconnect":
            ok = await self.reconnect(source, emit)
            return CommandOutcome(ok, f"source {source} " + ("configured again" if ok else "did not reconnect"),
                                  rtt_s=_since(start) if ok else None)
        if name == "test-close":
            ok = await self.client_close(source, emit)
            return CommandOutcome(ok, f"source {source}: connector " + ("closed" if ok else "did not close"),
                                  rtt_s=_since(start) if ok else None)
        if name == "close":
            code = data.get("code", 1000)
            if isinstance(code, bool) or not isinstance(code, int):
                raise UsageError(f"close: the code must be an integer, not {json.dumps(code)[:40]}")
            await self.close(source, code)
            return CommandOutcome(True, f"source {source}: connection closed with {code}", rtt_s=_since(start))
        raise UsageError(f"unknown vantiq command {name!r} (query, reconnect, test-close, close)")

    def _only_source(self) -> str:
        if len(self.active) != 1:
            raise UsageError(f"name the source in --data {{\"source\": ...}} (connected: {', '.join(sorted(self.active)) or 'none'})")
        return next(iter(self.active))

    # --- scenario ------------------------------------------------------------------------------

    async def play(self, messages: list[Message]) -> None:
        steps, skipped = scenario.steps_of(messages)
        if skipped:
            self.notify(f"scenario: skipped {skipped} line(s) that are not steps (responses, acks, link states)")
        failures: list[str] = []
        for number, step in enumerate(steps, 1):
            await asyncio.sleep(step.delay_s)
            problems = await self.perform(step)
            self.emit(Message(profile=self.profile.name, endpoint="scenario", direction=IN, channel="expect",
                              kind=step.source, id=number,
                              payload={"step": step.describe(), "ok": not problems, "problems": problems}))
            failures.extend(f"step {number} ({step.describe()}): {problem}" for problem in problems)
        if failures:
            raise RemoteFailure(f"{len(failures)} expectation(s) failed; first: {failures[0]}")

    async def perform(self, step: scenario.Step) -> list[str]:
        if step.action == codec.NOTIFICATION:
            return [] if await self._notified(step) else [f"no notification containing {step.data} within {self.wait_s:g} s"]
        if not await self.wait_active(step.source, self.wait_s):
            return [f"no connector for {step.source} within {self.wait_s:g} s"]
        try:
            if step.action == codec.PUBLISH:
                await self.publish(step.source, step.data)
            elif step.action == codec.QUERY:
                return scenario.check_query(step.expect, await self.query(step.source, step.data, lambda msg: None))
            elif step.action == codec.RECONNECT:
                return [] if await self.reconnect(step.source) else ["the connector did not reconnect"]
            elif step.action == codec.TEST_CLOSE:
                return [] if await self.client_close(step.source) else ["the connector did not close"]
            else:
                await self.close(step.source, int((step.data or {}).get("code", 1000)))
        except (ConnectionClosed, RemoteFailure) as exc:
            return [f"not sent: {exc}"]
        return []

    async def _notified(self, step: scenario.Step) -> bool:
        kept = self.notifications if self.notifications is not None else deque()

        def matched() -> bool:
            for index, (source, obj) in enumerate(kept):
                if source == step.source and scenario.contains(obj, step.data or {}):
                    del kept[index]
                    return True
            return False

        async with self.changed:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.changed.wait_for(matched), self.wait_s)
                return True
        return False


def _since(start: float) -> float:
    return round(time.monotonic() - start, 6)
