"""The connector's side of one SEPL connection, pure (no I/O): the verdict on the login answer,
the requests still waiting for an answer (by token), and what each incoming frame is. Frames
come in as text; Messages to show and frames to send come out; the stream runner does the socket work
(spec §3.1, §4.3, §4.4)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fieldctl.protocols.core.limits import Malformed
from fieldctl.protocols.core.message import IN, OUT, Message, link
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


class Connecting:
    """What every connector connection has: the credentials it logs in with, its requests' books,
    the platform's answer to the login, and the account of what the connection took with it."""

    def __init__(self, profile: str, creds: Callable[[], dict[str, str]], timing: Any) -> None:
        self.profile, self.creds, self.timing = profile, creds, timing
        self.requests = Requests(profile)
        self.login: LoginAnswer | None = None

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


class ShortRun(Connecting):
    """A Machine (protocols/sdk/machine.py) for the connector's short runs, `publish` and
    `probe`: the login, then `requests` one after another, each answered within request_s, then
    the connection closed. Commands the platform pushes meanwhile are shown, never answered (it is
    not the connector that stays). Its verdicts are read when the run is over."""

    def __init__(
        self, profile: str, creds: Callable[[], dict[str, str]], timing: Any, requests: list[dict[str, Any]]
    ) -> None:
        super().__init__(profile, creds, timing)
        self.pending = list(requests)
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


@dataclass(frozen=True)
class Step:
    """One request of the connector's own: a device sync's (`sync`: clear, put, commit; any
    refusal ends the run), a device change's (`change`, then its `commit` of `then_hash`)."""

    handler: str
    payload: Any
    kind: str
    then_hash: str = ""


class Registration(Connecting):
    """The Machine of one `register` connection: the login; the device sync when the platform's
    hash differs from ours (each request waits for its answer); then device changes as the
    connector reports them, commands collected for the connector to answer (their responses'
    answers matched or reported missing after request_s), and the library's keep-alive asked for
    after idle_ping_s without a frame (spec §3.1, §3.2, §4.3, §4.4)."""

    def __init__(
        self,
        profile: str,
        creds: Callable[[], dict[str, str]],
        timing: Any,
        poll_s: float,
        local_hash: str,
        devices: list[dict[str, Any]],
    ) -> None:
        super().__init__(profile, creds, timing)
        self.poll_s, self.local_hash, self.devices = poll_s, local_hash, devices
        self.ready = False
        self.failure: str | None = None  # a refused sync: the run ends (RemoteFailure)
        self.steps: list[Step] = []
        self.step: Step | None = None  # sent, its answer awaited
        self.token = ""
        self.deadline = 0.0  # the login's, then the step's
        self.responded: dict[str, float] = {}  # a response's token -> when its answer is missing
        self.commands: list[dict[str, Any]] = []  # to answer (Connector.follow)
        self.heard = 0.0
        self.next_look: float | None = None
        #: For the connector: the gateway to keep, a look at the devices file, a ping to send.
        self.adopt = self.look = self.ping_due = False

    def start(self, now: float) -> Effects:
        creds = self.creds()
        self.heard, self.deadline = now, now + self.timing.login_s
        return Effects(
            emit=[codec.credentials_message(self.profile, OUT, creds)], send=[json.dumps(creds)], wake_at=self.deadline
        )

    def receive(self, frame: Frame, now: float) -> Effects:
        self.heard = now
        text = frame_text(frame)
        if self.login is None:
            return self._logged_in(login_answer(self.profile, text), now)
        incoming = self.requests.receive(text)
        effects = Effects(emit=[incoming.msg])
        if incoming.envelope is None:
            return effects
        if incoming.command:
            self.commands.append(incoming.envelope)
        elif incoming.answers is not None and incoming.answers == self.token and self.step is not None:
            self.requests.close(self.token)
            effects += self._answered(self.step, incoming.envelope, now)
        elif incoming.answers is not None and self.responded.pop(incoming.answers, None) is not None:
            self.requests.close(incoming.answers)
        effects.wake_at = self._due()
        return effects

    def _logged_in(self, verdict: LoginAnswer, now: float) -> Effects:
        self.login = verdict
        effects = Effects(emit=[verdict.msg])
        if verdict.refused is not None:
            effects.close = CLIENT_CLOSE
            return effects
        self.adopt = True
        if verdict.hash == self.local_hash:
            effects.emit.append(link(self.profile, ENDPOINT, "in-sync", {"gid": verdict.gid, "hash": self.local_hash}))
            effects += self._ready(now)
            return effects
        self.steps = [Step("clear", None, "sync")]
        self.steps += [Step("put", device, "sync") for device in self.devices]
        self.steps.append(Step("commit", self.local_hash, "sync"))
        effects += self._next(now)
        return effects

    def _ready(self, now: float) -> Effects:
        assert self.login is not None
        self.ready, self.next_look = True, now + self.poll_s
        detail = {"gid": self.login.gid, "hash": self.local_hash, "devices": len(self.devices)}
        return Effects(emit=[link(self.profile, ENDPOINT, "ready", detail)], wake_at=self._due())

    def _answered(self, step: Step, answer: dict[str, Any] | None, now: float) -> Effects:
        self.step, self.token = None, ""
        accepted = answer is not None and answer.get("status") == 200
        if step.kind == "sync" and not accepted:
            what = (
                "no answer"
                if answer is None
                else f"{codec.quoted(answer.get('status'))} {codec.quoted(answer.get('payload'))}"
            )
            self.failure = f"device sync refused: {step.handler} answered {what}"
            return Effects(close=CLIENT_CLOSE)
        effects = Effects()
        if step.kind == "sync" and step.handler == "commit":
            effects.emit.append(
                link(self.profile, ENDPOINT, "synced", {"hash": self.local_hash, "devices": len(self.devices)})
            )
            effects += self._ready(now)
        elif step.kind == "change" and accepted:
            self.steps.insert(0, Step("commit", step.then_hash, "commit"))
        elif step.kind == "change":
            what = step.payload if isinstance(step.payload, str) else step.payload.get("uri")
            effects.warn.append(f"{step.handler} {what} was not accepted; the next sync will carry it")
        effects += self._next(now)
        return effects

    def _next(self, now: float) -> Effects:
        if self.step is not None or not self.steps:
            return Effects(wake_at=self._due())
        self.step = self.steps.pop(0)
        envelope = codec.request_envelope(self.step.handler, str(uuid.uuid4()), self.step.payload)
        text, msg = self.requests.send(envelope)
        self.token, self.deadline = envelope["token"], now + self.timing.request_s
        return Effects(emit=[msg], send=[text], wake_at=self._due())

    def change(self, handler: str, payload: Any, then_hash: str, now: float) -> Effects:
        """A device change the connector saw (put, disconnect or delete), committed as `then_hash`
        once accepted."""
        self.steps.append(Step(handler, payload, "change", then_hash))
        return self._next(now)

    def respond(self, envelope: dict[str, Any], now: float) -> tuple[str, Message]:
        """A command's response, to send: its answer is matched when it comes and its absence
        reported after request_s, but nobody waits for it."""
        text, msg = self.requests.send(envelope)
        self.responded[envelope["token"]] = now + self.timing.request_s
        return text, msg

    def _due(self) -> float | None:
        times = list(self.responded.values())
        if self.login is None or self.step is not None:
            times.append(self.deadline)
        if self.next_look is not None:
            times.append(self.next_look)
        if self.login is not None and self.login.refused is None:
            times.append(self.heard + self.timing.idle_ping_s)
        return min(times) if times else None

    def tick(self, now: float) -> Effects:
        effects = Effects()
        if self.login is None:
            if now >= self.deadline:
                return Effects(close=CLIENT_CLOSE)  # refused() says why
            return Effects(wake_at=self.deadline)
        for token, due in list(self.responded.items()):
            if now >= due:
                del self.responded[token]
                effects.emit.append(self.requests.timed_out(token, self.timing.request_s))
        if self.step is not None and now >= self.deadline:
            effects.emit.append(self.requests.timed_out(self.token, self.timing.request_s))
            effects += self._answered(self.step, None, now)
            if effects.close is not None:
                return effects
        if self.next_look is not None and now >= self.next_look:
            self.look, self.next_look = True, now + self.poll_s
        if now >= self.heard + self.timing.idle_ping_s:
            self.ping_due, self.heard = True, now
        effects.wake_at = self._due()
        return effects

    def no_pong(self) -> Effects:
        """The keep-alive went unanswered: the connection is given up."""
        shown, notices = self.lost("no pong", too_big=False)
        reason = f"no pong within {self.timing.pong_s:g} s"
        return Effects(
            emit=[link(self.profile, ENDPOINT, "disconnected", {"reason": reason}), *shown],
            warn=notices,
            close="no pong",
        )

    def lost(self, reason: str, too_big: bool) -> tuple[list[Message], list[str]]:
        self.responded.clear()
        return super().lost(reason, too_big)
