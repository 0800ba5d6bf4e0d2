"""`proxy sepl`: between a connector and the platform, one upstream WebSocket per connector
(protocols/sdk/runners/relay_websocket.py), every frame relayed unchanged. What each direction
decodes to is what the other side's role shows: the connector's frames (credentials first, then
requests) as `simulate` shows them, the platform's (the login answer first, then answers and
commands) as `register` does; answers matched to their requests by token, a command's response
to the command by task_id, each with rtt_s. The password is masked in what is shown, never in
what is relayed (spec §3.1, §4.3)."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from fieldctl.profiles import Profile
from fieldctl.protocols.core.limits import Malformed
from fieldctl.protocols.core.message import OUT, Message
from fieldctl.protocols.sdk.contract import Context
from fieldctl.protocols.sdk.faults import Faults
from fieldctl.protocols.sdk.machine import Frame
from fieldctl.protocols.sdk.runners.relay import Tap
from fieldctl.protocols.sdk.runners.relay_websocket import relay_websockets
from fieldctl.protocols.sdk.runners.waiting import Waiting

from . import client_state, codec
from .codec import ENDPOINT
from .connection import scrubbed


class Exchange:
    """One relayed connection's books, shared by its two taps: whether the login went by, the
    requests open (by token: the connector's books, client_state.Requests, and when each went)
    and the commands open (by task_id), each bounded (runners.waiting)."""

    def __init__(self, profile: str) -> None:
        self.profile = profile
        self.credentials_at: float | None = None
        self.logged_in = False
        self.requests = client_state.Requests(profile)
        self.sent_at = Waiting()  # request tokens gone upstream
        self.commands = Waiting()  # command task_ids gone to the connector

    def taps(self) -> tuple[Tap, Tap]:
        return self.out, self.back

    def out(self, frame: Frame) -> list[Message]:
        """The connector's frame, as the platform shows it."""
        text = client_state.frame_text(frame)
        now = time.monotonic()
        if self.credentials_at is None:
            self.credentials_at = now
            try:
                creds = codec.parse_object(text)
            except Malformed as exc:  # never echoed: it may hold a password
                return [codec.malformed_message(self.profile, OUT, b"", f"credentials frame: {exc}")]
            return [codec.credentials_message(self.profile, OUT, creds)]
        envelope, msg = codec.decode_frame(self.profile, OUT, text, from_client=True)
        if envelope is None:
            return [msg]
        token = codec.text_of(envelope.get("token"))
        if token:
            self.requests.open[token] = codec.text_of(envelope.get("handler"))
            self.requests.close(self.sent_at.went(token, now) or "")
        if msg.channel == "response":
            msg.rtt_s = self.commands.answered(_task_id(envelope), now)
        return [msg]

    def back(self, frame: Frame) -> list[Message]:
        """The platform's frame, as the connector shows it."""
        text = client_state.frame_text(frame)
        now = time.monotonic()
        if not self.logged_in and self.credentials_at is not None:
            self.logged_in = True
            msg = client_state.login_answer(self.profile, text).msg
            msg.rtt_s = now - self.credentials_at
            return [msg]
        incoming = self.requests.receive(text)
        msg = incoming.msg
        if incoming.command and incoming.envelope is not None:
            self.commands.went(_task_id(incoming.envelope), now)
        elif incoming.answers is not None:
            self.requests.close(incoming.answers)
            msg.rtt_s = self.sent_at.answered(incoming.answers, now)
        return [msg]


def _task_id(envelope: dict[str, Any]) -> str:
    payload = envelope.get("payload")
    return codec.text_of(payload.get("task_id")) if isinstance(payload, dict) else ""


async def run(profile: Profile, context: Context, upstream: dict[str, str], faults: Faults) -> None:
    shown = dataclasses.replace(context, emit=scrubbed(context.emit))  # a password echoed anywhere
    endpoints = {ENDPOINT: profile.endpoints[ENDPOINT]}
    await relay_websockets(shown, profile.name, endpoints, upstream, lambda _: Exchange(profile.name).taps(), faults)
