"""The simulated Vantiq server's rules, pure (no I/O): who may connect, which source a connector
holds, what each frame is answered with, and the bookkeeping of open queries. Frames come in as
decoded Messages, time as an argument; what to do comes out as actions that simulator.py carries
out on the sockets."""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from fieldctl.protocols.core.errors import RemoteFailure
from fieldctl.protocols.core.message import Message

from . import codec, scenario

#: Notifications a scenario's `notification` steps can still find (the newest ones).
KEPT_NOTIFICATIONS = 1000


@dataclass(eq=False)
class Peer:
    """One connector's connection, as the rules know it."""

    number: int
    authenticated: bool = False
    source: str | None = None
    secret: Any = None
    queries: set[str] = field(default_factory=set)
    malformed: int = 0
    refused: int = 0  # authentication attempts refused


@dataclass(frozen=True)
class Send:
    """Send `frame` to `peer`."""

    peer: Peer
    frame: dict[str, Any]


@dataclass(frozen=True)
class Warn:
    """One line for the operator."""

    text: str


@dataclass(frozen=True)
class TakeOver:
    """Close `holder`'s connection (1000, "taken over"): another connector proved its secret."""

    holder: Peer


@dataclass(frozen=True)
class Configured:
    """`peer` now serves `source`; `first` is its first configuration since the simulator began."""

    peer: Peer
    source: str
    first: bool


@dataclass(frozen=True)
class Notified:
    """A notification was kept for a scenario that may look for it."""


@dataclass(frozen=True)
class Answered:
    """`msg` answers the open query `reply_to`; `done` when it was the final response."""

    reply_to: str
    msg: Message
    done: bool


Action = Send | Warn | TakeOver | Configured | Notified | Answered


class Server:
    """Everything the simulated server decides. `sources`: name -> configuration handed to the
    connector; `tokens`: accepted tokens, None accepts any; `status_frames`: plain 200s sent
    before configureExtension (some servers send one, the SDKs skip them)."""

    def __init__(
        self, sources: dict[str, Any], tokens: set[str] | None, status_frames: int = 1, query_bytes: int = 64 << 20
    ) -> None:
        self.sources, self.tokens = sources, tokens
        self.status_frames, self.query_bytes = status_frames, query_bytes
        self.active: dict[str, Peer] = {}
        self.configured: dict[str, int] = {}
        self.queries: dict[str, codec.QueryResult] = {}
        #: (source, object) of recent notifications, kept only while a scenario may look for them.
        self.notifications: deque[tuple[str, Any]] | None = None
        self._numbers = itertools.count(1)

    def open(self) -> Peer:
        return Peer(next(self._numbers))

    def keep_notifications(self) -> None:
        self.notifications = deque(maxlen=KEPT_NOTIFICATIONS)

    # --- frames from a connector ----------------------------------------------------------------

    def authenticate(self, peer: Peer, op: Any, token: Any) -> list[Action]:
        """The first frame must be validate with an accepted token (a string); (op, token) come
        from codec.credentials_of, as the decoded Message hides them."""
        # a token that is not a string (a list, an object) is no token: refused like a wrong one
        if op == codec.VALIDATE and isinstance(token, str) and (self.tokens is None or token in self.tokens):
            peer.authenticated = True
            return [Send(peer, codec.validated())]
        if op == codec.VALIDATE:
            why = "The supplied access token is not valid"
        elif op == codec.AUTHENTICATE:
            why = "User/password authentication is not simulated; use an access token"
        else:
            why = "The first message must authenticate (op validate)"
        peer.refused += 1
        actions: list[Action] = []
        if peer.refused == 1:  # one line per peer, however often it tries on this connection
            actions.append(Warn(f"connection {peer.number}: authentication refused: {why}"))
        return [*actions, Send(peer, codec.refusal(codec.AUTH_REFUSED, "io.vantiq.authentication.failed", why))]

    def receive(self, peer: Peer, msg: Message, now: float) -> list[Action]:
        """A decoded frame from an authenticated connector, received at `now` (monotonic)."""
        if msg.error is not None:
            return self._malformed(peer, msg)
        if msg.channel == codec.CONNECT:
            return self._connect(peer, msg)
        if msg.channel == codec.NOTIFICATION:
            actions: list[Action] = [Send(peer, codec.status(200))]
            if self.notifications is not None:
                self.notifications.append((str(msg.kind), msg.payload))
                actions.append(Notified())
            return actions
        if msg.channel == codec.RESPONSE:
            return self._response(msg, now)
        if msg.channel != codec.STATUS:
            return [Warn(f"connection {peer.number}: unexpected {msg.channel} from the connector, ignored")]
        return []

    def _malformed(self, peer: Peer, msg: Message) -> list[Action]:
        """A status >= 300 with the list body: both SDKs log it and carry on (Java counts it as an
        acknowledgement). The first one per connection is also a warning line."""
        peer.malformed += 1
        actions: list[Action] = []
        if peer.malformed == 1:
            actions.append(
                Warn(
                    f"connection {peer.number}: malformed frame ({msg.error}): answered 400; "
                    "the connection stays open, further ones are only shown"
                )
            )
        return [
            *actions,
            Send(peer, codec.refusal(400, "io.vantiq.message.malformed", f"Malformed message: {msg.error}")),
        ]

    def _connect(self, peer: Peer, msg: Message) -> list[Action]:
        """connectExtension: known source, not held by another live connector unless the
        reconnect secret matches (takeover); same-socket reconnects (Java) come here too."""
        source = str(msg.kind)
        secret = msg.payload.get("reconnectSecret") if isinstance(msg.payload, dict) else None
        if source not in self.sources:
            return [
                Send(
                    peer,
                    codec.refusal(
                        400,
                        "io.vantiq.resource.not.found",
                        f"The source {source} does not have an associated stream",
                        [source],
                    ),
                )
            ]
        actions: list[Action] = []
        holder = self.active.get(source)
        if holder is not None and holder is not peer:
            if secret is None or secret != holder.secret:
                return [
                    Send(
                        peer,
                        codec.refusal(
                            400,
                            "io.vantiq.source.in.use",
                            f"The source {source} is already served by another connector",
                            [source],
                        ),
                    )
                ]
            actions += [
                Warn(f"source {source}: reconnect secret matches, dropping connection {holder.number}"),
                TakeOver(holder),
            ]
            holder.source = None
        peer.source, peer.secret = source, secret
        self.active[source] = peer
        self.configured[source] = self.configured.get(source, 0) + 1
        actions += [Send(peer, codec.status(200)) for _ in range(self.status_frames)]
        actions += [
            Send(peer, codec.configure_extension(source, self.sources[source])),
            Configured(peer, source, self.configured[source] == 1),
        ]
        return actions

    def _response(self, msg: Message, now: float) -> list[Action]:
        result = self.queries.get(str(msg.id))
        if result is None or result.done:
            return [Warn(f"a response for reply address {msg.id}, which no open query has")]
        done = result.add(msg.payload["status"], msg.payload.get("body"), now, len(msg.raw[0]) if msg.raw else 0)
        return [Answered(str(msg.id), msg, done)]

    def close(self, peer: Peer) -> list[str]:
        """`peer`'s connection is gone: its source is free again; returns the reply addresses of
        the queries this ended."""
        ended = []
        for reply_to in peer.queries:
            result = self.queries.get(reply_to)
            if result is not None and not result.done:
                result.problem = "the connection closed before the final response"
                ended.append(reply_to)
        if peer.source is not None and self.active.get(peer.source) is peer:
            del self.active[peer.source]
        return ended

    # --- the operator's side (control path and scenario) ---------------------------------------

    def peer_of(self, source: str) -> Peer:
        peer = self.active.get(source)
        if peer is None:
            held = ", ".join(sorted(self.active)) or "none"
            raise RemoteFailure(f"source {source!r} has no connected connector (connected: {held})")
        return peer

    def only_source(self) -> str | None:
        return next(iter(self.active)) if len(self.active) == 1 else None

    def configured_after(self, source: str, after: int = 0) -> bool:
        """`source` has a connector now, configured more than `after` times in all."""
        return source in self.active and self.configured.get(source, 0) > after

    def begin_query(
        self, source: str, params: Any, reply_to: str, now: float
    ) -> tuple[Peer, dict[str, Any], codec.QueryResult]:
        """The query frame for `source`'s connector and the result its responses fill."""
        peer = self.peer_of(source)
        result = codec.QueryResult(source, reply_to, max_bytes=self.query_bytes, sent_at=now)
        self.queries[reply_to] = result
        peer.queries.add(reply_to)
        return peer, codec.query(source, params, reply_to), result

    def end_query(self, peer: Peer, reply_to: str, problem: str | None = None) -> codec.QueryResult:
        """Closes the books on a query; `problem` is why, when it got no final response."""
        result = self.queries.pop(reply_to)
        peer.queries.discard(reply_to)
        if problem is not None and not result.done:
            result.problem = problem
        return result

    def take_notification(self, source: str, contains: Any) -> bool:
        """Finds (and forgets) a kept notification from `source` whose object contains these members."""
        kept = self.notifications
        if kept is None:
            return False
        for index, (origin, obj) in enumerate(kept):
            if origin == source and scenario.contains(obj, contains or {}):
                del kept[index]
                return True
        return False
