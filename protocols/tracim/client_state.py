"""A registered client's rules, pure (no I/O): when to register (again), which link state to
report, and what a document from the daemon asks of us (spec §5, §10.1). The master socket's
identity and the time come in as arguments; client.py looks at the file system and the sockets."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from fieldctl.protocols.core.message import Message

from . import codec


@dataclass(frozen=True)
class LinkState:
    """A link state to report: it changed."""

    state: str
    detail: dict[str, Any]


class Registration:
    """`stale_s`: silence from the daemon after which we register again (it may have forgotten
    us); `retry_s`: the least time between two attempts on a new master socket."""

    def __init__(self, stale_s: float, retry_s: float, now: float) -> None:
        self.stale_s, self.retry_s = stale_s, retry_s
        self.registered_as: Hashable | None = None
        self.state = ""
        self.last_heard = now
        self.last_attempt = float("-inf")

    def _now_in(self, state: str, **detail: Any) -> LinkState | None:
        if state == self.state:
            return None
        self.state = state
        return LinkState(state, detail)

    def look(self, identity: Hashable | None, now: float) -> tuple[bool, LinkState | None]:
        """The master socket file as it is now (None: absent): (register now?, link state)."""
        if identity is None:
            self.registered_as = None
            return False, self._now_in("disconnected", reason="no master socket file")
        if (identity != self.registered_as and now - self.last_attempt >= self.retry_s) or now - max(
            self.last_heard, self.last_attempt
        ) >= self.stale_s:
            self.last_attempt = now
            return True, None
        return False, None

    def sent(self, identity: Hashable) -> LinkState | None:
        """Our client_add reached the socket with this identity."""
        self.registered_as = identity
        return self._now_in("registering")

    def not_sent(self, reason: str) -> LinkState | None:
        self.registered_as = None
        return self._now_in("retrying", reason=reason)

    def heard(self, msg: Message, now: float) -> tuple[LinkState | None, str | None]:
        """A decoded document from the daemon: (link state, where to send a pong)."""
        self.last_heard = now
        if msg.error:
            return None, None
        if msg.kind == codec.ACCOUNT_INFO:
            user_id = msg.payload.get("user_id") if isinstance(msg.payload, dict) else None
            return self._now_in("registered", user_id=user_id), None
        if msg.kind == codec.PING:
            return None, str(msg.id)
        return None, None
