"""The platform side (`simulate sepl`): accepts connector logins, keeps gateways and devices
(registry), answers requests as the Go connector does, pushes commands and times the answers,
pings until the client pings, and enforces the read deadline (spec §3, §5, §13, §16.2)."""

from __future__ import annotations

import asyncio
import datetime
import json
import ssl
import time
import uuid
from pathlib import Path
from typing import Any

from websockets.exceptions import ConnectionClosed

from fieldctl.profiles import Profile
from fieldctl.profiles.secrets import Secret
from fieldctl.protocols.core import redact
from fieldctl.protocols.core.errors import Timeout, UsageError
from fieldctl.protocols.core.limits import Malformed
from fieldctl.protocols.core.message import IN, OUT, Message, link
from fieldctl.protocols.core.readable import value_text
from fieldctl.protocols.sdk.contract import CommandOutcome, Context, Emit, Simulation
from fieldctl.protocols.sdk.machine import Effects, Frame
from fieldctl.protocols.sdk.runners.stream_client import Driven, Link
from fieldctl.protocols.sdk.runners.stream_server import Arrivals, peer_of, serve_streams
from fieldctl.protocols.transport import LISTEN_REFUSED_AFTER_S, within
from fieldctl.protocols.transport.websocket import as_text, drop, watch_frames

from . import codec
from .codec import ENDPOINT
from .connection import scrubbed
from .simulator_state import Registry, Session

TOO_MANY_ERRORS = "ERROR: max consecutive error count exceeded"
READ_TIMEOUT = "read-error: i/o timeout"
RAW_SHOWN = 16384


def read_users(profile: Profile, options: dict[str, Any]) -> dict[str, Secret]:
    """Accepted logins: --users-file lines NAME=PASSWORD, else simulate.user with the profile's
    [auth] password reference (the same secret the connector side uses)."""
    path = options.get("users_file")
    if path:
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise UsageError(f"--users-file {path}: {exc.strerror}") from None
        users = {}
        for number, line in enumerate(lines, 1):
            if line.strip() and not line.startswith("#"):
                name, sep, password = line.strip().partition("=")
                if not sep or not name:
                    raise UsageError(f"--users-file {path}:{number}: expected NAME=PASSWORD")
                users[name] = Secret(password)
        return users
    user = profile.setting("simulate.user")
    if not user or "password" not in profile.auth:
        raise UsageError("no accepted logins: give --users-file FILE or set simulate.user and [auth] password")
    return {user: profile.auth["password"].resolve()}


def server_tls(options: dict[str, Any], url: str) -> ssl.SSLContext | None:
    if not url.startswith("wss://"):
        return None
    if not options.get("tls_cert"):
        raise UsageError(
            "a wss:// platform endpoint needs --tls-cert FILE (and --tls-key FILE unless the cert holds it)"
        )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(options["tls_cert"], options.get("tls_key"))
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"--tls-cert: {exc}") from None
    return context


def go_time_text(started: float) -> str:
    """The platform's ping payload: Go's Time.String() of its tick."""
    now = datetime.datetime.now().astimezone()
    return f"{now:%Y-%m-%d %H:%M:%S.%f} {now:%z} {now.tzname()} m=+{time.monotonic() - started:.9f}"


class Connected:
    """One connector's connection on the platform: the Machine the stream runner drives. Before
    the login it waits for the credentials (read_timeout_s; a refusal drops the TCP connection
    without a frame); after it, it answers requests as the Go connector does, pings every
    ping_period_s until the client pings, and closes when no frame came for read_timeout_s
    (every frame renews that, pings included: Platform._follow watches the control frames)."""

    def __init__(self, platform: Platform, link: Link) -> None:
        self.platform, self.link = platform, link
        self.peer = peer_of(link.conn)
        self.user = ""
        self.state: Session | None = None
        self.last_frame = 0.0
        self.next_ping: float | None = None
        self.client_pinged = False
        #: For Platform._follow: drop the connection / ping / announce the login, once the frame
        #: that asked for it is out.
        self.dropping = self.pinging = self.joining = False
        self.joined = False

    def start(self, now: float) -> Effects:
        self.last_frame = now
        return Effects(wake_at=now + self.platform.read_timeout_s)

    def seen(self, opcode: str) -> None:
        self.last_frame = asyncio.get_running_loop().time()  # every frame renews the read deadline
        if opcode == "ping":
            self.client_pinged = True

    def receive(self, frame: Frame, now: float) -> Effects:
        self.last_frame = now
        text = as_text(frame if not isinstance(frame, tuple) else b"".join(frame))
        return self._login(text, now) if self.state is None else self._request(text)

    def _login(self, text: str, now: float) -> Effects:
        """Credentials first (no envelope); a refusal drops the TCP connection without a frame."""
        plat = self.platform
        name = plat.profile.name
        try:
            creds = codec.parse_object(text)
        except Malformed as exc:
            self.dropping = True
            # never echo the frame: it may hold a password
            return Effects(
                emit=[codec.malformed_message(name, IN, b"", f"credentials frame: {exc}")],
                warn=[f"connection from {self.peer}: credentials frame is not a JSON object ({exc}); dropped"],
            )
        effects = Effects(emit=[codec.credentials_message(name, IN, creds)])
        verdict = plat.registry.login(creds, plat.users)
        if verdict.session is None:
            self.dropping = True
            if verdict.undecodable:
                effects.warn.append(f"connection from {self.peer}: {verdict.refused}; dropped")
                effects.emit.append(link(name, ENDPOINT, "refused", {"reason": verdict.refused}))
            else:
                effects.emit.append(link(name, ENDPOINT, "refused", {"user": verdict.user, "reason": verdict.refused}))
            return effects
        self.user, self.state, self.joining = verdict.user, verdict.session, True
        gateway = verdict.session.gateway
        envelope = codec.login_answer_envelope(verdict.token, gateway.gid, gateway.hash)
        text = codec.go_frame(envelope)
        effects.send.append(text)
        effects.emit.append(plat._sent(envelope, text, "login"))
        self.next_ping = now + plat.ping_period_s
        effects.wake_at = self._due()
        return effects

    def _request(self, text: str) -> Effects:
        plat, state = self.platform, self.state
        assert state is not None  # _login set it
        envelope = plat._show(text)
        answers = state.handle(text, envelope)
        if envelope is not None and envelope.get("handler") == "response":
            plat._responded(envelope)
        effects = Effects()
        for answer in answers:
            reply = codec.platform_envelope(answer.status, "response", answer.token, answer.payload)
            frame = codec.go_frame(reply)
            effects.send.append(frame)
            effects.emit.append(plat._sent(reply, frame, answer.handler or "response"))
        plat.arrivals.changed()
        if state.consecutive_errors > plat.max_errors:
            effects.close = TOO_MANY_ERRORS
        effects.wake_at = self._due()
        return effects

    def _due(self) -> float:
        deadline = self.last_frame + self.platform.read_timeout_s
        return deadline if self.client_pinged or self.next_ping is None else min(deadline, self.next_ping)

    def tick(self, now: float) -> Effects:
        if now >= self.last_frame + self.platform.read_timeout_s:
            if self.state is None:
                self.dropping = True
                return Effects()
            return Effects(close=READ_TIMEOUT)
        if self.next_ping is not None and not self.client_pinged and now >= self.next_ping:
            self.pinging, self.next_ping = True, now + self.platform.ping_period_s
        return Effects(wake_at=self._due())


#: `publish sepl oversize --data N`: a fault test, not a way to make the simulator allocate gigabytes.
OVERSIZE_MAX = 256 << 20


class Platform(Simulation):
    def __init__(self, profile: Profile, context: Context, scenario: list[Message] | None) -> None:
        super().__init__(profile)
        options, self.notify, self.scenario = context.options, context.notify, scenario
        self.emit = scrubbed(context.emit)  # a connector may send a known password anywhere
        self.max_size = profile.limits.max_frame_bytes
        self.url = profile.endpoints[ENDPOINT]
        self.tls = server_tls(options, self.url)
        self.users = read_users(profile, options)
        self.registry = Registry(
            list(profile.setting("simulate.services", ["sepl_get", "sepl_set"])),
            str(profile.setting("simulate.gid_prefix", "fieldctl-gateway-")),
        )
        self.binary = (options.get("send") or profile.setting("simulate.send", "text")) == "binary"
        self.ping_period_s = float(profile.setting("simulate.ping_period_s", 20.0))
        self.read_timeout_s = float(profile.setting("simulate.read_timeout_s", 40.0))
        self.max_errors = int(profile.setting("simulate.max_consecutive_errors", 5))
        self.command_s = float(profile.setting("timeouts.command_s", 10.0))
        self.connected: list[Connected] = []
        self.arrivals = Arrivals()  # a login, logout or request: commands and scenario steps look again
        self.awaiting: dict[str, asyncio.Future[dict[str, Any]]] = {}  # command task_id -> its response
        self.started = time.monotonic()

    # --- serving -------------------------------------------------------------------------------

    async def run(self) -> None:
        scenario = self.scenario
        server, url = await serve_streams(
            self.url,
            self._accept,
            self.emit,
            self.notify,
            ended=self._ended,
            after=self._follow,
            failed=self._failed,
            tls=self.tls,
            max_size=self.max_size,
            binary=lambda: self.binary,
        )
        self.emit(link(self.profile.name, ENDPOINT, "bound", {"url": url}))
        try:
            if scenario:
                await self._play(scenario)
            await asyncio.get_running_loop().create_future()  # until cancelled
        finally:
            server.close()
            await server.wait_closed()

    async def control(self, verb: str, msg: Message, emit: Emit) -> CommandOutcome:
        """`command sepl DEVICE:SERVICE --data J --via S` pushes a command and reports the
        connector's answer and its latency. Fault injection: `publish sepl raw --data '"TEXT"' --via S`
        sends TEXT as one frame, `publish sepl oversize --data N` a JSON string of N characters,
        `publish sepl close` closes every connection."""
        kind = str(msg.kind)
        if verb == "publish" and kind == "raw":
            return await self.broadcast_raw(
                msg.payload if isinstance(msg.payload, str) else codec.go_json(msg.payload), emit
            )
        if verb == "publish" and kind == "oversize" and isinstance(msg.payload, int):
            if not 0 <= msg.payload <= OVERSIZE_MAX:
                raise UsageError(f"publish sepl oversize --data N: N from 0 to {OVERSIZE_MAX}")
            return await self.broadcast_raw(codec.go_json("x" * msg.payload), emit)
        if verb == "publish" and kind == "close":
            return await self.close_all("closed by fieldctl")
        device, sep, service = kind.partition(":")
        if not sep or not device or not service:
            return CommandOutcome(False, f"expected DEVICE:SERVICE, got {kind!r}")
        return await self.command(device, service, msg.payload, emit)

    def _show(self, text: str) -> dict[str, Any] | None:
        """A connector's frame, shown; its envelope, or None when it is not one."""
        envelope, msg = codec.decode_frame(self.profile.name, IN, text, from_client=True)
        self.emit(msg)
        return envelope

    def _sent(self, envelope: dict[str, Any], text: str, answered: str | None = None) -> Message:
        """The Message for a frame we wrote: built from its envelope, not parsed back."""
        return codec.envelope_message(
            self.profile.name, OUT, envelope, text.encode("utf-8"), from_client=False, answered=answered
        )

    async def _accept(self, link_: Link) -> Connected:
        return Connected(self, link_)

    async def _follow(self, client: Connected, link_: Link) -> Effects | None:
        """What the connection's Machine asked for once its frames are out: the login announced
        (only now may commands reach it), a refused peer dropped, the platform's ping."""
        if client.dropping:
            client.dropping = False
            drop(link_.conn)
        if client.joining and client.state is not None:
            client.joining, client.joined = False, True
            watch_frames(link_.conn, client.seen)
            self.connected.append(client)
            self.arrivals.changed()
            self.emit(
                link(
                    self.profile.name,
                    ENDPOINT,
                    "logged-in",
                    {
                        "user": client.user,
                        "gid": client.state.gateway.gid,
                        "hash": client.state.gateway.hash,
                        "listening": sorted(client.state.listening),
                    },
                )
            )
        if client.pinging:
            client.pinging = False
            await link_.ping(go_time_text(self.started))
        return None  # nothing more for the Machine

    async def _failed(self, link_: Link, client: Connected, exc: Exception) -> None:
        """Whatever one connector does, the others are still served."""
        self.notify(
            redact.scrub_text(f"connection from {client.peer} dropped: {type(exc).__name__}: {codec.quoted(str(exc))}")
        )
        drop(link_.conn)

    def _ended(self, link_: Link, client: Connected, driven: Driven | None) -> None:
        if driven is not None and driven.sent_code == 1009:
            self.emit(
                codec.malformed_message(
                    self.profile.name, IN, b"", f"frame over the size limit from {client.peer}; closed 1009"
                )
            )
        if client.joined and client.state is not None:
            self.connected.remove(client)
            self.arrivals.changed()
            self.emit(
                link(
                    self.profile.name,
                    ENDPOINT,
                    "disconnected",
                    {"gid": client.state.gateway.gid, "code": link_.close_code},
                )
            )

    def _responded(self, envelope: dict[str, Any]) -> None:
        payload = envelope.get("payload")
        future = self.awaiting.get(codec.text_of(payload.get("task_id")) if isinstance(payload, dict) else "")
        if future is not None and not future.done():
            future.set_result(envelope)

    # --- commands (scenario and control path) ----------------------------------------------------

    def listeners(self, device: str) -> list[Connected]:
        return [c for c in self.connected if c.state is not None and device in c.state.listening]

    async def _listeners_within(self, device: str, timeout: float | None) -> list[Connected]:
        """The sessions listening to `device`, once there is one: a script starts the platform, its
        connector and a command at once, as `publish` waits for a subscriber."""
        await self.arrivals.until(lambda: bool(self.listeners(device)), timeout)
        return self.listeners(device)

    async def command(self, device: str, service: str, data: Any, emit: Emit) -> CommandOutcome:
        """Pushes one standard-connector command to every session listening to `device` and waits
        for the first response: the outcome, with the latency and the response's data part as result."""
        targets = await self._listeners_within(device, LISTEN_REFUSED_AFTER_S)
        if not targets:
            return CommandOutcome(
                False, f"no connected connector listens to device {device} (waited {LISTEN_REFUSED_AFTER_S:g} s)"
            )
        task_id = str(uuid.uuid4())
        payload = {
            "device_instance_id": f"iot#{uuid.uuid5(uuid.NAMESPACE_URL, device)}",
            "device_url": device,
            "output_name": "fieldctl",
            "protocol_parts": codec.parts(None, codec.as_part_text(data)),
            "service_name": service,
            "service_url": service,
            "task_id": task_id,
            "time": str(int(time.time())),
            "worker_id": str(uuid.uuid4()),
        }
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.awaiting[task_id] = future
        envelope = codec.command_envelope(payload)
        frame = codec.go_frame(envelope)
        sent = time.monotonic()
        try:
            if not await self._deliver(targets, frame):
                return CommandOutcome(False, f"the connector(s) listening to device {device} went away")
            shown = self._sent(envelope, frame)
            self.emit(shown)
            if emit is not self.emit:
                scrubbed(emit)(shown)
            try:
                response = await within(future, self.command_s)
            except TimeoutError:
                raise Timeout(f"no response to {device}:{service} within {self.command_s:g} s") from None
        finally:
            self.awaiting.pop(task_id, None)
        rtt_s = time.monotonic() - sent
        latency_ms = round(rtt_s * 1000, 3)
        parts = response["payload"].get("protocol_parts")  # _responded: a dict
        answer = {
            "latency_ms": latency_ms,
            "data": codec.part_value(parts, codec.DATA),
            "metadata": codec.part_value(parts, codec.METADATA),
            "task_id": task_id,
        }
        result = redact.scrub(
            Message(self.profile.name, ENDPOINT, IN, "latency", f"{device}:{service}", answer, task_id)
        )
        self.emit(result)
        if emit is not self.emit:
            emit(result)
        data = codec.part_data(result.payload["data"])  # shown once, as the data it is: the time is rtt_s
        return CommandOutcome(True, f"{device}:{service} answered", [result], rtt_s=rtt_s, result=data)

    async def broadcast_raw(self, text: str, emit: Emit) -> CommandOutcome:
        """Sends a frame as given to every connector (fault tests: malformed or oversized frames)."""
        delivered = await self._deliver(list(self.connected), text)
        # a huge frame is shown by its start and size: the control path carries lines of at most 64 KiB
        raw = (text.encode("utf-8"),) if len(text) <= RAW_SHOWN else ()
        msg = Message(self.profile.name, ENDPOINT, OUT, "raw", f"{len(text)} characters", text[:200], raw=raw)
        emit(msg)
        return CommandOutcome(delivered > 0, f"sent a {len(text)}-character frame to {delivered} connector(s)")

    async def _deliver(self, clients: list[Connected], text: str) -> int:
        """Sends `text` to each client; one that is going away is skipped (its own task reports
        the end). Returns how many got it."""
        delivered = 0
        for client in clients:
            try:
                await client.link.send(text)
                delivered += 1
            except ConnectionClosed:
                pass
        return delivered

    async def close_all(self, reason: str) -> CommandOutcome:
        count = len(self.connected)
        for client in list(self.connected):
            await client.link.close(1000, reason)
        return CommandOutcome(count > 0, f"closed {count} connection(s): {reason}")

    async def _play(self, scenario: list[Message]) -> None:
        """Scenario lines: channel command, kind DEVICE:SERVICE, payload = data; a following line
        with channel response (same kind) is the data the connector must answer with."""
        previous_ts: float | None = None
        for index, msg in enumerate(scenario):
            if msg.channel != "command":
                continue
            device, _, service = str(msg.kind).partition(":")
            if previous_ts is not None and msg.ts > previous_ts:
                await asyncio.sleep(msg.ts - previous_ts)
            previous_ts = msg.ts
            await self._listeners_within(device, None)
            outcome = await self.command(device, service, msg.payload, self.emit)
            data = outcome.messages[0].payload["data"] if outcome.messages else None  # the part's text
            expect = scenario[index + 1] if index + 1 < len(scenario) else None
            if expect is not None and expect.channel == "response" and not same_data(data, expect.payload):
                self.notify(f"scenario: {msg.kind} answered {value_text(data)}, expected {value_text(expect.payload)}")
                self.emit(
                    Message(
                        self.profile.name,
                        ENDPOINT,
                        IN,
                        "latency",
                        msg.kind,
                        outcome.summary,
                        error=f"expected {value_text(expect.payload)}",
                    )
                )


def same_data(received: Any, expected: Any) -> bool:
    """A data part (text) against what the scenario expects (text or JSON)."""
    if received == expected:
        return True
    try:
        return isinstance(received, str) and json.loads(received) == expected
    except ValueError:
        return False
