"""The connector's side of one SEPL connection, pure (no I/O): the verdict on the login answer,
the requests still waiting for an answer (by token), and what each incoming frame is. Frames
come in as text; Messages to show and frames to send come out; link.py does the socket work
(spec §3.1, §4.3, §4.4)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fieldctl.protocols.core.limits import Malformed
from fieldctl.protocols.core.message import IN, OUT, Message

from . import codec
from .codec import ENDPOINT


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
