"""The HTTP server for hostile clients, in this process on loopback with small limits, so that every
deadline passes in a fraction of a second: requests answered and connections kept alive, pipelined
requests in order; oversized heads, too many headers, a trickled head, a silent connection, an idle
one, a client that never reads, one connection too many: each refused or dropped as it should be,
and the server still answers the next client."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fieldctl.protocols.core.errors import ConnectFailure
from fieldctl.protocols.transport.http_server import (
    HttpLimits,
    Page,
    Refusal,
    Request,
    parse_head,
    reused,
    serve_http,
)
from tests.helpers.fuzzing import contained

LIMITS = HttpLimits(
    max_head_bytes=1024,
    max_headers=10,
    head_timeout_s=0.5,
    idle_timeout_s=1.0,
    write_timeout_s=1.0,
    max_connections=4,
)
HELLO = b"hello\n"
BIG = b"x" * (64 << 20)  # more than the kernel's socket buffers on both sides hold
PAGES = {"/": lambda: Page("text/plain", HELLO), "/big": lambda: Page("text/plain", BIG)}
GET = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n"


@contextlib.asynccontextmanager
async def served(limits: HttpLimits = LIMITS) -> AsyncIterator[int]:
    """The server on a free loopback port, closed afterwards."""
    server = await serve_http("127.0.0.1", 0, PAGES, limits)
    try:
        yield server.addresses[0][1]
    finally:
        await server.close()


async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)


async def response(reader: asyncio.StreamReader, timeout: float = 5) -> tuple[int, dict[str, str], bytes]:
    """One response: status, headers (names in lower case), body."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    status_line, *fields = head.decode("latin-1").removesuffix("\r\n\r\n").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (field.partition(":") for field in fields)}
    body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), timeout)
    return int(status_line.split()[1]), headers, body


async def closed_within(reader: asyncio.StreamReader, timeout: float) -> bytes:
    """What is left to read until the server closes; fails if it does not close in time."""
    rest = b""
    deadline = time.monotonic() + timeout
    while chunk := await asyncio.wait_for(reader.read(1 << 16), max(0.0, deadline - time.monotonic())):
        rest += chunk
    return rest


async def refused(port: int, request: bytes) -> tuple[int, bytes]:
    """Sends `request`, reads the answer; the server must close the connection after it."""
    reader, writer = await connect(port)
    writer.write(request)
    status, headers, body = await response(reader)
    assert headers["connection"] == "close"
    assert await closed_within(reader, 2) == b""
    writer.close()
    return status, body


async def served_again(port: int, timeout: float = 5) -> None:
    """Whatever happened before, the next client is answered (once the server has seen the
    connections that ended go: until then, one more is refused with 503)."""
    deadline = time.monotonic() + timeout
    while True:
        reader, writer = await connect(port)
        writer.write(GET)
        status, _, body = await response(reader)
        writer.close()
        if status == 200:
            assert body == HELLO
            return
        assert status == 503 and time.monotonic() < deadline, status


def test_requests_are_answered_on_a_kept_alive_connection_pipelined_or_not() -> None:
    async def main() -> None:
        async with served() as port:
            reader, writer = await connect(port)
            writer.write(GET)
            status, headers, body = await response(reader)
            assert (status, headers["content-type"], body) == (200, "text/plain", HELLO)
            assert "connection" not in headers
            writer.write(
                GET + b"GET /nowhere HTTP/1.1\r\n\r\n" + GET.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
            )
            assert (await response(reader))[::2] == (200, HELLO)
            assert (await response(reader))[0] == 404
            status, headers, _ = await response(reader)
            assert status == 200 and headers["connection"] == "close"
            assert await closed_within(reader, 2) == b""

    asyncio.run(main())


def test_head_gzip_and_http_1_0() -> None:
    async def main() -> None:
        async with served() as port:
            reader, writer = await connect(port)
            writer.write(b"HEAD / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nAccept-Encoding: br, GZIP;q=0.5\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 200 ") and b"Content-Length: 6\r\n" in head
            status, headers, body = await response(reader)
            assert status == 200 and headers["content-encoding"] == "gzip" and gzip.decompress(body) == HELLO
            writer.write(b"GET / HTTP/1.1\r\nAccept-Encoding: gzip;q=0\r\n\r\n")
            assert (await response(reader))[2] == HELLO
            writer.close()
            reader, writer = await connect(port)
            writer.write(b"GET / HTTP/1.0\r\n\r\n")
            assert (await response(reader))[::2] == (200, HELLO)
            assert await closed_within(reader, 2) == b""

    asyncio.run(main())


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 2000 + b"\r\n\r\n", 431),  # one header line over the head's limit
        (b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\n\r\n", 431),  # a request line over it
        (b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 11 + b"\r\n", 431),  # one header too many
        (b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 405),
        (b"GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 400),
        (b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        (b"GET / HTTP/2.0\r\n\r\n", 400),
        (b"GET /\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n", 400),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),  # a TLS hello, more or less
    ],
)
def test_bad_requests_are_refused_and_closed(request_bytes: bytes, status: int) -> None:
    async def main() -> None:
        async with served() as port:
            assert (await refused(port, request_bytes))[0] == status
            await served_again(port)

    asyncio.run(main())


def test_a_trickled_head_is_cut_off_at_its_deadline_and_a_silent_one_closed() -> None:
    async def main() -> None:
        async with served() as port:
            reader, writer = await connect(port)
            started = time.monotonic()

            async def trickle() -> None:
                for byte in b"GET / HTTP/1.1\r\nX-Slow: " + b"z" * 100:
                    writer.write(bytes([byte]))
                    await asyncio.sleep(0.05)

            trickling = asyncio.ensure_future(trickle())
            status, headers, _ = await response(reader)
            assert status == 408 and headers["connection"] == "close"
            assert LIMITS.head_timeout_s - 0.05 <= time.monotonic() - started < LIMITS.head_timeout_s + 1
            trickling.cancel()
            silent, still_open = await connect(port)  # (a writer let go would close it from this side)
            assert await closed_within(silent, LIMITS.head_timeout_s + 1) == b""  # closed without a word
            assert not still_open.is_closing()
            await served_again(port)

    asyncio.run(main())


def test_an_idle_kept_alive_connection_is_closed_after_its_timeout() -> None:
    async def main() -> None:
        async with served() as port:
            reader, writer = await connect(port)
            writer.write(GET)
            await response(reader)
            answered = time.monotonic()
            assert await closed_within(reader, LIMITS.idle_timeout_s + 1) == b""
            assert time.monotonic() - answered >= LIMITS.idle_timeout_s - 0.05

    asyncio.run(main())


def test_a_client_that_never_reads_is_dropped_at_the_write_deadline() -> None:
    async def main() -> None:
        async with served() as port:
            sock = socket.create_connection(("127.0.0.1", port))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
            reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 20)
            writer.write(b"GET /big HTTP/1.1\r\n\r\n")
            await asyncio.sleep(LIMITS.write_timeout_s + 0.5)  # reading nothing meanwhile
            received = await closed_within(reader, 5)
            assert len(received) < len(BIG)  # cut short, not delivered in full
            await served_again(port)

    asyncio.run(main())


def test_one_connection_too_many_is_refused_at_once_while_every_one_is_busy() -> None:
    async def main() -> None:
        async with served(replace(LIMITS, head_timeout_s=5)) as port:
            held = []
            for _ in range(LIMITS.max_connections):
                reader, writer = await connect(port)
                writer.write(b"GET / HTTP/1.1\r\n")  # a head begun: busy (accepted in order, before the next)
                held.append(writer)
            started = time.monotonic()
            reader, writer = await connect(port)  # refused before it could ask: a request would meet a reset
            status, headers, body = await response(reader)
            assert (status, body, headers["connection"]) == (503, b"503 Service Unavailable\n", "close")
            assert await closed_within(reader, 1) == b""
            assert time.monotonic() - started < 0.5
            writer.close()
            held.pop().close()
            await served_again(port)

    asyncio.run(main())


def test_a_new_connection_takes_the_place_of_the_one_idle_longest() -> None:
    async def main() -> None:
        async with served() as port:
            held = []
            for _ in range(LIMITS.max_connections):
                reader, writer = await connect(port)
                writer.write(GET)
                assert (await response(reader))[0] == 200  # then kept alive, idle
                held.append((reader, writer))
            await served_again(port)  # served at once, in the place of the first
            assert await closed_within(held[0][0], 1) == b""
            for reader, writer in held[1:]:
                writer.write(GET)
                assert (await response(reader))[0] == 200

    asyncio.run(main())


def test_a_port_in_use_is_a_connect_failure() -> None:
    async def main() -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            with pytest.raises(ConnectFailure, match="address already in use"):
                await serve_http("127.0.0.1", taken.getsockname()[1], PAGES)

    asyncio.run(main())


def test_parse_head() -> None:
    request = parse_head(b"GET /metrics?name[]=up HTTP/1.1\r\nAccept-Encoding: gzip\r\nConnection: Keep-Alive", 10)
    assert (request.method, request.path, request.keep_alive, request.gzip) == ("GET", "/metrics", True, True)
    assert not parse_head(b"GET / HTTP/1.1\r\nConnection: close", 10).keep_alive
    assert not parse_head(b"HEAD / HTTP/1.0", 10).keep_alive
    with pytest.raises(Refusal) as refusal:
        parse_head(b"DELETE / HTTP/1.1", 10)
    assert refusal.value.status == 405


HEADER_NAMES = st.sampled_from(["Host", "Connection", "Accept-Encoding", "Content-Length", "Transfer-Encoding", "X"])
HEADER_LINES = st.builds(
    lambda name, sep, value: name + sep + value, HEADER_NAMES, st.sampled_from([": ", ":", " : ", ""]), st.text()
)
HEADS = st.builds(
    lambda method, target, version, lines: "\r\n".join([f"{method} {target} {version}", *lines]).encode(
        "utf-8", "surrogatepass"
    ),
    st.sampled_from(["GET", "HEAD", "POST", "get", ""]) | st.text(max_size=8),
    st.text(max_size=30),
    st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/2", ""]) | st.text(max_size=10),
    st.lists(HEADER_LINES, max_size=12),
)


@pytest.mark.fuzz
@given(st.binary(max_size=2048) | HEADS)
def test_any_head_is_a_request_or_a_refusal(head: bytes) -> None:
    request = contained(parse_head, head, 10, allowed=(Refusal,))
    assert request is None or (isinstance(request, Request) and request.method in ("GET", "HEAD"))


def test_a_reused_page_is_made_once_within_its_age() -> None:
    made: list[int] = []

    def make() -> Page:
        made.append(1)
        return Page("text/plain", b"%d" % len(made))

    page = reused(make, 60)
    assert page() is page() and len(made) == 1
    fresh = reused(make, 0)
    assert fresh().body != fresh().body
