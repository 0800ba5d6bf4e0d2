"""One logged-in connector connection: the login handshake, requests with fresh tokens and
answer timeouts, the read loop with the library's idle ping, and an account of work the
connection took with it when it went down (spec §3.1, §3.4, §4.3, §4.4)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields
from typing import Any

from websockets.exceptions import ConnectionClosed

from fieldctl.profiles.secrets import Secret
from fieldctl.protocols.core import redact
from fieldctl.protocols.core.errors import ConnectFailure
from fieldctl.protocols.core.message import IN, OUT, Message, link
from fieldctl.protocols.sdk.contract import Emit, Notify
from fieldctl.protocols.transport import within
from fieldctl.protocols.transport.websocket import as_text

from . import client_state, codec
from .client_state import CLIENT_CLOSE
from .codec import ENDPOINT

#: Commands answered at once. While this many are being answered the connection is not read: a
#: command flood then waits in the platform's buffers, not in our memory (nor as as many
#: --answer-with children). Answering ends when the response is out (respond), never waits on
#: the reads it holds up.
ANSWERS_AT_ONCE = 8


@dataclass(frozen=True)
class Timing:
    login_s: float = 20.0
    request_s: float = 10.0
    idle_ping_s: float = 15.0
    pong_s: float = 15.0

    @classmethod
    def from_profile(cls, profile: Any) -> Timing:
        """The profile's [timeouts] where it sets them, these defaults where it does not."""
        return cls(**{f.name: float(profile.setting(f"timeouts.{f.name}", f.default)) for f in fields(cls)})


class LoginRefused(ConnectFailure):
    """The platform refused our credentials or the login exchange: retrying cannot help."""


class _Scrubbing:
    """An Emit that scrubs every known secret from a Message before passing it on."""

    __slots__ = ("emit",)

    def __init__(self, emit: Emit) -> None:
        self.emit = emit

    def __call__(self, msg: Message) -> None:
        self.emit(redact.scrub(msg))


def scrubbed(emit: Emit) -> Emit:
    """`emit` with every known secret scrubbed first: a peer that echoes a password (in a reply,
    a gid, a command) must not get it shown. Wrapping twice scrubs once."""
    return emit if isinstance(emit, _Scrubbing) else _Scrubbing(emit)


CommandHandler = Callable[["Connection", dict[str, Any]], Awaitable[None]]


class Connection:
    """The socket side of one connection; client_state.Requests keeps its books."""

    def __init__(self, conn: Any, profile: str, emit: Emit, notify: Notify, timing: Timing) -> None:
        self.conn, self.profile, self.notify, self.timing = conn, profile, notify, timing
        self.emit = scrubbed(emit)
        self.requests = client_state.Requests(profile)
        self.answers: dict[str, asyncio.Future[dict[str, Any]]] = {}  # token -> its answer's envelope
        self.responded: dict[str, asyncio.TimerHandle] = {}  # a response's token -> its request_s timer

    async def login(self, user: str, password: Secret, gid: str) -> dict[str, Any]:
        """Sends the credentials, reads exactly one frame; returns its payload {gid, hash}."""
        creds = codec.credentials(user, password.reveal(), gid)
        await self.conn.send(json.dumps(creds))
        self.emit(codec.credentials_message(self.profile, OUT, creds))
        try:
            frame = as_text(await within(self.conn.recv(), self.timing.login_s))
        except ConnectionClosed:
            raise LoginRefused(
                f"the platform dropped the connection after the credentials of user {user!r} "
                "(wrong user or password, or an unknown gateway)"
            ) from None
        except TimeoutError:
            await self.conn.close(1000, CLIENT_CLOSE)
            raise LoginRefused(f"no login answer within {self.timing.login_s:g} s") from None
        verdict = client_state.login_answer(self.profile, frame)
        self.emit(verdict.msg)
        if verdict.refused is not None:
            await self.conn.close(1000, CLIENT_CLOSE)
            raise LoginRefused(verdict.refused)
        return {"gid": verdict.gid, "hash": verdict.hash}

    async def request(self, handler: str, payload: Any) -> dict[str, Any] | None:
        return await self.send_request(codec.request_envelope(handler, str(uuid.uuid4()), payload))

    async def send_request(self, envelope: dict[str, Any]) -> dict[str, Any] | None:
        """Sends one request and waits for the frame with its token; None after request_s.
        Raises ConnectionClosed when the connection goes down first (the caller reports it)."""
        token = envelope["token"]
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.answers[token] = future
        try:
            text, msg = self.requests.send(envelope)
            await self.conn.send(text)
            self.emit(msg)
            return await within(asyncio.shield(future), self.timing.request_s)
        except TimeoutError:
            self.emit(self.requests.timed_out(token, self.timing.request_s))
            return None
        finally:
            self.requests.close(token)
            self.answers.pop(token, None)

    async def respond(self, envelope: dict[str, Any]) -> None:
        """Sends a command's response. The platform's answer is matched when it comes and its
        absence reported after request_s, but nobody waits for it."""
        token = envelope["token"]
        text, msg = self.requests.send(envelope)
        try:
            await self.conn.send(text)
        except BaseException:
            self.requests.close(token)
            raise
        self.emit(msg)
        self.responded[token] = asyncio.get_running_loop().call_later(self.timing.request_s, self._unanswered, token)

    def _unanswered(self, token: str) -> None:
        del self.responded[token]
        self.emit(self.requests.timed_out(token, self.timing.request_s))

    async def read(self, on_command: CommandHandler) -> None:
        """Until the connection ends (ConnectionClosed) or a ping goes unanswered (returns)."""
        tasks: set[asyncio.Task[None]] = set()
        try:
            while True:
                try:
                    frame = await within(self.conn.recv(), self.timing.idle_ping_s)
                except TimeoutError:
                    if not await self._ping():
                        return
                    continue
                task = self._dispatch(as_text(frame), on_command)
                if task is not None:
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                    if len(tasks) >= ANSWERS_AT_ONCE:
                        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        except ConnectionClosed as exc:
            if exc.sent is not None and exc.sent.code == 1009:
                self.emit(
                    codec.malformed_message(
                        self.profile, IN, b"", f"frame over the size limit; closed 1009 ({exc.sent.reason})"
                    )
                )
            self.abandon(f"connection closed ({exc.rcvd.code if exc.rcvd else 1006})")
            raise
        finally:
            for task in tasks:
                task.cancel()
            for timer in self.responded.values():
                timer.cancel()
            self.responded.clear()

    async def _ping(self) -> bool:
        """The library's keepalive: a ping carrying Unix seconds after idle_ping_s of silence."""
        try:
            pong = await self.conn.ping(str(int(time.time())))
            await within(pong, self.timing.pong_s)
            return True
        except TimeoutError:
            self.emit(
                link(self.profile, ENDPOINT, "disconnected", {"reason": f"no pong within {self.timing.pong_s:g} s"})
            )
            self.abandon("no pong")
            return False

    def _dispatch(self, text: str, on_command: CommandHandler) -> asyncio.Task[None] | None:
        incoming = self.requests.receive(text)
        self.emit(incoming.msg)
        if incoming.envelope is None:  # not an envelope: shown, nothing to answer or resolve
            return None
        if incoming.command:
            return asyncio.ensure_future(on_command(self, incoming.envelope))
        future = self.answers.get(incoming.answers or "")
        if future is not None and not future.done():
            future.set_result(incoming.envelope)
        timer = self.responded.pop(incoming.answers or "", None)
        if timer is not None:
            timer.cancel()
            self.requests.close(incoming.answers or "")
        return None

    def abandon(self, reason: str) -> None:
        """Requests still waiting when the connection goes: reported, never silently dropped."""
        for token, msg, notice in self.requests.abandon(reason):
            self.emit(msg)
            self.notify(notice)
            future = self.answers.pop(token, None)
            if future is not None and not future.done():
                future.set_exception(ConnectionError(reason))
