"""The connector side (what the SEPL client library does): `register` logs in, syncs devices by
collection hash, keeps device changes and answers commands while reconnecting with backoff;
`publish` sends one event as the connector; `probe` checks that a login is accepted."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from websockets.exceptions import ConnectionClosed

from fieldctl.profiles import Profile
from fieldctl.profiles.secrets import Secret, SecretRef
from fieldctl.protocols.core.errors import ConnectFailure, NagiosCode, RemoteFailure, Timeout, UsageError
from fieldctl.protocols.core.message import Message, link
from fieldctl.protocols.core.readable import duration_text
from fieldctl.protocols.sdk.contract import Emit, Notify, ProbeReport, link_emitter
from fieldctl.protocols.sdk.identity import identity_file, keep_identity, recall_identity
from fieldctl.protocols.sdk.probing import verdict
from fieldctl.protocols.sdk.websocket_options import connection_settings
from fieldctl.protocols.transport import within
from fieldctl.protocols.transport.websocket import keep_connected, open_connection

from . import codec
from .codec import ENDPOINT
from .connection import CLIENT_CLOSE, Connection, Timing, scrubbed
from .store import DeviceStore

ANSWER_RULES = ("echo", "fixed", "cmd")


#: The state file a gateway id the platform assigned is kept in (protocols/sdk/identity.py).
GATEWAY = "sepl-gateway"


@dataclass
class Account:
    """Who the connector logs in as. The password stays a Secret until the frame is built. The
    gateway id is the connector's identity on the platform, which creates a gateway for every login
    without a known one: it is `--gid`, else the one in `--store`, else `connector.gid`, else the
    one the platform assigned this profile, user and URL before (kept in the state folder, unless
    `connector.keep_gid` is false: a private run's simulator is gone with the run, and so is its gateway)."""

    url: str
    user: str
    password: Secret
    gid: str
    #: Where a gid the platform assigns is kept besides a --store; None when the user names the
    #: gateway (--gid, connector.gid) or keeps it in a --store.
    keep_in: Path | None = None

    @classmethod
    def from_options(cls, profile: Profile, options: dict[str, Any], store: DeviceStore | None = None) -> Account:
        url = profile.endpoints.get(ENDPOINT)
        if not url:
            raise UsageError(f"profile {profile.name} has no '{ENDPOINT}' endpoint")
        user = options.get("user") or profile.setting("connector.user", "")
        if not user:
            raise UsageError("no user: give --user or set connector.user")
        if options.get("password_file"):
            password = SecretRef(file=options["password_file"]).resolve()
        elif "password" in profile.auth:
            password = profile.auth["password"].resolve()
        else:
            raise UsageError("no password: give --password-file or an [auth] password reference in the profile")
        named = options.get("gid") or (store.gid if store is not None else "") or profile.setting("connector.gid", "")
        if named or options.get("store") or not profile.setting("connector.keep_gid", True):
            return cls(url, user, password, named)
        keep_in = identity_file(GATEWAY, profile.name, user, url)
        return cls(url, user, password, recall_identity(keep_in), keep_in)

    def adopt(self, gid: str, store: DeviceStore, notify: Notify) -> None:
        """The gateway the platform answered with, kept for the next run (a new one only when the
        platform did not know ours)."""
        if gid == self.gid:
            return
        self.gid = store.gid = gid
        if self.keep_in is not None:
            problem = keep_identity(self.keep_in, gid)
            if problem is not None:
                notify(f"gateway {gid} {problem}: the next run registers a new gateway")


def open_store(options: dict[str, Any]) -> DeviceStore:
    return DeviceStore(options.get("store") or ":memory:")


class AnswerRule:
    """How the connector answers a command: echo its parts, a fixed payload, or a program's
    output (the command payload as JSON on its stdin, its stdout as the data part)."""

    def __init__(self, options: dict[str, Any], secret_env: set[str], timeout_s: float) -> None:
        self.mode = options.get("answer") or ("cmd" if options.get("answer_with") else "echo")
        if self.mode not in ANSWER_RULES:
            raise UsageError(f"--answer {self.mode}: expected one of {', '.join(ANSWER_RULES)}")
        self.data = options.get("answer_data")
        self.argv = shlex.split(options.get("answer_with") or "")
        if self.mode == "cmd" and not self.argv:
            raise UsageError("--answer cmd needs --answer-with CMD")
        self.env = {k: v for k, v in os.environ.items() if k not in secret_env}  # the program never sees the password
        self.timeout_s = timeout_s

    async def answer(self, command: dict[str, Any], notify: Notify) -> tuple[Any, Any]:
        """(data, metadata) part values for the response."""
        parts = command.get("protocol_parts")
        if self.mode == "echo":
            return codec.part_value(parts, codec.DATA), codec.part_value(parts, codec.METADATA)
        if self.mode == "fixed":
            return codec.as_part_text(self.data), None
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=self.env
            )
        except OSError as exc:
            notify(f"--answer-with {self.argv[0]}: {exc.strerror}; answering with no data")
            return None, None
        try:
            out, _ = await within(proc.communicate(json.dumps(command).encode()), self.timeout_s)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            notify(f"--answer-with {self.argv[0]} gave no answer within {self.timeout_s:g} s; answering with no data")
            return None, None
        if proc.returncode:
            notify(f"--answer-with {self.argv[0]} exited {proc.returncode}")
        return out.decode("utf-8", errors="replace").strip(), None


class DeviceSource:
    """The devices the connector announces: the store, fed by --device and --devices-file. Changes
    to the file while running become put/disconnect(or delete)+commit."""

    def __init__(self, store: DeviceStore, options: dict[str, Any]) -> None:
        self.store = store
        self.path = Path(options["devices_file"]) if options.get("devices_file") else None
        self.on_remove = options.get("on_remove") or "disconnect"
        if self.on_remove not in ("disconnect", "delete"):
            raise UsageError(f"--on-remove {self.on_remove}: expected disconnect or delete")
        try:
            for spec in options.get("devices") or []:
                store.put(codec.parse_device_spec(spec))
        except ValueError as exc:
            raise UsageError(f"--device: {exc}") from None
        self.file_ids: list[str] = []
        self.mtime: float | None = None
        for device in self.read_file() or []:
            store.put(device)
            self.file_ids.append(device.id)

    def read_file(self) -> list[codec.Device] | None:
        """The file's devices when it changed since the last read, else None."""
        if self.path is None:
            return None
        try:
            mtime = self.path.stat().st_mtime_ns
            if mtime == self.mtime:
                return None
            devices = codec.parse_device_lines(self.path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise UsageError(f"--devices-file {self.path}: {exc.strerror}") from None
        except ValueError as exc:
            raise UsageError(f"--devices-file {self.path}: {exc}") from None
        self.mtime = mtime
        return devices

    def changes(self) -> tuple[list[codec.Device], list[str]]:
        """(new or changed devices, removed ids) in the file since the last look; the store follows."""
        try:
            devices = self.read_file()
        except UsageError:
            return [], []  # a half-written file: look again next time
        if devices is None:
            return [], []
        known = {d.id: d for d in self.store.devices()}
        changed = [d for d in devices if d.id not in known or known[d.id].hash != d.hash]
        removed = [i for i in self.file_ids if i not in {d.id for d in devices}]
        self.file_ids = [d.id for d in devices]
        return changed, removed

    @property
    def hash(self) -> str:
        return codec.collection_hash(self.store.devices())


class Connector:
    def __init__(self, profile: Profile, options: dict[str, Any], emit: Emit, notify: Notify) -> None:
        self.profile, self.emit, self.notify = profile, scrubbed(emit), notify
        self.timing = Timing.from_profile(profile)
        self.store = open_store(options)
        self.devices = DeviceSource(self.store, options)
        self.account = Account.from_options(profile, options, self.store)
        secret_env = {ref.env for ref in profile.auth.values() if ref.env}
        self.rule = AnswerRule(options, secret_env, float(profile.setting("timeouts.answer_s", 5.0)))
        self.tls, self.backoff = connection_settings(self.account.url, options, notify)
        self.retry_at_start = options.get("max_retries") is not None
        self.max_size = profile.limits.max_frame_bytes
        self.poll_s = float(profile.setting("connector.poll_s", 0.5))

    def _link(self, state: str, detail: Any = None) -> None:
        self.emit(link(self.profile.name, ENDPOINT, state, detail))

    async def run(self) -> None:
        """A platform that cannot be reached at start is exit 3 once the grace a peer gets to
        appear is over (more retries only when --max-retries asks for them); once a connection
        worked, losing it means reconnecting."""
        try:
            await keep_connected(
                self.account.url,
                self._session,
                name=ENDPOINT,
                on_link=link_emitter(self.profile.name, self.emit),
                backoff=self.backoff,
                tls=self.tls,
                max_size=self.max_size,
                ping_interval=None,
                retry_first=self.retry_at_start,
            )
        finally:
            self.store.close()

    async def _session(self, conn: Any) -> bool:
        session = Connection(conn, self.profile.name, self.emit, self.notify, self.timing)
        changed, removed = self.devices.changes()  # edits made while offline reach the platform by the sync
        for device in changed:
            self.store.put(device)
        for device_id in removed:
            self.store.remove(device_id)
        answer = await session.login(self.account.user, self.account.password, self.account.gid)
        self.account.adopt(answer["gid"], self.store, self.notify)
        reader = asyncio.ensure_future(session.read(self._answer_command))
        try:
            local = self.devices.hash
            if local == answer["hash"]:
                self._link("in-sync", {"gid": answer["gid"], "hash": local})
            else:
                await self._sync(session, conn, local)
            self._link("ready", {"gid": answer["gid"], "hash": local, "devices": len(self.store.devices())})
            watcher = asyncio.ensure_future(self._watch(session))
            try:
                await reader
            finally:
                watcher.cancel()
        except ConnectionError as exc:
            self._link("disconnected", {"reason": str(exc)})
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        return False

    async def _sync(self, session: Connection, conn: Any, local: str) -> None:
        """clear, put per device in store order, commit(local hash); each awaited (spec §3.2)."""
        steps: list[tuple[str, Any]] = [("clear", None)]
        steps += [("put", d.put_payload()) for d in self.store.devices()]
        steps.append(("commit", local))
        for handler, payload in steps:
            answer = await session.request(handler, payload)
            if answer is None or answer.get("status") != 200:
                await conn.close(1000, CLIENT_CLOSE)
                what = (
                    "no answer"
                    if answer is None
                    else f"{codec.quoted(answer.get('status'))} {codec.quoted(answer.get('payload'))}"
                )
                raise RemoteFailure(f"device sync refused: {handler} answered {what}")
        self._link("synced", {"hash": local, "devices": len(steps) - 2})

    async def _watch(self, session: Connection) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            changed, removed = self.devices.changes()
            for device in changed:
                self.store.put(device)
                await self._change(session, "put", device.put_payload())
            for device_id in removed:
                self.store.remove(device_id)
                await self._change(session, self.devices.on_remove, device_id)

    async def _change(self, session: Connection, handler: str, payload: Any) -> None:
        """put/disconnect/delete, then commit of the new collection hash if it was accepted."""
        answer = await session.request(handler, payload)
        if answer is not None and answer.get("status") == 200:
            await session.request("commit", self.devices.hash)
        else:
            self.notify(
                f"{handler} {payload if isinstance(payload, str) else payload.get('uri')} was not accepted; "
                "the next sync will carry it"
            )

    async def _answer_command(self, session: Connection, envelope: dict[str, Any]) -> None:
        command = envelope.get("payload")
        if not isinstance(command, dict):
            command = {}
        what = f"the response to command {codec.device_service(command, 'device_url', 'service_url')}"
        try:
            data, metadata = await self.rule.answer(command, self.notify)
            await session.respond(codec.response_envelope(envelope, str(uuid.uuid4()), data, metadata))
        except asyncio.CancelledError:
            self.notify(f"{what} was not delivered: the connection ended before it was ready")
            raise
        except (ConnectionError, ConnectionClosed, OSError) as exc:
            self.notify(f"{what} was not delivered: {exc}")


async def login_once(
    profile: Profile, options: dict[str, Any], emit: Emit, notify: Notify, timeout: float
) -> tuple[Any, Connection, dict[str, Any]]:
    """One connection and login, no retries (publish, probe); the gateway kept as register keeps it."""
    store = open_store(options)
    try:
        account = Account.from_options(profile, options, store)
        tls, _ = connection_settings(account.url, options, notify)
        emit = scrubbed(emit)
        conn = await open_connection(
            account.url, tls=tls, timeout=timeout, max_size=profile.limits.max_frame_bytes, ping_interval=None
        )
        emit(link(profile.name, ENDPOINT, "connected", {"url": account.url}))
        session = Connection(conn, profile.name, emit, notify, Timing.from_profile(profile))
        try:
            answer = await session.login(account.user, account.password, account.gid)
        except BaseException:
            await conn.close()
            raise
        account.adopt(answer["gid"], store, notify)
    finally:
        store.close()
    return conn, session, answer


def event_target(msg: Message, params: list[str]) -> tuple[str, str]:
    """DEVICE SERVICE (publish sepl DEVICE SERVICE) or DEVICE:SERVICE in the kind."""
    device, sep, service = str(msg.kind).partition(":")
    if not sep and params:
        service = params[0]
    if not device or not service:
        raise UsageError("publish sepl DEVICE SERVICE --data JSON (or DEVICE:SERVICE)")
    return device, service


async def publish(
    profile: Profile, messages: list[Message], emit: Emit, notify: Notify, options: dict[str, Any], timeout: float
) -> None:
    """Logs in as the connector (with its gid, so the platform listens to its devices), sends
    each event, reports the platform's answer; exit 1 when one is refused."""
    targets = [(msg, *event_target(msg, options.get("params") or [])) for msg in messages]
    conn, session, _ = await login_once(profile, options, emit, notify, timeout)
    reader = asyncio.ensure_future(session.read(_ignore_command))
    refused: list[str] = []
    try:
        for msg, device, service in targets:
            payload = codec.event_payload(
                device, service, codec.as_part_text(msg.payload), codec.as_part_text(options.get("metadata"))
            )
            answer = await session.request("event", payload)
            if answer is None:
                raise Timeout(f"no answer to the event for {device}:{service} within {session.timing.request_s:g} s")
            if answer.get("status") != 200:
                refused.append(
                    f"{device}:{service}: {codec.quoted(answer.get('status'))} {codec.quoted(answer.get('payload'))}"
                )
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        await conn.close(1000, CLIENT_CLOSE)
    if refused:
        hint = (
            " (the platform takes events only for the devices of the gateway that registered them:"
            " publish as that connector, with its --gid or --store)"
            if any("not listen to this device" in text for text in refused)
            else ""
        )
        raise RemoteFailure("the platform refused the event: " + "; ".join(refused) + hint)


async def _ignore_command(session: Connection, envelope: dict[str, Any]) -> None:
    """publish is not the connector: commands that reach its short session stay unanswered."""


async def probe(profile: Profile, options: dict[str, Any], notify: Notify, warn: float, crit: float) -> ProbeReport:
    started = time.monotonic()
    try:
        conn, _, answer = await within(login_once(profile, options, lambda m: None, notify, crit), crit)
    except TimeoutError:
        return ProbeReport(NagiosCode.CRITICAL, f"no login within {crit:g} s", warn=warn, crit=crit)
    except ConnectFailure as exc:
        return ProbeReport(NagiosCode.CRITICAL, str(exc), warn=warn, crit=crit)
    elapsed = round(time.monotonic() - started, 4)
    await conn.close(1000, CLIENT_CLOSE)
    return verdict(
        {"login_seconds": elapsed},
        [],
        [f"login accepted in {duration_text(elapsed)} (gateway {answer['gid']})"],
        warn,
        crit,
    )
