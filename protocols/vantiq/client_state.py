"""The connector's side of one source's connection, pure (no I/O): validate, connectExtension,
configureExtension, then what the role does with it: `register` stays and takes publishes,
queries and reconnectRequired; `publish` sends its notifications and counts their
acknowledgements; `probe` stops at the answer it checks. A Machine (protocols/sdk/machine.py):
the stream runner does the socket work."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fieldctl.protocols.core.errors import ConnectFailure, FieldctlError, Timeout
from fieldctl.protocols.core.limits import Limits
from fieldctl.protocols.core.message import IN, OUT, Message, link
from fieldctl.protocols.sdk.machine import Effects, Frame

from . import codec

ENDPOINT = "server"
MAX_STATUS_BEFORE_CONFIGURE = 10

VALIDATE, CONFIGURE, ACTIVE, ACKS, OVER = "validate", "configure", "active", "acks", "over"


class SourceLink:
    """One source's connection. Verdicts are read off it when the connection is over: `failure`
    (the run ends: a refused token is exit 3), `refused` (connectExtension refused: back off and
    try again), `ending` (reconnectRequired or testRequestsClientClose). `queries` collects the
    queries the role has to answer (the answers a program computes are not this object's work)."""

    def __init__(
        self,
        profile: str,
        limits: Limits,
        url: str,
        timeout_s: float,
        token: Callable[[], str],
        source: str | None,
        secret: str = "",
        *,
        stays: bool = False,
        same_socket: bool = False,
        notifications: list[Any] | None = None,
        acks_by: float | None = None,
        wait_s: float = 0.0,
    ) -> None:
        self.profile, self.limits, self.url, self.timeout_s = profile, limits, url, timeout_s
        self.token, self.source, self.secret = token, source, secret
        #: register stays once configured (and reconnects on the same socket when `same_socket`).
        self.stays, self.same_socket = stays, same_socket
        #: publish: what to send once configured, and when their acknowledgements are due.
        self.notifications, self.acks_by, self.wait_s = notifications, acks_by, wait_s
        self.phase = VALIDATE
        self.deadline = 0.0
        self.statuses = 0
        self.validated: Message | None = None
        self.configured: Message | None = None
        #: When the answer the role waited for came (validated without a source, else configured).
        self.answered_at: float | None = None
        self.failure: FieldctlError | None = None
        self.refused: str | None = None
        self.ending: str | None = None
        self.queries: list[Message] = []
        self.sent = self.acked = 0

    @property
    def name(self) -> str:
        return self.source or ""

    @property
    def active(self) -> bool:
        return self.phase == ACTIVE

    def _out(self, frame: dict[str, Any]) -> Effects:
        text = codec.encode(frame)
        return Effects(emit=[self._decode(text, OUT)], send=[text])

    def _decode(self, frame: str | bytes, direction: str = IN) -> Message:
        return codec.decode(
            frame, profile=self.profile, endpoint=ENDPOINT, direction=direction, source=self.name, limits=self.limits
        )

    def start(self, now: float) -> Effects:
        self.deadline = now + self.timeout_s
        effects = self._out(codec.validate(self.token()))
        effects.wake_at = self.deadline
        return effects

    def _connect(self, now: float) -> Effects:
        self.phase, self.statuses, self.deadline = CONFIGURE, 0, now + self.timeout_s
        effects = self._out(codec.connect_extension(self.name, self.secret))
        effects.wake_at = self.deadline
        return effects

    def _fail(self, failure: FieldctlError) -> Effects:
        self.failure, self.phase = failure, OVER
        return Effects(close="closed by client")

    def _refuse(self, why: str) -> Effects:
        self.refused, self.phase = why, OVER
        return Effects(close="closed by client")

    def receive(self, frame: Frame, now: float) -> Effects:
        msg = self._decode(frame if not isinstance(frame, tuple) else b"".join(frame))
        effects = Effects(emit=[msg])
        if self.phase == VALIDATE:
            effects += self._validated(msg, now)
        elif self.phase == CONFIGURE:
            effects += self._configuring(msg, now)
        elif self.phase == ACKS:
            if msg.channel == codec.STATUS and msg.error is None and msg.payload["status"] < 300:
                self.acked += 1
            if self.acked >= self.sent:
                self.phase = OVER
                effects += Effects(close="closed by client")
        elif self.phase == ACTIVE and msg.error is None:
            effects += self._serving(msg, now)
        return effects

    def _validated(self, msg: Message, now: float) -> Effects:
        self.validated = msg
        if self.source is None:  # probe without a source: the token's verdict is all it asks
            self.phase, self.answered_at = OVER, now
            return Effects(close="closed by client")
        answer = codec.frame_of(msg) if msg.error is None else msg.payload
        if msg.channel != codec.STATUS or msg.payload.get("status") != 200:
            return self._fail(
                ConnectFailure(
                    f"{self.url} refused the access token (source {self.source}): {codec.refusal_text(answer)}"
                )
            )
        return self._connect(now)

    def _configuring(self, msg: Message, now: float) -> Effects:
        """Skips up to 10 harmless status frames; a status >= 300 or anything else is a refusal."""
        if msg.channel == codec.CONFIGURE and msg.error is None:
            self.configured, self.answered_at = msg, now
            if self.notifications is not None:
                return self._publish()
            if not self.stays:  # probe: configured is all it asks
                self.phase = OVER
                return Effects(close="closed by client")
            self.phase = ACTIVE
            return Effects(emit=[link(self.profile, ENDPOINT, "ready", {"source": self.name, "config": msg.payload})])
        if msg.channel == codec.STATUS and msg.error is None and msg.payload["status"] < 300:
            self.statuses += 1
            if self.statuses <= MAX_STATUS_BEFORE_CONFIGURE:
                return Effects(wake_at=self.deadline)
            return self._refuse(f"no configureExtension after {MAX_STATUS_BEFORE_CONFIGURE} status frames")
        if msg.channel == codec.STATUS and msg.error is None:
            return self._refuse(f"connectExtension refused: {codec.refusal_text(codec.frame_of(msg))}")
        return self._refuse(f"expected configureExtension, got {msg.error or msg.channel}")

    def _publish(self) -> Effects:
        effects = Effects()
        for obj in self.notifications or []:
            effects += self._out(codec.notification(self.name, obj))
            self.sent += 1
        self.phase = ACKS
        if not self.sent:
            self.phase = OVER
            effects.close = "closed by client"
        effects.wake_at = self.acks_by
        return effects

    def _serving(self, msg: Message, now: float) -> Effects:
        if msg.channel == codec.QUERY:
            self.queries.append(msg)
        elif msg.channel == codec.RECONNECT and self.same_socket:
            effects = Effects(
                emit=[link(self.profile, ENDPOINT, "reconnecting", {"source": self.name, "socket": "same"})]
            )
            effects += self._connect(now)
            return effects
        elif msg.channel in (codec.RECONNECT, codec.TEST_CLOSE):
            self.ending, self.phase = msg.channel, OVER
            return Effects(close=msg.channel)
        elif msg.channel == codec.STATUS and msg.payload["status"] >= 300:
            return Effects(warn=[f"source {self.name}: the server reported {codec.refusal_text(codec.frame_of(msg))}"])
        elif msg.channel == codec.CONFIGURE:
            return Effects(
                warn=[f"source {self.name}: configureExtension while active ignored (use reconnectRequired)"]
            )
        return Effects()

    def tick(self, now: float) -> Effects:
        due = self.acks_by if self.phase == ACKS else self.deadline
        if self.phase in (ACTIVE, OVER) or due is None:
            return Effects()
        if now < due:
            return Effects(wake_at=due)
        if self.phase == VALIDATE:
            if self.source is None:
                self.phase = OVER
                return Effects(close="closed by client")  # no validated: the probe says so
            return self._fail(ConnectFailure(f"{self.url}: no answer to validate within {self.timeout_s:g} s"))
        if self.phase == CONFIGURE:
            return self._refuse(f"no configureExtension within {self.timeout_s:g} s")
        return self._fail(
            Timeout(
                f"source {self.name}: {self.acked} of {self.sent} notification(s) acknowledged within {self.wait_s:g} s"
            )
        )
