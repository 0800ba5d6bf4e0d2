"""The relay of `fieldctl proxy` for documents over Unix sockets (one document a connection, read
as documents.py reads them), where each document names the socket its answers go to. Every
sender gets a Route: a socket of the relay's own, named upstream in place of the sender's, so
what upstream sends there comes back through the relay to the sender's socket. Each direction of
a route is a Pipe (relay.py: decoded for the feed, fault rules applied) and a lane (a bounded
documents.Outbox: deliveries in order), so a slow, gone or hostile sender costs bounded memory and
holds up nobody else.

Protocol-free: the protocol's Naming says where a document's answers go, how socket names are
swapped in it, which documents sign a sender on upstream (repeated when upstream comes back, or
after a cut) or off, and how each is decoded for the feed."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from fieldctl.protocols.core.errors import FieldctlError
from fieldctl.protocols.core.message import IN, OUT, link
from fieldctl.protocols.sdk.contract import Context
from fieldctl.protocols.sdk.faults import Faults
from fieldctl.protocols.sdk.machine import Frame
from fieldctl.protocols.transport import together, unix

from .documents import Document, DocumentListener, Outbox, Reading, send
from .relay import Pipe, Tap, cut_when_due

#: Senders routed at once: each route holds a listening socket upstream may deliver to. Past it,
#: the route idle the longest that has not signed on makes room; when all have, a new sender's
#: document is refused (and reported).
MAX_ROUTES = 32
#: Documents one lane holds for a receiver that is slow to take them; past it they are lost (and
#: reported), as a peer that cannot deliver loses them.
LANE_LIMIT = 64
#: What one lane holds at most, in documents of the largest size the relay reads.
LANE_BYTES_IN_DOCUMENTS = 2
#: What closing the relay waits at most for its sign-offs upstream, all sent at once: a hung
#: upstream must not keep the proxy past the few seconds a stopped process is given.
CLOSING_S = 3.0
#: A route whose sender has not signed on (a one-shot query) is closed after this long unused.
IDLE_S = 60.0
#: How often the relay looks at the upstream socket file (a new one: upstream restarted) and
#: for idle routes.
WATCH_S = 0.25


@dataclass(frozen=True)
class Address:
    """What a document says about its sender: `reply` is the socket its answers go to (None: it
    names none the relay can route, and it goes upstream as it is); `signs` is True for a document
    that signs the sender on upstream, False for one that signs it off, None otherwise."""

    reply: str | None
    signs: bool | None = None


class Naming(Protocol):
    """The protocol's part of a document relay."""

    def address(self, raw: bytes) -> Address: ...

    def rename(self, raw: bytes, names: Mapping[str, str]) -> bytes:
        """`raw` with every socket name in `names` replaced by its value, every other byte kept."""
        ...

    def sign_off(self, own: str) -> bytes:
        """The document that signs our socket `own` off upstream."""
        ...

    def taps(self, client: str | None) -> dict[str, Tap]:
        """What decodes the documents of each direction (OUT, IN) of sender `client`'s route (None:
        the documents that name no socket); the two may share state (a request's time, to match
        its reply)."""
        ...


@dataclass(frozen=True)
class Sockets:
    """The relay's sockets: `local`, where senders send (bound by us), `upstream`, where their
    documents go, and `own()`, a fresh socket path for the next route; and the protocol's endpoint
    names in link lines: `endpoint` the local/upstream one's, `client_endpoint` the senders'."""

    local: str
    upstream: str
    own: Callable[[], str]
    endpoint: str
    client_endpoint: str


@dataclass(frozen=True)
class Timing:
    reading: Reading
    send_s: float
    retry_s: float


def document(frame: Frame) -> bytes:
    """A Pipe's frame as the document it is (a fault rule keeps its shape: bytes)."""
    if isinstance(frame, bytes):
        return frame
    return frame.encode("utf-8") if isinstance(frame, str) else b"".join(frame)


def gone(path: str, exc: FieldctlError) -> bool:
    """A receiver that is not there any more (no socket file, or nobody accepting on it), as
    opposed to one that is only slow or busy."""
    return isinstance(exc, unix.NotListening) or not os.path.exists(path)


#: Deliveries to one socket, the documents of one direction of a route.
Lane = Outbox[Document, None]


@dataclass(eq=False)
class Route:
    """One sender's way through the relay: `client` its socket, `own` ours named upstream instead."""

    client: str
    own: str
    used: float
    #: The sender's last sign-on document as it went upstream (names swapped), repeated when
    #: upstream comes back or after a cut; None when it has not signed on, or signed off since.
    greeting: bytes | None = None
    listener: DocumentListener | None = None
    taps: dict[str, Tap] = field(default_factory=dict)
    pipes: dict[str, Pipe] = field(default_factory=dict)
    lanes: dict[str, Lane] = field(default_factory=dict)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    #: A person has been told that documents of this route are lost, since one last went through.
    losing: bool = False


class DocumentRelay:
    """Serves `sockets.local` until cancelled; see the module's docstring."""

    def __init__(
        self, naming: Naming, context: Context, faults: Faults, profile: str, sockets: Sockets, timing: Timing
    ) -> None:
        self.naming, self.context, self.faults, self.profile = naming, context, faults, profile
        self.sockets, self.timing = sockets, timing
        self.routes: dict[str, Route] = {}
        #: Documents naming no routable socket: one shared route upstream, with no socket of ours.
        self.unrouted = Route("", "", 0.0)
        #: Whether the last delivery upstream went through (None: none tried yet).
        self.up: bool | None = None
        self._next_retry = 0.0
        self._dropping: set[asyncio.Task[None]] = set()
        self._opening = asyncio.Lock()
        #: The sockets of routes closed lately -> their senders: upstream may still name them (the
        #: deletion it announces to the others), and they are renamed as when open.
        self._former: dict[str, str] = {}

    # --- running ---

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        reading = self.timing.reading
        async with DocumentListener(self.sockets.local, reading, self._from_client, self._refused):
            self._equip(self.unrouted, None)
            self.context.emit(link(self.profile, self.sockets.endpoint, "bound", {"url": self.sockets.local}))
            self.faults.start(loop.time())
            try:
                await together(self._upkeep(), cut_when_due(self.faults, self.cut, self.context, self.profile))
            finally:
                await self._close_all()

    def _equip(self, route: Route, client: str | None) -> None:
        """The route's pipe and lane each way (upstream only for documents naming no socket)."""
        route.taps = self.naming.taps(client)
        self._direction(route, OUT, self.sockets.endpoint)
        if client is not None:
            self._direction(route, IN, self.sockets.client_endpoint)

    def _direction(self, route: Route, direction: str, endpoint: str) -> None:
        outward = direction == OUT
        route.lanes[direction] = lane = Lane(
            self.timing.send_s,
            functools.partial(self._upstream_took if outward else self._client_took, route),
            functools.partial(self._upstream_failed if outward else self._client_failed, route),
            limit=LANE_LIMIT,
            max_bytes=LANE_BYTES_IN_DOCUMENTS * self.timing.reading.max_bytes,
        )
        send = self._to_upstream if outward else self._to_client
        pipe = Pipe(
            direction,
            functools.partial(send, route),
            route.taps[direction],
            self.context,
            self.faults,
            endpoint=endpoint,
        )
        route.pipes[direction] = pipe
        route.tasks += [asyncio.ensure_future(lane.run()), asyncio.ensure_future(pipe.run())]

    async def _upkeep(self) -> None:
        """Signs routes on again when upstream is back (a new socket file, or a retry that goes
        through) and closes routes left idle."""
        loop = asyncio.get_running_loop()
        seen = unix.socket_identity(self.sockets.upstream)
        while True:
            await asyncio.sleep(WATCH_S)
            now = loop.time()
            identity = unix.socket_identity(self.sockets.upstream)
            renewed = identity is not None and identity != seen
            seen = identity
            if renewed or (self.up is False and now >= self._next_retry):
                self._next_retry = now + self.timing.retry_s
                for route in list(self.routes.values()):
                    if route.greeting is not None:
                        self._own_document(route, route.greeting, shown=renewed)
            for route in list(self.routes.values()):
                if route.greeting is None and now - route.used > IDLE_S:
                    await self._close(route, f"unused for {IDLE_S:g} s, never signed on")

    async def cut(self) -> None:
        """A disconnect rule: every route's socket closed (what upstream was delivering is cut
        off) and signed off upstream, then opened and signed on again."""
        for route in list(self.routes.values()):
            if route.listener is not None:
                await route.listener.__aexit__()
                try:
                    await self._listen(route)
                except FieldctlError as exc:
                    await self._drop(route, f"lost its route ({route.own} cannot be opened again: {exc})")
                    continue
            if route.greeting is not None:
                self._own_document(route, self.naming.sign_off(route.own))
                self._own_document(route, route.greeting)

    # --- from senders ---

    async def _from_client(self, raw: bytes, who: str) -> None:
        address = self.naming.address(raw)
        route = self.unrouted
        if address.reply is not None:
            if address.reply in self._ours():
                self.context.notify(
                    f"a document from {who} names {address.reply}, the proxy's or upstream's own socket, for its "
                    "answers: not relayed (they would go round in circles)"
                )
                return
            async with self._opening:  # two documents of a new sender at once: one route
                found = self.routes.get(address.reply) or await self._open(address.reply, who)
            if found is None:
                return
            route = found
            route.used = asyncio.get_running_loop().time()
            if address.signs is not None:
                route.greeting = self._renamed_up(route, raw) if address.signs else None
        await route.pipes[OUT].relay(raw)

    def _ours(self) -> set[str]:
        return {self.sockets.local, self.sockets.upstream, *(route.own for route in self.routes.values())}

    async def _open(self, client: str, who: str) -> Route | None:
        if len(self.routes) >= MAX_ROUTES:
            idle = [route for route in self.routes.values() if route.greeting is None]
            if not idle:
                self.context.notify(
                    f"a document from {who} for {client}: {MAX_ROUTES} senders are signed on through the proxy "
                    "already, not relayed"
                )
                return None
            await self._close(min(idle, key=lambda route: route.used), f"made room for {client}")
        route = Route(client, "", asyncio.get_running_loop().time())
        try:
            route.own = self.sockets.own()
            await self._listen(route)
        except FieldctlError as exc:
            self.context.notify(f"cannot open a socket for {client}: {exc}; its document is not relayed")
            return None
        self._equip(route, client)
        self.routes[client] = route
        self.context.emit(
            link(self.profile, self.sockets.client_endpoint, "peer-connected", {"url": client, "as": route.own})
        )
        return route

    async def _listen(self, route: Route) -> None:
        route.listener = DocumentListener(
            route.own,
            self.timing.reading,
            functools.partial(self._from_upstream, route),
            self._refused,
            backlog=64,
        )
        await route.listener.__aenter__()

    def _renamed_up(self, route: Route, raw: bytes) -> bytes:
        return self.naming.rename(raw, {route.client: route.own})

    async def _to_upstream(self, route: Route, frame: Frame) -> None:
        raw = document(frame)
        if route is not self.unrouted:
            raw = self._renamed_up(route, raw)
        if not route.lanes[OUT].offer(Document(self.sockets.upstream, raw)) and not route.losing:
            route.losing = True
            self.context.notify(f"upstream {self.sockets.upstream} takes documents too slowly: some are lost")

    def _own_document(self, route: Route, raw: bytes, *, shown: bool = True) -> None:
        """A document the relay sends upstream for a route itself (a greeting again, a sign-off),
        never judged by the fault rules; shown as it goes, but for the retries while upstream is
        away (they would fill the feed)."""
        if route.lanes[OUT].offer(Document(self.sockets.upstream, raw)) and shown:
            for msg in route.taps[OUT](raw):
                self.context.emit(msg)

    def _upstream_took(self, route: Route, _document: Document) -> None:
        route.losing = False
        if self.up is not True:
            self.up = True
            self.context.emit(link(self.profile, self.sockets.endpoint, "connected", {"url": self.sockets.upstream}))

    def _upstream_failed(self, route: Route, _document: Document, exc: FieldctlError) -> None:
        if self.up is not False:
            self.up = False
            self._next_retry = asyncio.get_running_loop().time() + self.timing.retry_s
            reason = str(exc)
            self.context.emit(
                link(
                    self.profile,
                    self.sockets.endpoint,
                    "disconnected",
                    {"url": self.sockets.upstream, "reason": reason},
                )
            )
            self.context.notify(
                f"upstream {self.sockets.upstream}: {reason}; documents for it are lost until it is back, "
                f"sign-ons are repeated every {self.timing.retry_s:g} s"
            )

    # --- from upstream ---

    async def _from_upstream(self, route: Route, raw: bytes, _who: str) -> None:
        route.used = asyncio.get_running_loop().time()
        await route.pipes[IN].relay(raw)

    async def _to_client(self, route: Route, frame: Frame) -> None:
        raw = document(frame)
        names = {
            self.sockets.upstream: self.sockets.local,
            **self._former,
            **{r.own: r.client for r in self.routes.values()},
        }
        renamed = Document(route.client, self.naming.rename(raw, names))
        if not route.lanes[IN].offer(renamed) and not route.losing:
            route.losing = True
            self.context.notify(f"{route.client} takes documents too slowly: documents for it are lost")

    def _client_took(self, route: Route, _document: Document) -> None:
        route.losing = False

    def _client_failed(self, route: Route, _document: Document, exc: FieldctlError) -> None:
        if gone(route.client, exc):
            task = asyncio.ensure_future(self._drop(route, f"is gone ({exc})"))
            self._dropping.add(task)
            task.add_done_callback(self._dropping.discard)
        elif not route.losing:
            route.losing = True
            self.context.notify(f"a document for {route.client} is lost: {exc}")

    async def _drop(self, route: Route, reason: str) -> None:
        """A sender the relay cannot serve any more (its socket gone): reported, signed off
        upstream, its route closed."""
        if self.routes.get(route.client) is not route:
            return
        self.context.notify(f"{route.client} {reason}: its registration upstream is dropped")
        await self._close(route, reason)

    # --- closing ---

    def _refused(self, who: str, reason: str) -> None:
        self.context.notify(f"dropped the connection of {who}: {reason}")

    async def _close(self, route: Route, reason: str | None = None) -> None:
        """Closes the route (its lanes go with it) and signs it off upstream if it signed on; with
        a `reason`, reports the sender gone (a `disconnected` link)."""
        await self._shut(route, reason)
        await self._sign_off(route)

    async def _shut(self, route: Route, reason: str | None = None) -> None:
        if self.routes.pop(route.client, None) is route:
            self._former[route.own] = route.client
            if len(self._former) > MAX_ROUTES:
                del self._former[next(iter(self._former))]
            if reason is not None:
                detail = {"url": route.client, "reason": reason}
                self.context.emit(link(self.profile, self.sockets.client_endpoint, "disconnected", detail))
        for task in route.tasks:
            task.cancel()
        try:
            await asyncio.gather(*route.tasks, return_exceptions=True)
        finally:  # cancelled meanwhile, the route is gone all the same: no socket file left behind
            if route.listener is not None:
                await route.listener.__aexit__()

    async def _sign_off(self, route: Route) -> None:
        if route.greeting is None:
            return
        sign_off = self.naming.sign_off(route.own)
        with contextlib.suppress(FieldctlError):
            await send(self.sockets.upstream, sign_off, self.timing.send_s)
            for msg in route.taps[OUT](sign_off):
                self.context.emit(msg)

    async def _close_all(self) -> None:
        """Every route closed, then signed off upstream all at once, within CLOSING_S in all (a
        sender being dropped meanwhile gets the same time); what is not done by then is given up."""
        routes = [*self.routes.values(), self.unrouted]
        for route in routes:
            await self._shut(route)
        signing_off = [asyncio.ensure_future(self._sign_off(route)) for route in routes if route.greeting is not None]
        unfinished = [*signing_off, *self._dropping]
        if unfinished:
            _, late = await asyncio.wait(unfinished, timeout=CLOSING_S)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
