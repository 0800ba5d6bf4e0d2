"""The Vantiq side: `simulate vantiq`, a stand-in server for connector developers. Checks tokens,
configures sources, acknowledges notifications, and lets the operator (control path, scenario,
--reconnect-after) publish, query, ask for a reconnect, stop or close a source's connector."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

from websockets.exceptions import ConnectionClosed, ProtocolError

from fieldctl.profiles import Profile
from fieldctl.protocols.core import redact
from fieldctl.protocols.core.errors import RemoteFailure, UsageError
from fieldctl.protocols.core.message import IN, Message, link
from fieldctl.protocols.sdk.contract import CommandOutcome, Context, Emit, Simulation
from fieldctl.protocols.sdk.machine import Effects, Frame
from fieldctl.protocols.sdk.runners.stream_client import Driven, Link
from fieldctl.protocols.sdk.runners.stream_server import Arrivals, peer_of, serve_streams
from fieldctl.protocols.transport import LISTEN_REFUSED_AFTER_S, within

from . import codec, scenario, simulator_state
from .masking import scrubbed_errors, shown

ENDPOINT = "server"


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
    """One connector's connection (the runner's Link) and what the rules know of it. The Machine
    the stream runner drives: each frame is shown and handed to the rules, whose actions the
    simulator carries out, in order, once the frame is shown (Simulator.follow)."""

    def __init__(self, sim: Simulator, link: Link, peer: simulator_state.Peer) -> None:
        self.sim, self.link, self.peer = sim, link, peer
        self.actions: list[simulator_state.Action] = []
        self.detail = {"conn": peer.number, "peer": peer_of(link.conn)}

    def start(self, now: float) -> Effects:
        return Effects()

    def receive(self, frame: Frame, now: float) -> Effects:
        frame = frame if not isinstance(frame, tuple) else b"".join(frame)
        peer, limits = self.peer, self.sim.limits
        msg = codec.decode(
            frame, profile=self.sim.profile.name, endpoint=ENDPOINT, source=peer.source or "", limits=limits
        )
        if peer.authenticated:
            self.actions += self.sim.rules.receive(peer, msg, now)
        else:
            op, token = codec.credentials_of(frame, limits)
            redact.offered(token)  # even a wrong token is someone's credential, perhaps mistyped
            self.actions += self.sim.rules.authenticate(peer, op, token)
        return Effects(emit=[msg])

    def tick(self, now: float) -> Effects:
        return Effects()


class Simulator(Simulation):
    def __init__(self, profile: Profile, context: Context, steps: list[Message] | None) -> None:
        super().__init__(profile)
        self.emit, self.notify, self.steps = shown(context.emit), context.notify, steps
        options = context.options
        send = options.get("send") or profile.setting("simulate.send", "binary")
        if send not in ("binary", "text"):
            raise UsageError(f"--send {send}: expected binary or text")
        self.binary = send == "binary"
        self.reconnect_after = options.get("reconnect_after")
        self.query_timeout = float(options.get("query_timeout") or profile.setting("timeouts.query_s", 10.0))
        self.wait_s = float(profile.setting("simulate.wait_for_connector_s", 30.0))
        self.limits = profile.limits
        self.rules = simulator_state.Server(
            load_sources(profile, options.get("sources")),
            load_tokens(options.get("token_file")),
            status_frames=int(profile.setting("simulate.status_before_configure", 1)),
            query_bytes=int(profile.setting("simulate.query_bytes_kept", 64 << 20)),
        )
        self.sessions: dict[simulator_state.Peer, Session] = {}
        #: Open queries: reply address -> (where their responses are shown, set when they end).
        self.waiting: dict[str, tuple[Emit, asyncio.Event]] = {}
        self.arrivals = Arrivals()  # a connector configured, gone or notified: waits look again
        self.url = profile.endpoints[ENDPOINT]
        #: Reconnect requests on their way, held until sent: the loop keeps only weak references to tasks.
        self.reconnecting: set[asyncio.Task[None]] = set()

    # --- serving -------------------------------------------------------------------------------

    async def run(self) -> None:
        with scrubbed_errors():
            await self._run(self.steps)

    async def control(self, verb: str, msg: Message, emit: Emit) -> CommandOutcome:
        """`publish vantiq SOURCE --data J --via S` publishes to SOURCE's connector;
        `command vantiq query|reconnect|test-close|close --data J --via S` acts on it."""
        emit = shown(emit)  # the asking process has not seen the secrets this one knows
        with scrubbed_errors():
            if verb == "publish":
                sent = await self.publish(str(msg.kind), msg.payload, emit)
                return CommandOutcome(True, f"published to {msg.kind}", [redact.scrub(sent)])
            outcome = await self.command(str(msg.kind), msg.payload, emit)
        outcome.summary = redact.scrub_text(outcome.summary)
        return outcome

    async def _run(self, steps: list[Message] | None) -> None:
        if self.rules.tokens is None:
            self.notify("no accepted token configured (--token-file or CONNECTOR_AUTH_TOKEN): accepting any token")
        if not self.rules.sources:
            raise UsageError("no source to serve: give --source NAME[=CONFIG.json] or simulate.sources in the profile")
        if steps is not None:
            self.rules.keep_notifications()
        server, url = await serve_streams(
            self.url,
            self.accept,
            self.emit,
            self.notify,
            ended=self.ended,
            after=self.follow,
            failed=self.failed,
            max_size=self.limits.max_frame_bytes,
            ping_interval=20.0,
            binary=lambda: self.binary,
        )
        self.emit(link(self.profile.name, ENDPOINT, "bound", {"url": url, "sources": sorted(self.rules.sources)}))
        try:
            if steps is None:
                await asyncio.get_running_loop().create_future()  # until cancelled
            else:
                await self.play(steps)
        finally:
            server.close()
            with contextlib.suppress(asyncio.TimeoutError):
                await within(server.wait_closed(), 5)

    async def accept(self, link_: Link) -> Session | None:
        session = Session(self, link_, self.rules.open())
        request = link_.conn.request
        path = request.path if request is not None else ""
        self.emit(link(self.profile.name, ENDPOINT, "connected", {**session.detail, "path": path}))
        if not codec.is_websocket_path(path):
            self.notify(f"connection {session.peer.number}: path {path} is not /api/vN/wsock/websocket; closed")
            await link_.close(1008, "not a Vantiq websocket path")
            return None
        self.sessions[session.peer] = session
        return session

    async def follow(self, session: Session, link_: Link) -> None:
        actions, session.actions = session.actions, []
        await self.carry_out(actions)

    async def failed(self, link_: Link, session: Session, exc: Exception) -> None:
        """Whatever one peer caused costs its connection only."""
        self.notify(f"connection {session.peer.number}: dropped: {type(exc).__name__}: {codec.quoted(str(exc))}")
        await link_.close(1011, "internal error")

    def ended(self, link_: Link, session: Session, driven: Driven | None) -> None:
        sent_code = 1011 if driven is None else driven.sent_code
        peer = session.peer
        self.forget(session)
        if sent_code == 1009:
            self.notify(f"connection {peer.number}: a frame over {self.limits.max_frame_bytes} bytes closed it (1009)")
        self.emit(
            link(
                self.profile.name,
                ENDPOINT,
                "disconnected",
                {
                    **session.detail,
                    "source": peer.source,
                    "code": link_.close_code,
                    "sent_code": sent_code,
                    "reason": link_.close_reason,
                    "malformed": peer.malformed,
                },
            )
        )

    def forget(self, session: Session) -> None:
        for reply_to in self.rules.close(session.peer):
            self.waiting[reply_to][1].set()
        del self.sessions[session.peer]
        self.arrivals.changed()

    async def send(self, session: Session, frame: dict[str, Any], emit: Emit | None = None) -> Message:
        text = codec.encode(frame)
        await session.link.send(text)
        msg = codec.sent(frame, text, profile=self.profile.name, endpoint=ENDPOINT, source=session.peer.source or "")
        self.emit(msg)
        if emit is not None:
            emit(msg)
        return msg

    async def carry_out(self, actions: list[simulator_state.Action]) -> None:
        """Carries out what the rules decided, in order."""
        changed = False
        for action in actions:
            if isinstance(action, simulator_state.Send):
                await self.send(self.sessions[action.peer], action.frame)
            elif isinstance(action, simulator_state.Warn):
                self.notify(action.text)
            elif isinstance(action, simulator_state.Answered):
                emit, done = self.waiting[action.reply_to]
                emit(action.msg)
                if action.done:
                    done.set()
            elif isinstance(action, simulator_state.TakeOver):
                with contextlib.suppress(ConnectionClosed):
                    await self.sessions[action.holder].link.close(1000, "taken over")
            elif isinstance(action, simulator_state.Configured):
                changed = True
                self.emit(
                    link(
                        self.profile.name, ENDPOINT, "configured", {"conn": action.peer.number, "source": action.source}
                    )
                )
                if self.reconnect_after is not None and action.first:
                    asyncio.get_running_loop().call_later(
                        float(self.reconnect_after), self._reconnect_later, action.source, action.peer
                    )
            else:  # Notified
                changed = True
        if changed:
            self.arrivals.changed()

    def _reconnect_later(self, source: str, peer: simulator_state.Peer) -> None:
        if self.rules.active.get(source) is peer:
            task = asyncio.ensure_future(self._send_quietly(self.sessions[peer], codec.reconnect_required(source)))
            self.reconnecting.add(task)
            task.add_done_callback(self.reconnecting.discard)

    async def _send_quietly(self, session: Session, frame: dict[str, Any]) -> None:
        """For timers: a connection gone meanwhile is reported by its handler, not as an
        unretrieved task exception."""
        with contextlib.suppress(ConnectionClosed):
            await self.send(session, frame)

    # --- operator actions (control path and scenario) ------------------------------------------

    def session_of(self, source: str) -> Session:
        return self.sessions[self.rules.peer_of(source)]

    async def wait_active(self, source: str, timeout: float, after: int = 0) -> bool:
        """Until `source` has a connector configured more than `after` times."""
        return await self.arrivals.until(lambda: self.rules.configured_after(source, after), timeout)

    async def publish(self, source: str, obj: Any, emit: Emit | None = None) -> Message:
        await self.wait_active(source, LISTEN_REFUSED_AFTER_S)
        return await self.send(self.session_of(source), codec.publish(source, obj), emit)

    async def query(self, source: str, params: Any, emit: Emit) -> codec.QueryResult:
        reply_to = str(uuid.uuid4())
        peer, frame, _ = self.rules.begin_query(source, params, reply_to, time.monotonic())
        done = asyncio.Event()
        self.waiting[reply_to] = (emit, done)
        problem = None
        try:
            await self.send(self.sessions[peer], frame, emit)
            try:
                await within(done.wait(), self.query_timeout)
            except TimeoutError:
                problem = f"no final response within {self.query_timeout:g} s"
        except ConnectionClosed:
            problem = "the connection closed before the query was sent"
        finally:
            del self.waiting[reply_to]
            result = self.rules.end_query(peer, reply_to, problem)
        return result

    async def reconnect(self, source: str, emit: Emit | None = None) -> bool:
        """Sends reconnectRequired; True once the connector is configured again (either style)."""
        before = self.rules.configured.get(source, 0)
        await self.send(self.session_of(source), codec.reconnect_required(source), emit)
        return await self.wait_active(source, self.wait_s, after=before)

    async def client_close(self, source: str, emit: Emit | None = None) -> bool:
        session = self.session_of(source)
        await self.send(session, codec.client_close(), emit)
        with contextlib.suppress(asyncio.TimeoutError):
            await within(session.link.wait_closed(), self.wait_s)
        return session.link.close_code is not None

    async def close(self, source: str, code: int) -> None:
        try:
            await self.session_of(source).link.close(code)
        except ProtocolError as exc:
            raise UsageError(f"close: {code} is not a WebSocket close code ({exc})") from None

    async def command(self, name: str, data: Any, emit: Emit) -> CommandOutcome:
        """`command vantiq NAME --via SOCKET`; data {"source": S, "params": {...}, "code": N}."""
        data = data if isinstance(data, dict) else {}
        source = data.get("source")
        if not source:
            await self.arrivals.until(lambda: bool(self.rules.active), LISTEN_REFUSED_AFTER_S)
            source = self._only_source()
        if not isinstance(source, str):
            raise UsageError(f"the source must be a name, not {json.dumps(source)[:40]}")
        await self.wait_active(source, LISTEN_REFUSED_AFTER_S)
        start = time.monotonic()
        if name == "query":
            result = await self.query(source, data.get("params", {}), emit)
            return CommandOutcome(result.ok, result.summary(), rtt_s=result.rtt_s, result=result.rows)
        if name == "reconnect":
            ok = await self.reconnect(source, emit)
            return CommandOutcome(
                ok,
                f"source {source} " + ("configured again" if ok else "did not reconnect"),
                rtt_s=_since(start) if ok else None,
            )
        if name == "test-close":
            ok = await self.client_close(source, emit)
            return CommandOutcome(
                ok,
                f"source {source}: connector " + ("closed" if ok else "did not close"),
                rtt_s=_since(start) if ok else None,
            )
        if name == "close":
            code = data.get("code", 1000)
            if isinstance(code, bool) or not isinstance(code, int):
                raise UsageError(f"close: the code must be an integer, not {json.dumps(code)[:40]}")
            await self.close(source, code)
            return CommandOutcome(True, f"source {source}: connection closed with {code}", rtt_s=_since(start))
        raise UsageError(f"unknown vantiq command {name!r} (query, reconnect, test-close, close)")

    def _only_source(self) -> str:
        source = self.rules.only_source()
        if source is None:
            connected = ", ".join(sorted(self.rules.active)) or "none"
            raise UsageError(f'name the source in --data {{"source": ...}} (connected: {connected})')
        return source

    # --- scenario ------------------------------------------------------------------------------

    async def play(self, messages: list[Message]) -> None:
        steps, skipped = scenario.steps_of(messages)
        if skipped:
            self.notify(f"scenario: skipped {skipped} line(s) that are not steps (responses, acks, link states)")
        failures: list[str] = []
        for number, step in enumerate(steps, 1):
            await asyncio.sleep(step.delay_s)
            problems = await self.perform(step)
            self.emit(
                Message(
                    profile=self.profile.name,
                    endpoint="scenario",
                    direction=IN,
                    channel="expect",
                    kind=step.source,
                    id=number,
                    payload={"step": step.describe(), "ok": not problems, "problems": problems},
                )
            )
            failures.extend(f"step {number} ({step.describe()}): {problem}" for problem in problems)
        if failures:
            raise RemoteFailure(f"{len(failures)} expectation(s) failed; first: {failures[0]}")

    async def perform(self, step: scenario.Step) -> list[str]:
        if step.action == codec.NOTIFICATION:
            return (
                []
                if await self._notified(step)
                else [f"no notification containing {step.data} within {self.wait_s:g} s"]
            )
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
        return await self.arrivals.until(lambda: self.rules.take_notification(step.source, step.data), self.wait_s)


def _since(start: float) -> float:
    return round(time.monotonic() - start, 6)
