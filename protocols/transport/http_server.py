"""A small HTTP/1.1 server for the pages a long-lived command publishes (the exporter's /metrics),
made for hostile clients. Only GET and HEAD of known paths, no request bodies; no TLS and no
authentication (a reverse proxy in front adds those).

Every client is held to limits: its request head is read into a fixed buffer (`max_head_bytes`,
`max_headers`: 431 past them) within `head_timeout_s` of its first byte (408), a kept-alive
connection waits at most `idle_timeout_s` for its next request, and a response reaches the client
within `write_timeout_s` or the connection is dropped. At most `max_connections` are served at
once: one more takes the place of the connection kept alive longest without a request (closing
that loses nothing: its client connects again when it needs to), or, when every one is in the
middle of a request, is answered 503 and closed at once. Responses go out in chunks as the client
reads them, so memory stays flat whatever the clients do: a connection costs its head buffer and
one chunk beside the kernel's socket buffers, and a page is shared by every request that asks for
it (`reused`).
"""

from __future__ import annotations

import asyncio
import errno
import gzip
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from http import HTTPStatus

from fieldctl.protocols.core.errors import AddressInUse, UsageError


@dataclass(frozen=True)
class HttpLimits:
    """What one client may cost; the defaults hold against hundreds of hostile clients at once."""

    max_head_bytes: int = 8 * 1024  # the request line and every header together
    max_headers: int = 100
    head_timeout_s: float = 5.0  # a whole request head, from its first byte (a new connection's: from accept)
    idle_timeout_s: float = 75.0  # a kept-alive connection, between requests (Prometheus scrapes every 60 s by default)
    write_timeout_s: float = 10.0  # a whole response, and the close after it
    max_connections: int = 512
    backlog: int = 1024  # connections the kernel queues until accepted


#: The most of a response handed to the kernel at a time; the next goes once the client has read.
WRITE_CHUNK = 64 * 1024
#: What a refused client may still send (and have discarded) before its connection is dropped:
#: read on, so that closing does not reset the connection before the client reads why.
DISCARD_BYTES = 64 * 1024
_DISCARDED = memoryview(bytearray(16 * 1024))  # every connection's discarded bytes go here


@dataclass(frozen=True)
class Page:
    """A response body and its type; compressed once, when a client first asks for gzip."""

    content_type: str
    body: bytes

    @cached_property
    def gzipped(self) -> bytes:
        return gzip.compress(self.body, compresslevel=1, mtime=0)


#: path -> the page to serve there, made when asked.
Pages = Mapping[str, Callable[[], Page]]


def reused(make: Callable[[], Page], max_age_s: float) -> Callable[[], Page]:
    """`make`, called at most once every `max_age_s` seconds: requests in between share its page,
    so a burst of requests costs one rendering, and the memory of one page."""
    made: Page | None = None
    made_at = 0.0

    def page() -> Page:
        nonlocal made, made_at
        now = time.monotonic()
        if made is None or now - made_at >= max_age_s:
            made, made_at = make(), now
        return made

    return page


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    keep_alive: bool
    gzip: bool


class Refusal(Exception):
    """A request answered with an error status, after which the connection closes."""

    def __init__(self, status: HTTPStatus) -> None:
        super().__init__(status.phrase)
        self.status = status


def parse_head(head: bytes, max_headers: int) -> Request:
    """A request line and its headers (without the blank line that ends them)."""
    request_line, *fields = head.decode("latin-1").split("\r\n")
    if len(fields) > max_headers:
        raise Refusal(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
    parts = request_line.split(" ")
    if len(parts) != 3 or parts[2] not in ("HTTP/1.1", "HTTP/1.0"):
        raise Refusal(HTTPStatus.BAD_REQUEST)
    method, target, version = parts
    headers: dict[str, str] = {}
    for field in fields:
        name, colon, value = field.partition(":")
        if not colon or not name or not name.isprintable() or " " in name or "\t" in name:
            raise Refusal(HTTPStatus.BAD_REQUEST)
        name = name.lower()
        value = value.strip(" \t")
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    if method not in ("GET", "HEAD"):
        raise Refusal(HTTPStatus.METHOD_NOT_ALLOWED)
    if headers.get("content-length", "0") != "0" or "transfer-encoding" in headers:
        raise Refusal(HTTPStatus.BAD_REQUEST)  # a body we would have to read: none of our pages takes one
    tokens = {token.strip().lower() for token in headers.get("connection", "").split(",")}
    return Request(
        method,
        target.partition("?")[0],
        keep_alive=version == "HTTP/1.1" and "close" not in tokens,
        gzip=_accepts_gzip(headers.get("accept-encoding", "")),
    )


def _accepts_gzip(accept_encoding: str) -> bool:
    for item in accept_encoding.split(","):
        coding, _, params = item.partition(";")
        if coding.strip().lower() == "gzip":
            weight = params.strip().lower().removeprefix("q=")
            try:
                return not weight or float(weight) > 0
            except ValueError:
                return False
    return False


def _response(status: HTTPStatus, page: Page, *, close: bool, encoding: str = "", body_bytes: int = -1) -> bytes:
    """A response's status line and headers; `body_bytes` when the body sent is not the page's."""
    head = [
        f"HTTP/1.1 {status.value} {status.phrase}",
        f"Content-Type: {page.content_type}",
        f"Content-Length: {len(page.body) if body_bytes < 0 else body_bytes}",
    ]
    if encoding:
        head += [f"Content-Encoding: {encoding}", "Vary: Accept-Encoding"]
    if status is HTTPStatus.METHOD_NOT_ALLOWED:
        head.append("Allow: GET, HEAD")
    if status is HTTPStatus.SERVICE_UNAVAILABLE:
        head.append("Retry-After: 1")
    if close:
        head.append("Connection: close")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")


def _error_page(status: HTTPStatus) -> Page:
    return Page("text/plain; charset=utf-8", f"{status.value} {status.phrase}\n".encode())


class _Connection(asyncio.BufferedProtocol):
    """One client, a request at a time: reading its head (`idle`, then `head` from its first
    byte), writing the response (`busy`, reading paused), or discarding what it still sends after
    a last response (`closing`). One timer holds the deadline of the phase."""

    def __init__(self, server: HttpServer) -> None:
        self._server = server
        self._limits = server.limits
        self._transport: asyncio.Transport | None = None
        self._head = bytearray()  # allocated once admitted
        self._filled = 0
        self._scanned = 0  # how far the head was searched for its end
        self._phase = "idle"
        self._timer: asyncio.TimerHandle | None = None
        self._pending = memoryview(b"")
        self._paused = False
        self._keep_alive = False
        self._discarded = 0

    # asyncio's side

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport), "a stream server's transports are streams"
        self._transport = transport
        if not self._server.admit(self):
            refusal = _error_page(HTTPStatus.SERVICE_UNAVAILABLE)
            transport.write(_response(HTTPStatus.SERVICE_UNAVAILABLE, refusal, close=True) + refusal.body)
            transport.close()
            return
        self._head = bytearray(self._limits.max_head_bytes)
        transport.set_write_buffer_limits(high=WRITE_CHUNK)
        self._arm(self._limits.head_timeout_s, self._timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._pending = memoryview(b"")
        self._server.release(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._phase == "closing":
            return _DISCARDED
        return memoryview(self._head)[self._filled :]  # never empty: a full buffer is refused at once

    def buffer_updated(self, nbytes: int) -> None:
        if self._phase == "closing":
            self._discarded += nbytes
            if self._discarded > DISCARD_BYTES:
                self.abort()
            return
        if self._phase == "idle":
            self._phase = "head"
            self._server.idle(self, False)
            self._arm(self._limits.head_timeout_s, self._timed_out)
        self._filled += nbytes
        self._next_request()

    def eof_received(self) -> bool:
        return False  # the client is done: close once our writes are out

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._pump()

    # ours

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def _arm(self, seconds: float, then: Callable[[], None]) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(seconds, then)

    def _timed_out(self) -> None:
        """No request while idle: closed without a word. A head begun and not finished: 408."""
        assert self._transport is not None
        if self._phase == "head":
            self._refuse(HTTPStatus.REQUEST_TIMEOUT)
        else:
            self._transport.close()

    def _next_request(self) -> None:
        """Answers the request in the buffer once its head is complete; refuses one that cannot fit."""
        assert self._transport is not None
        if self._phase not in ("idle", "head") or self._transport.is_closing():
            return
        end = self._head.find(b"\r\n\r\n", max(0, self._scanned - 3), self._filled)
        if end < 0:
            self._scanned = self._filled
            if self._filled == len(self._head):
                self._refuse(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
            return
        head = bytes(self._head[:end])
        after = end + 4
        self._head[: self._filled - after] = self._head[after : self._filled]  # a pipelined next request
        self._filled -= after
        self._scanned = 0
        self._transport.pause_reading()
        try:
            request = parse_head(head, self._limits.max_headers)
        except Refusal as refusal:
            self._refuse(refusal.status)
            return
        make = self._server.pages.get(request.path)
        if make is None:
            self._send(HTTPStatus.NOT_FOUND, _error_page(HTTPStatus.NOT_FOUND), request)
        else:
            self._send(HTTPStatus.OK, make(), request)

    def _refuse(self, status: HTTPStatus) -> None:
        self._send(status, _error_page(status), None)

    def _send(self, status: HTTPStatus, page: Page, request: Request | None) -> None:
        """Starts a response; `request` None: the last one on this connection."""
        assert self._transport is not None
        self._phase = "busy"
        self._keep_alive = request is not None and request.keep_alive
        self._arm(self._limits.write_timeout_s, self.abort)
        body = page.gzipped if request is not None and request.gzip and status is HTTPStatus.OK else page.body
        encoding = "gzip" if body is not page.body else ""
        self._transport.write(
            _response(status, page, close=not self._keep_alive, encoding=encoding, body_bytes=len(body))
        )
        self._pending = memoryview(b"" if request is not None and request.method == "HEAD" else body)
        self._pump()

    def _pump(self) -> None:
        """Hands the response on a chunk at a time while the client keeps up; then the next request."""
        assert self._transport is not None
        while self._pending and not self._paused and not self._transport.is_closing():
            chunk, self._pending = self._pending[:WRITE_CHUNK], self._pending[WRITE_CHUNK:]
            self._transport.write(chunk)
        if self._pending or self._phase != "busy" or self._transport.is_closing():
            return
        if self._keep_alive:
            self._phase = "head" if self._filled else "idle"
            self._arm(self._limits.head_timeout_s if self._filled else self._limits.idle_timeout_s, self._timed_out)
            self._transport.resume_reading()
            if self._filled:  # later, so that a pipelined burst does not recurse
                asyncio.get_running_loop().call_soon(self._next_request)
            else:
                self._server.idle(self, True)
        else:  # the write deadline still holds: what the client sends meanwhile is read and dropped
            self._phase = "closing"
            self._transport.write_eof()
            self._transport.resume_reading()


class HttpServer:
    """The listening sockets and the connections being served."""

    def __init__(self, pages: Pages, limits: HttpLimits) -> None:
        self.pages = pages
        self.limits = limits
        self._live: set[_Connection] = set()
        self._idle: dict[_Connection, None] = {}  # kept alive between requests, longest idle first
        self._server: asyncio.Server | None = None

    def admit(self, connection: _Connection) -> bool:
        if len(self._live) >= self.limits.max_connections:
            if not self._idle:
                return False
            longest_idle = next(iter(self._idle))
            self.release(longest_idle)
            longest_idle.close()
        self._live.add(connection)
        return True

    def idle(self, connection: _Connection, idle: bool) -> None:
        """`connection` now waits for its next request (True), or has begun one (False)."""
        if idle:
            self._idle[connection] = None
        else:
            self._idle.pop(connection, None)

    def release(self, connection: _Connection) -> None:
        self._live.discard(connection)
        self._idle.pop(connection, None)

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """(host, port) of every listening socket."""
        assert self._server is not None
        return [sock.getsockname()[:2] for sock in self._server.sockets]

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        try:
            self._server = await loop.create_server(lambda: _Connection(self), host, port, backlog=self.limits.backlog)
        except OSError as exc:
            where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            if exc.errno == errno.EADDRINUSE:
                raise AddressInUse(f"cannot listen on {where}: address already in use") from None
            raise UsageError(f"cannot listen on {where}: {exc.strerror or exc}") from None

    async def close(self) -> None:
        """No more connections; the open ones dropped."""
        if self._server is not None:
            self._server.close()
            for connection in list(self._live):
                connection.abort()
            await self._server.wait_closed()


async def serve_http(host: str, port: int, pages: Pages, limits: HttpLimits | None = None) -> HttpServer:
    """Serving `pages` on HOST:PORT (port 0: any free one) until closed."""
    server = HttpServer(pages, limits or HttpLimits())
    await server.start(host, port)
    return server
