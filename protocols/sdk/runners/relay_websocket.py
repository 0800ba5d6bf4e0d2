"""The WebSocket relay of `fieldctl proxy`: serves each local endpoint and, for every client it
accepts, opens one WebSocket to the upstream before it answers the client's handshake, so an
upstream that refuses is the client's HTTP error (502) and the subprotocol the upstream picks is
the one the client gets (headers that are not one hop's own go on both ways: PASSED_HEADERS).
Then a Pipe per direction (relay.py) carries every message unchanged: text stays text, binary
stays binary, the same bytes (a fragmented message goes on whole). A close goes on with its code
and reason; a side that vanishes without one is dropped on the other side too; a side that breaks
a limit is closed (1009 and the like) and the other told 1001. Control frames are each hop's own:
the proxy answers pings and pings both sides itself. At most MAX_CLIENTS clients an endpoint at
once: one more is answered 503 before anything goes upstream."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Awaitable, Callable, Mapping, Sequence
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.server import Server, ServerConnection
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.typing import Subprotocol

from fieldctl.protocols.core import redact
from fieldctl.protocols.core.errors import FieldctlError, UsageError
from fieldctl.protocols.core.message import IN, OUT, link
from fieldctl.protocols.sdk.contract import Context
from fieldctl.protocols.sdk.faults import Faults
from fieldctl.protocols.sdk.websocket_options import connection_settings
from fieldctl.protocols.transport import Throttle, within
from fieldctl.protocols.transport.websocket import CLOSE_TIMEOUT_S, drop, let_go, open_connection, start_server

from .relay import Pipe, Tap, serve_relays
from .stream_server import peer_of

#: Makes the taps of one relayed connection of an endpoint: (out: client -> upstream, in:
#: upstream -> client), fresh for each connection, so they may share that connection's state.
Taps = Callable[[str], tuple[Tap, Tap]]

#: Handshake headers that go upstream as the client sent them, and back as the upstream answered,
#: besides every X- header. The others (Host, Connection, Upgrade, Sec-WebSocket-Key/-Accept/
#: -Version/-Extensions) belong to one hop; Sec-WebSocket-Protocol goes on as the subprotocols
#: offered, and comes back as the one the upstream chose.
PASSED_HEADERS = frozenset({"authorization", "cookie", "origin"})
PASSED_BACK = frozenset({"set-cookie"})
#: How long a client's handshake waits for its upstream's (within websockets' 10 s for the whole).
UPSTREAM_OPEN_S = 5.0
#: Clients of one endpoint relayed at once, each with its own upstream connection (as
#: relay_zeromq.MAX_CLIENTS): one more is answered 503 in its handshake, nothing opened upstream.
MAX_CLIENTS = 64
#: Each hop's own keepalive: a dead hop is found, and the other one closed with it.
KEEPALIVE_S = 20.0
#: What the other side is told when the proxy closed a side that broke a limit, or on shutdown.
GOING_AWAY = 1001
#: Close codes the proxy sends a peer that broke the protocol or a limit (websockets' own).
BROKEN = frozenset({1002, 1007, 1009})


async def relay_websockets(
    context: Context,
    profile: str,
    endpoints: Mapping[str, str],
    upstream: Mapping[str, str],
    taps: Taps,
    faults: Faults,
    *,
    max_clients: int = MAX_CLIENTS,
) -> None:
    """Relays every endpoint in `endpoints` (name -> local URL, bound) to its `upstream` URL,
    `max_clients` clients an endpoint at once, until cancelled. A wss:// upstream is verified
    unless the role's options say --insecure (websocket_options: --ca-file adds a CA)."""
    relays = []
    for name, local in endpoints.items():
        if name not in upstream:
            raise UsageError(f"no upstream for endpoint {name}: give --upstream or --upstream-endpoint {name}=URL")
        if urlsplit(local).scheme == "wss":
            raise UsageError(f"endpoint {name}: the proxy serves ws:// only (its clients connect in the clear)")
        tls, _ = connection_settings(upstream[name], context.options, context.notify)
        relays.append(WebSocketRelay(context, profile, name, local, upstream[name], taps, faults, tls, max_clients))
    await serve_relays(relays, faults, context, profile)


def upstream_url(upstream: str, local: str, resource: str) -> str:
    """Where a client's request goes: the upstream URL with the client's path and query; the
    local endpoint's path is the upstream's (a path under it goes under the upstream's)."""
    base, mine = urlsplit(upstream), urlsplit(local)
    path, _, query = resource.partition("?")
    prefix = mine.path.rstrip("/")
    if path == prefix or path.startswith(prefix + "/"):
        rest = path[len(prefix) :]
        path = (base.path if rest in ("", "/") else base.path.rstrip("/") + rest) or "/"
    return urlunsplit((base.scheme, base.netloc, path, query or base.query, ""))


def passed(headers: Headers, names: frozenset[str]) -> list[tuple[str, str]]:
    """The headers of one hop's handshake that go on to the other's: `names` and X- headers."""
    return [
        (name, value) for name, value in headers.raw_items() if name.lower() in names or name.lower().startswith("x-")
    ]


def offered_subprotocols(headers: Headers) -> list[str]:
    offered = [name.strip() for value in headers.get_all("Sec-WebSocket-Protocol") for name in value.split(",")]
    return [name for name in offered if name]


class WebSocketRelay:
    """One local endpoint and the connections it relays."""

    def __init__(
        self,
        context: Context,
        profile: str,
        endpoint: str,
        local: str,
        upstream: str,
        taps: Taps,
        faults: Faults,
        tls: ssl.SSLContext | None,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        self.context, self.profile, self.endpoint = context, profile, endpoint
        self.local, self.upstream, self.taps, self.faults, self.tls = local, upstream, taps, faults, tls
        self.max_size, self.max_clients = context.limits.max_frame_bytes, max_clients
        #: Clients with an upstream opened or being opened, until it is closed.
        self._clients = 0
        #: Upstreams opened for a client whose handshake is not over yet.
        self._opened: dict[ServerConnection, tuple[ClientConnection, str]] = {}
        #: Every relayed pair (client, upstream) while it lasts.
        self._live: set[tuple[ServerConnection, ClientConnection]] = set()
        #: Tasks of the relay's own (an abandoned upstream closing), held until done.
        self._tasks: set[asyncio.Future[Any]] = set()
        self._refused = Throttle(context.notify)
        self._broke = Throttle(context.notify)
        self._full = Throttle(context.notify)
        self._server: Server | None = None

    def _link(self, state: str, detail: Any) -> None:
        self.context.emit(link(self.profile, self.endpoint, state, detail))

    async def open(self) -> None:
        self._server, url = await start_server(
            self.local,
            self._relay,
            max_size=self.max_size,
            ping_interval=KEEPALIVE_S,
            process_request=self._open_upstream,
            process_response=self._answer,
            select_subprotocol=self._subprotocol,
        )
        self._link("bound", {"url": url, "upstream": self.upstream})

    async def cut(self) -> None:
        """A disconnect rule: every connection and its upstream dropped, as a lost network does."""
        for client, upstream in list(self._live):
            drop(client)
            drop(upstream)

    async def close(self) -> None:
        """Stops serving: the clients closed (1001) and their upstreams with them, within 5 s."""
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                await within(self._server.wait_closed(), 5)

    async def _open_upstream(self, client: ServerConnection, request: Request) -> Response | None:
        """The client's handshake, before it is answered: its upstream opened with the client's
        path, headers and subprotocols, or the client answered 502 saying why (503 when
        max_clients are relayed already)."""
        if self._clients >= self.max_clients:
            self._full(f"{self.endpoint}: {self.max_clients} clients at once; the client at {peer_of(client)} got 503")
            return client.respond(HTTPStatus.SERVICE_UNAVAILABLE, f"proxy: {self.max_clients} clients at once\n")
        url = upstream_url(self.upstream, self.local, request.path)
        offered = offered_subprotocols(request.headers)
        self._clients += 1  # before the wait: handshakes under way count too
        try:
            upstream = await open_connection(
                url,
                tls=self.tls,
                max_size=self.max_size,
                timeout=UPSTREAM_OPEN_S,
                headers=passed(request.headers, PASSED_HEADERS),
                ping_interval=KEEPALIVE_S,
                subprotocols=offered or None,
                user_agent=request.headers.get("User-Agent"),
            )
        except (FieldctlError, ValueError) as exc:  # unreachable, refused, a header it cannot send
            self._clients -= 1
            self._link("disconnected", {"url": url, "error": str(exc)})
            self._refused(f"{self.endpoint}: {exc}; the client at {peer_of(client)} got 502")
            return client.respond(HTTPStatus.BAD_GATEWAY, f"upstream: {exc}\n")
        except BaseException:  # cancelled: the proxy is stopping
            self._clients -= 1
            raise
        self._opened[client] = (upstream, url)
        # A client that goes before its handshake is over never reaches _relay: its upstream goes too.
        self._hold(client.wait_closed()).add_done_callback(lambda _: self._abandon(client))
        self._link("connected", {"url": url, "subprotocol": upstream.subprotocol})
        return None

    def _answer(self, client: ServerConnection, request: Request, response: Response) -> None:
        """The client's 101 gets the upstream's cookies and X- headers."""
        opened = self._opened.get(client)
        if (
            opened is not None
            and opened[0].response is not None
            and response.status_code == HTTPStatus.SWITCHING_PROTOCOLS
        ):
            response.headers.update(passed(opened[0].response.headers, PASSED_BACK))

    def _subprotocol(self, client: ServerConnection, offered: Sequence[Subprotocol]) -> Subprotocol | None:
        """The upstream's choice, which is one of the client's offers (it was offered them)."""
        opened = self._opened.get(client)
        chosen = None if opened is None else opened[0].subprotocol
        return chosen if chosen in offered else None

    def _abandon(self, client: ServerConnection) -> None:
        opened = self._opened.pop(client, None)
        if opened is not None:
            self._clients -= 1
            self._hold(opened[0].close(GOING_AWAY, "the client went"))

    def _hold(self, awaitable: Awaitable[Any]) -> asyncio.Future[Any]:
        future = asyncio.ensure_future(awaitable)
        self._tasks.add(future)
        future.add_done_callback(self._tasks.discard)
        return future

    async def _relay(self, client: ServerConnection) -> None:
        opened = self._opened.pop(client, None)
        if opened is None:
            return
        upstream, url = opened
        pair = (client, upstream)
        where = {"peer": peer_of(client), "path": client.request.path if client.request else ""}
        self._link("peer-connected", where)
        self._live.add(pair)
        with redact.connection():  # what this client and its upstream offer is searched for while it lasts
            out_tap, in_tap = self.taps(self.endpoint)
            out = Pipe(OUT, upstream.send, out_tap, self.context, self.faults, endpoint=self.endpoint)
            back = Pipe(IN, client.send, in_tap, self.context, self.faults, endpoint=self.endpoint)
            pumps = [asyncio.ensure_future(pump(client, out)), asyncio.ensure_future(pump(upstream, back))]
            held = [asyncio.ensure_future(out.run()), asyncio.ensure_future(back.run())]
            try:
                await asyncio.wait([*pumps, *held], return_when=asyncio.FIRST_COMPLETED)
                await self._pass_close(client, upstream)
                # The other direction ends once its side has closed too (close_timeout bounds it).
                await asyncio.wait(pumps, timeout=4 * CLOSE_TIMEOUT_S + 1)
            finally:
                self._live.discard(pair)
                for task in (*pumps, *held):
                    task.cancel()
                await asyncio.wait([*pumps, *held])
                for task in (*pumps, *held):
                    failure = None if task.cancelled() else task.exception()
                    if failure is not None and not isinstance(failure, ConnectionClosed):  # how a pump ends
                        self.context.notify(f"{self.endpoint}: relaying {where['peer']} failed: {failure!r}")
                try:
                    if upstream.state is not State.CLOSED:
                        await upstream.close(GOING_AWAY, "the client went")
                    let_go(upstream)
                finally:
                    self._clients -= 1
        self._ended(client, upstream, where, url)

    async def _pass_close(self, client: ServerConnection, upstream: ClientConnection) -> None:
        """The side that went first (or a side that went while the other still is open) closes
        the other as it closed: its code and reason, or a dropped connection for a vanished one."""
        if client.state is State.OPEN and upstream.state is State.OPEN:  # neither went: a relay task failed
            await client.close(1011, "proxy error")
        for gone, other in ((client, upstream), (upstream, client)):
            if gone.state is not State.OPEN and other.state is State.OPEN:
                await close_like(gone, other)

    def _ended(self, client: ServerConnection, upstream: ClientConnection, where: dict[str, str], url: str) -> None:
        for side, detail in ((client, where), (upstream, {"url": url})):
            sent = side.protocol.close_sent
            self._link(
                "disconnected",
                {
                    **detail,
                    "code": side.protocol.close_code,
                    "reason": side.protocol.close_reason,
                    "sent_code": None if sent is None else sent.code,
                },
            )
            if broke_a_limit(side):
                what = f"client {where['peer']}" if side is client else f"upstream {url}"
                self._broke(f"{self.endpoint}: {what} closed by the proxy: {sent}")


async def pump(source: ServerConnection | ClientConnection, pipe: Pipe) -> None:
    """Every message from `source` into `pipe`, until a side closes (ConnectionClosed)."""
    while True:
        await pipe.relay(await source.recv())


def broke_a_limit(side: ServerConnection | ClientConnection) -> bool:
    """The proxy closed this side first, for what it sent (too big, not UTF-8, not WebSocket)."""
    protocol = side.protocol
    sent = protocol.close_sent
    return sent is not None and sent.code in BROKEN and not protocol.close_rcvd_then_sent


async def close_like(gone: ServerConnection | ClientConnection, other: ServerConnection | ClientConnection) -> None:
    protocol = gone.protocol
    received = protocol.close_rcvd
    if received is not None and (protocol.close_sent is None or protocol.close_rcvd_then_sent):
        # An empty close (1005) cannot be sent with websockets' close(): it goes on as 1000.
        await other.close(received.code if received.code != 1005 else 1000, received.reason)
    elif received is None and protocol.close_sent is None:
        drop(other)  # it vanished without a close frame: so does the other side's connection
    else:
        await other.close(GOING_AWAY, "the other side broke the protocol" if broke_a_limit(gone) else "closed")
