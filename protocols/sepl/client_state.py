"""The connector's side of one SEPL connection, pure (no I/O): the verdict on the login answer,
the requests still waiting for an answer (by token), and what each incoming frame is. Frames
come in as text; Messages to show and frames to send come out; the stream runner does the socket work
(spec §3.1, §4.3, §4.4)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fieldctl.protocols.core.limits import Malformed
from fieldctl.protocols.core.message import IN, OUT, Message
from fieldctl.protocols.sdk.machine import Effects, Frame

from . import codec
from .codec import ENDPOINT

#: The reason the connector's side closes with.
CLIENT_CLOSE = "closed by client"


@dataclass(frozen=True)
class LoginAnswer:
    """The platform's answer to the credentials: `msg` to show, and the gateway it gave us, or
    `refused` saying why the login failed."""

    msg: Message
    gid: str = ""
    hash: str = ""
    refused: str | None = None


def login_answer(profile: str, frame: str) -> LoginAnswer:
    """Exactly one frame answers the credentials: status 200, the login token, and a gid."""
    try:
        answer = codec.parse_object(frame)
    except Malformed as exc:
        return LoginAnswer(
            codec.malformed_message(profile, IN, frame.encode("utf-8", errors="replace"), f"login answer: {exc}"),
            refused=f"the login answer is not a JSON object ({exc})",
        )
    msg = Message(
        profile,
        ENDPOINT,
        IN,
        "login",
        "answer",
        answer,
        codec.text_of(answer.get("token")) or None,
        (frame.encode("utf-8", errors="replace"),),
    )
    payload = answer.get("payload")
    if not isinstance(payload, dict):
        payload = {}
    gid = codec.text_of(payload.get("gid"))
    if answer.get("status") != 200 or answer.get("token") != codec.LOGIN_TOKEN or not gid:
        return LoginAnswer(
            msg,
            refused=f"login refused: status {codec.quoted(answer.get('status'))}, "
            f"token {codec.quoted(answer.get('token'))}, payload {codec.quoted(answer.get('payload'))}",
        )
    return LoginAnswer(msg, gid, codec.text_of(payload.get("hash")))


@dataclass(frozen=True)
class Incoming:
    """One frame from the platform: `msg` to show; `command` (its envelope) to answer; or
    `answers`, the token of the open request it answers."""

    msg: Message
    envelope: dict[str, Any] | None = None
    command: bool = False
    answers: str | None = None


class Requests:
    """The requests sent on this connection and not answered yet: token -> handler."""

    def __init__(self, profile: str) -> None:
        self.profile = profile
        self.open: dict[str, str] = {}

    def send(self, envelope: dict[str, Any]) -> tuple[str, Message]:
        """Opens the request `envelope` (handler, token, payload ...): its frame and its Message,
        built from the envelope, not parsed back from the frame."""
        text = json.dumps(envelope)
        self.open[envelope["token"]] = envelope["handler"]
        return text, codec.envelope_message(self.profile, OUT, envelope, text.encode("utf-8"), from_client=True)

    def close(self, token: str) -> None:
        """Forgets a request: answered, given up on, or never sent."""
        self.open.pop(token, None)

    def timed_out(self, token: str, after_s: float) -> Message:
        handler = self.open.pop(token, "")
        return Message(
            self.profile,
            ENDPOINT,
            IN,
            "reply",
            handler,
            None,
            token,
            error=f"no answer to {handler} within {after_s:g} s",
        )

    def receive(self, text: str) -> Incoming:
        envelope, msg = codec.decode_frame(self.profile, IN, text, from_client=False)
        if envelope is None:
            return Incoming(msg)
        if envelope.get("handler") == "command":
            return Incoming(msg, envelope, command=True)
        token = codec.text_of(envelope.get("token"))
        handler = self.open.get(token)
        if handler is None:
            msg.error = "answer to no open request (late, or not ours)"
            return Incoming(msg, envelope)
        if msg.channel == "reply":
            msg.kind = handler  # the handler answered
        return Incoming(msg, envelope, answers=token)

    def abandon(self, reason: str) -> list[tuple[str, Message, str]]:
        """Requests still waiting when the connection goes: (token, Message, notice) each, to be
        reported, never silently dropped (the library would resend them with stale tokens after
        the next login)."""
        gone = [
            (
                token,
                Message(
                    self.profile, ENDPOINT, IN, "reply", handler, None, token, error=f"unanswered: {reason}; not resent"
                ),
                f"{handler} request {token} was not answered before the connection went ({reason}); not resent",
            )
            for token, handler in self.open.items()
        ]
        self.open.clear()
        return gone


def frame_text(frame: Frame) -> str:
    """A WebSocket frame as the text it carries (the platform sends text or binary frames alike)."""
    if isinstance(frame, str):
        return frame
    return (b"".join(frame) if isinstance(frame, tuple) else frame).decode("utf-8", errors="replace")


class ShortRun:
    """A Machine (protocols/sdk/machine.py) for the connector's short runs, `publish` and
    `probe`: the login, then `requests` one after another, each answered within request_s, then
    the connection closed. Commands the platform pushes meanwhile are shown, never answered (it is
    not the connector that stays). Its verdicts are read when the run is over."""

    def __init__(
        self, profile: str, creds: Callable[[], dict[str, str]], timing: Any, requests: list[dict[str, Any]]
    ) -> None:
        self.profile, self.creds, self.timing = profile, creds, timing
        self.requests = Requests(profile)
        self.pending = list(requests)
        self.login: LoginAnswer | None = None
        self.logged_in_at: float | None = None
        #: Each sent request's answer (an envelope), in order; None for the one given up on.
        self.answers: list[dict[str, Any] | None] = []
        self.waiting: str | None = None  # the token of the request sent and not answered yet
        self.deadline = 0.0

    def start(self, now: float) -> Effects:
        creds = self.creds()
        self.deadline = now + self.timing.login_s
        return Effects(
            emit=[codec.credentials_message(self.profile, OUT, creds)], send=[json.dumps(creds)], wake_at=self.deadline
        )

    def receive(self, frame: Frame, now: float) -> Effects:
        text = frame_text(frame)
        if self.login is None:
            self.login = login_answer(self.profile, text)
            if self.login.refused is not None:
                return Effects(emit=[self.login.msg], close=CLIENT_CLOSE)
            self.logged_in_at = now
            effects = Effects(emit=[self.login.msg])
            effects += self._next(now)
            return effects
        incoming = self.requests.receive(text)
        effects = Effects(emit=[incoming.msg])
        if incoming.answers is not None and incoming.answers == self.waiting:
            self.requests.close(incoming.answers)
            self.answers.append(incoming.envelope)
            self.waiting = None
            effects += self._next(now)
        return effects

    def tick(self, now: float) -> Effects:
        if now < self.deadline:
            return Effects(wake_at=self.deadline)
        if self.login is None:
            return Effects(close=CLIENT_CLOSE)  # refused() says why
        if self.waiting is not None:
            timed_out = self.requests.timed_out(self.waiting, self.timing.request_s)
            self.answers.append(None)
            self.waiting = None
            return Effects(emit=[timed_out], close=CLIENT_CLOSE)
        return Effects()

    def _next(self, now: float) -> Effects:
        if not self.pending:
            return Effects(close=CLIENT_CLOSE)
        envelope = self.pending.pop(0)
        text, msg = self.requests.send(envelope)
        self.waiting, self.deadline = envelope["token"], now + self.timing.request_s
        return Effects(emit=[msg], send=[text], wake_at=self.deadline)

    def refused(self, user: str, dropped: bool) -> str | None:
        """Why the login failed (the connection `dropped` before its answer, or the answer
        refused it, or none came in time); None once it was accepted."""
        if self.login is not None:
            return self.login.refused
        if dropped:
            return (
                f"the platform dropped the connection after the credentials of user {user!r} "
                "(wrong user or password, or an unknown gateway)"
            )
        return f"no login answer within {self.timing.login_s:g} s"

    def lost(self, reason: str, too_big: bool) -> tuple[list[Message], list[str]]:
        """The connection went before the run was over: what to show and to tell (requests it
        left unanswered, reported, never silently dropped; a frame over the size limit)."""
        shown = (
            [codec.malformed_message(self.profile, IN, b"", "frame over the size limit; closed 1009")]
            if too_big
            else []
        )
        notices = []
        for _, msg, notice in self.requests.abandon(reason):
            shown.append(msg)
            notices.append(notice)
        return shown, notices
