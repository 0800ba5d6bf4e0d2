"""The platform side (`simulate sepl`): accepts connector logins, keeps gateways and devices
(registry), answers requests as the Go connector does, pushes commands and times the answers,
pings until the client pings, and enforces the read deadline (spec §3, §5, §13, §16.2)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import ssl
import time
import uuid
from dataclasses import dataclass, field
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
from fieldctl.protocols.transport import LISTEN_REFUSED_AFTER_S, within
from fieldctl.protocols.transport.websocket import as_text, drop, send_text, start_server, watch_frames

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


@dataclass
class Connected:
    """One logged-in connector on the platform."""

    conn: Any
    user: str
    state: Session
    client_pinged: asyncio.Event = field(default_factory=asyncio.Event)
    last_frame: float = field(default_factory=time.monotonic)


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
        self.changed = asyncio.Event()  # a login, logout or request: scenario steps look again
        self.awaiting: dict[str, asyncio.Future[dict[str, Any]]] = {}  # command task_id -> its response
        self.started = time.monotonic()

    # --- serving -------------------------------------------------------------------------------

    async def run(self) -> None:
        scenario = self.scenario
        server, url = await start_server(
            self.url, self._serve, tls=self.tls, max_size=self.max_size, ping_interval=None
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

    async def _send(self, conn: Any, envelope: dict[str, Any], answered: str | None = None) -> None:
        text = codec.go_frame(envelope)
        await send_text(conn, text, self.binary)
        self.emit(self._sent(envelope, text, answered))

    async def _serve(self, conn: Any) -> None:
        with redact.connection():  # the password this connector offered is searched for while it is here
            await self._session(conn)

    async def _session(self, conn: Any) -> None:
        peer = conn.remote_address
        client: Connected | None = None
        try:
            client = await self._login(conn)
            if client is None:
                return
            pinger = asyncio.ensure_future(self._ping(client))
            try:
                await self._requests(client)
            finally:
                pinger.cancel()
        except ConnectionClosed as exc:
            if exc.sent is not None and exc.sent.code == 1009:
                self.emit(
                    codec.malformed_message(
                        self.profile.name, IN, b"", f"frame over the size limit from {peer}; closed 1009"
                    )
                )
        except Exception as exc:  # noqa: BLE001  whatever one connector does, the others are still served
            self.notify(
                redact.scrub_text(f"connection from {peer} dropped: {type(exc).__name__}: {codec.quoted(str(exc))}")
            )
            drop(conn)
        finally:
            if client is not None:
                self.connected.remove(client)
                self.changed.set()
                self.emit(
                    link(
                        self.profile.name,
                        ENDPOINT,
                        "disconnected",
                        {"gid": client.state.gateway.gid, "code": conn.close_code},
                    )
                )

    async def _login(self, conn: Any) -> Connected | None:
        """Credentials first (no envelope); a refusal drops the TCP connection without a frame."""
        peer = conn.remote_address
        try:
            text = as_text(await within(conn.recv(), self.read_timeout_s))
            creds = codec.parse_object(text)
        except TimeoutError:
            drop(conn)
            return None
        except Malformed as exc:
            # never echo the frame: it may hold a password
            self.emit(codec.malformed_message(self.profile.name, IN, b"", f"credentials frame: {exc}"))
            self.notify(f"connection from {peer}: credentials frame is not a JSON object ({exc}); dropped")
            drop(conn)
            return None
        self.emit(codec.credentials_message(self.profile.name, IN, creds))
        verdict = self.registry.login(creds, self.users)
        if verdict.session is None:
            if verdict.undecodable:
                self.notify(f"connection from {peer}: {verdict.refused}; dropped")
                self.emit(link(self.profile.name, ENDPOINT, "refused", {"reason": verdict.refused}))
            else:
                self.emit(
                    link(self.profile.name, ENDPOINT, "refused", {"user": verdict.user, "reason": verdict.refused})
                )
            drop(conn)
            return None
        gateway = verdict.session.gateway
        client = Connected(conn, verdict.user, verdict.session)
        watch_frames(conn, lambda opcode: self._seen(client, opcode))
        await self._send(conn, codec.login_answer_envelope(verdict.token, gateway.gid, gateway.hash), "login")
        self.connected.append(client)
        self.changed.set()
        self.emit(
            link(
                self.profile.name,
                ENDPOINT,
                "logged-in",
                {
                    "user": verdict.user,
                    "gid": gateway.gid,
                    "hash": gateway.hash,
                    "listening": sorted(client.state.listening),
                },
            )
        )
        return client

    @staticmethod
    def _seen(client: Connected, opcode: str) -> None:
        client.last_frame = time.monotonic()  # every frame renews the read deadline, pings included
        if opcode == "ping":
            client.client_pinged.set()

    async def _ping(self, client: Connected) -> None:
        """Every ping_period_s until the client's first ping, then never again (Go connector)."""
        while not client.client_pinged.is_set():
            try:
                await within(client.client_pinged.wait(), self.ping_period_s)
            except TimeoutError:
                try:
                    await client.conn.ping(go_time_text(self.started))
                except ConnectionClosed:
                    return  # the request loop reports the end

    async def _requests(self, client: Connected) -> None:
        conn = client.conn
        while True:
            remaining = client.last_frame + self.read_timeout_s - time.monotonic()
            if remaining <= 0:
                await conn.close(1000, READ_TIMEOUT)
                return
            try:
                text = as_text(await within(conn.recv(), remaining))
            except TimeoutError:
                continue
            envelope = self._show(text)
            answers = client.state.handle(text, envelope)
            if envelope is not None and envelope.get("handler") == "response":
                self._responded(envelope)
            for answer in answers:
                await self._send(
                    conn,
                    codec.platform_envelope(answer.status, "response", answer.token, answer.payload),
                    answer.handler or "response",
                )
            self.changed.set()
            if client.state.consecutive_errors > self.max_errors:
                await conn.close(1000, TOO_MANY_ERRORS)
                return

    def _responded(self, envelope: dict[str, Any]) -> None:
        payload = envelope.get("payload")
        future = self.awaiting.get(codec.text_of(payload.get("task_id")) if isinstance(payload, dict) else "")
        if future is not None and not future.done():
            future.set_result(envelope)

    # --- commands (scenario and control path) ----------------------------------------------------

    def listeners(self, device: str) -> list[Connected]:
        return [c for c in self.connected if device in c.state.listening]

    async def _listeners_within(self, device: str, timeout: float) -> list[Connected]:
        """The sessions listening to `device`, once there is one: a script starts the platform, its
        connector and a command at once, as `publish` waits for a subscriber."""
        deadline = time.monotonic() + timeout
        while not (targets := self.listeners(device)):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await within(self.changed.wait(), remaining)
        return targets

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
                await send_text(client.conn, text, self.binary)
                delivered += 1
            except ConnectionClosed:
                pass
        return delivered

    async def close_all(self, reason: str) -> CommandOutcome:
        count = len(self.connected)
        for client in list(self.connected):
            await client.conn.close(1000, reason)
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
            while not self.listeners(device):
                self.changed.clear()
                await self.changed.wait()
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
