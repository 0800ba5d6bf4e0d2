"""`proxy vantiq`: between a connector and Vantiq, one upstream WebSocket per connector websocket
(protocols/sdk/runners/relay_websocket.py: its path, headers and frame types passed on), every
frame relayed unchanged and decoded as both sides decode it (codec.decode): the kind is the
source the connection claimed, a query's responses are matched to it by reply address (rtt_s on
the first). The token, reconnect secrets and the tokens a server hands out are masked in what is
shown (masking.shown), never in what is relayed."""

from __future__ import annotations

import dataclasses
import time

from fieldctl.profiles import Profile
from fieldctl.protocols.core import redact
from fieldctl.protocols.core.limits import Limits
from fieldctl.protocols.core.message import IN, OUT, Message
from fieldctl.protocols.sdk.contract import Context
from fieldctl.protocols.sdk.faults import Faults
from fieldctl.protocols.sdk.machine import Frame
from fieldctl.protocols.sdk.runners.relay import Tap
from fieldctl.protocols.sdk.runners.relay_websocket import relay_websockets
from fieldctl.protocols.sdk.runners.waiting import Waiting

from . import codec
from .client_state import ENDPOINT
from .masking import shown


class Exchange:
    """One relayed connection's books, shared by its two taps: the source it claimed and the
    queries open (by reply address, bounded: runners.waiting) until their first response."""

    def __init__(self, profile: str, limits: Limits) -> None:
        self.profile, self.limits = profile, limits
        self.source = ""
        self.queries = Waiting()

    def taps(self) -> tuple[Tap, Tap]:
        return self.out, self.back

    def _decode(self, frame: Frame, direction: str) -> Message:
        body = frame if not isinstance(frame, tuple) else b"".join(frame)
        msg = codec.decode(
            body, profile=self.profile, endpoint=ENDPOINT, direction=direction, source=self.source, limits=self.limits
        )
        if msg.channel in (codec.VALIDATE, codec.AUTHENTICATE):
            redact.offered(codec.credentials_of(body, self.limits)[1])  # hidden here; scrubbed where echoed
        return msg

    def out(self, frame: Frame) -> list[Message]:
        """The connector's frame: validate, connectExtension, notifications, query responses."""
        msg = self._decode(frame, OUT)
        if msg.channel == codec.CONNECT and msg.error is None and isinstance(msg.kind, str):
            self.source = msg.kind
        elif msg.channel == codec.RESPONSE and isinstance(msg.id, str):
            msg.rtt_s = self.queries.answered(msg.id, time.monotonic())
        return [msg]

    def back(self, frame: Frame) -> list[Message]:
        """Vantiq's frame: answers, configuration, publishes, queries, reconnect requests."""
        msg = self._decode(frame, IN)
        if msg.channel == codec.QUERY and isinstance(msg.id, str):
            self.queries.went(msg.id, time.monotonic())
        return [msg]


async def run(profile: Profile, context: Context, upstream: dict[str, str], faults: Faults) -> None:
    masked = dataclasses.replace(context, emit=shown(context.emit))
    endpoints = {ENDPOINT: profile.endpoints[ENDPOINT]}
    limits = profile.limits
    await relay_websockets(
        masked, profile.name, endpoints, upstream, lambda _: Exchange(profile.name, limits).taps(), faults
    )
