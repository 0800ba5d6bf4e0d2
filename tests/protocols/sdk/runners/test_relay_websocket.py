"""The WebSocket relay between raw websockets peers on loopback: every message byte-exact both ways
(text stays text, binary binary), the client's path, headers and subprotocols passed upstream and
the upstream's choice passed back, an upstream that refuses answered 502 while other clients are
served, a hostile client dropped alone, close codes passed on both ways, fault rules applied."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.http11 import Request, Response

from fieldctl.protocols.core.limits import Limits
from fieldctl.protocols.core.message import Message
from fieldctl.protocols.sdk.contract import Context
from fieldctl.protocols.sdk.faults import Faults, parse_rule
from fieldctl.protocols.sdk.machine import Frame
from fieldctl.protocols.sdk.runners.relay import Tap
from fieldctl.protocols.sdk.runners.relay_websocket import relay_websockets, upstream_url
from tests.helpers.ports import free_port
from tests.helpers.waiting import until

DEADLINE_S = 20.0


class Upstream:
    """A websockets server that echoes every message (a text "close CODE REASON" closes with it,
    "vanish" drops the TCP connection) and keeps what it received, the request of each connection
    and how each ended; it picks "chat.v2" when offered, sets a cookie and an X- header in its 101,
    and refuses any path under /deny with 403."""

    def __init__(self) -> None:
        self.received: list[Frame] = []
        self.requests: list[Request] = []
        self.ended: list[tuple[int | None, str | None]] = []
        self.server: Server | None = None
        self.url = ""

    async def start(self) -> None:
        self.server = await serve(
            self._echo,
            "127.0.0.1",
            0,
            process_request=self._check,
            process_response=self._answer,
            select_subprotocol=lambda conn, offered: "chat.v2" if "chat.v2" in offered else None,
            compression=None,
        )
        port = next(iter(self.server.sockets)).getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/up"

    def _check(self, conn: ServerConnection, request: Request) -> Response | None:
        self.requests.append(request)
        return conn.respond(403, "no\n") if request.path.startswith("/deny") else None

    def _answer(self, conn: ServerConnection, request: Request, response: Response) -> None:
        response.headers["Set-Cookie"] = "session=up-1"
        response.headers["X-Served-By"] = "upstream"

    async def _echo(self, conn: ServerConnection) -> None:
        try:
            async for message in conn:
                self.received.append(message)
                if message == "vanish":
                    conn.transport.abort()
                    break
                if isinstance(message, str) and message.startswith("close "):
                    _, code, reason = message.split(" ", 2)
                    await conn.close(int(code), reason)
                    break
                await conn.send(message)
        except ConnectionClosed:
            pass
        self.ended.append((conn.close_code, conn.close_reason))

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


def recording_tap(direction: str) -> Tap:
    def tap(frame: Frame) -> list[Message]:
        raw = frame.encode() if isinstance(frame, str) else bytes(frame) if isinstance(frame, bytes) else b""
        return [Message("p", "server", direction, "frame", type(frame).__name__, raw=(raw,))]

    return tap


class Relay:
    """relay_websockets as a task, with what it emits and notifies."""

    def __init__(
        self, upstream: str, faults: Faults | None = None, max_frame_bytes: int = 1 << 20, max_clients: int = 64
    ) -> None:
        self.port = free_port()
        self.local = f"ws://127.0.0.1:{self.port}/up"
        self.emitted: list[Message] = []
        self.notes: list[str] = []
        self.upstream, self.faults, self.limits = upstream, faults or Faults(), Limits(max_frame_bytes)
        self.max_clients = max_clients
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Relay:
        context = Context(self.emitted.append, self.notes.append, {}, self.limits)
        self.task = asyncio.ensure_future(
            relay_websockets(
                context,
                "p",
                {"server": self.local},
                {"server": self.upstream},
                lambda endpoint: (recording_tap("out"), recording_tap("in")),
                self.faults,
                max_clients=self.max_clients,
            )
        )
        await until(lambda: self.links("bound"), DEADLINE_S, "the relay bound")
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task

    def links(self, state: str) -> list[Message]:
        return [m for m in self.emitted if m.channel == "link" and m.kind == state]

    def frames(self, direction: str) -> list[Message]:
        return [m for m in self.emitted if m.channel == "frame" and m.direction == direction]

    def client(self, path: str = "/up", **kwargs: Any) -> Any:
        return connect(f"ws://127.0.0.1:{self.port}{path}", compression=None, open_timeout=DEADLINE_S, **kwargs)


@contextlib.asynccontextmanager
async def upstream_running() -> AsyncIterator[Upstream]:
    upstream = Upstream()
    await upstream.start()
    try:
        yield upstream
    finally:
        await upstream.stop()


async def echoed(client: ClientConnection, message: str | bytes) -> str | bytes:
    await client.send(message)
    return await asyncio.wait_for(client.recv(), DEADLINE_S)


TEXT = 'héllo ✓ {"a": [1, 2.50, "\\u00e9"]}  '
BINARY = bytes(range(256)) * 3 + b"\x00\xff"


def test_messages_go_both_ways_byte_exact_with_the_handshake_passed_upstream() -> None:
    async def scenario() -> None:
        async with upstream_running() as up, Relay(up.url) as relay:
            headers = {"Authorization": "Bearer s3cr3t-token", "X-Trace-Id": "42", "Cookie": "a=b", "X-Empty": ""}
            async with relay.client(
                "/up/deeper?room=7", subprotocols=["chat.v1", "chat.v2"], additional_headers=headers, origin="http://o"
            ) as client:
                assert client.subprotocol == "chat.v2"  # the upstream's choice
                assert client.response is not None and client.response.headers["Set-Cookie"] == "session=up-1"
                assert client.response.headers["X-Served-By"] == "upstream"
                assert await echoed(client, TEXT) == TEXT
                assert await echoed(client, BINARY) == BINARY
                assert isinstance(await echoed(client, ""), str) and await echoed(client, b"") == b""
            await until(lambda: relay.links("disconnected"), DEADLINE_S, "the end reported")
            assert up.received == [TEXT, BINARY, "", b""]  # types and bytes as the client sent them
            request = up.requests[0]
            assert request.path == "/up/deeper?room=7"
            assert request.headers["Authorization"] == "Bearer s3cr3t-token"
            assert request.headers["X-Trace-Id"] == "42" and request.headers["Cookie"] == "a=b"
            assert request.headers["Origin"] == "http://o"
            assert request.headers["User-Agent"].startswith("Python/")  # the client's, as it sent it
            assert request.headers["Sec-WebSocket-Protocol"] == "chat.v1, chat.v2"
            assert [m.raw[0] for m in relay.frames("out")] == [TEXT.encode(), BINARY, b"", b""]
            assert [m.raw[0] for m in relay.frames("in")] == [TEXT.encode(), BINARY, b"", b""]
            assert [m.kind for m in relay.frames("out")] == ["str", "bytes", "str", "bytes"]
            assert relay.links("peer-connected") and relay.links("connected")[0].payload["subprotocol"] == "chat.v2"

    asyncio.run(scenario())


def test_an_upstream_that_refuses_is_a_502_for_that_client_only() -> None:
    async def scenario() -> None:
        async with upstream_running() as up, Relay(up.url) as relay:
            async with relay.client() as served:
                with pytest.raises(InvalidStatus) as refused:
                    async with relay.client("/deny/this"):
                        pass
                assert refused.value.response.status_code == 502
                assert b"HTTP 403" in refused.value.response.body
                assert await echoed(served, "still here") == "still here"
            assert any("403" in note and "502" in note for note in relay.notes)
            assert relay.links("disconnected")[0].payload["error"]

    asyncio.run(scenario())


def test_an_absent_upstream_is_a_502_and_a_client_gets_through_once_it_is_back() -> None:
    async def scenario() -> None:
        port = free_port()
        async with Relay(f"ws://127.0.0.1:{port}/up") as relay:
            with pytest.raises(InvalidStatus) as refused:
                async with relay.client():
                    pass
            assert refused.value.response.status_code == 502
            server = await serve(lambda conn: conn.send("hello"), "127.0.0.1", port, compression=None)
            try:
                async with relay.client() as client:
                    assert await asyncio.wait_for(client.recv(), DEADLINE_S) == "hello"
            finally:
                server.close()
                await server.wait_closed()

    asyncio.run(scenario())


def test_a_client_past_the_cap_is_a_503_and_nothing_goes_upstream_for_it() -> None:
    async def scenario() -> None:
        async with upstream_running() as up, Relay(up.url, max_clients=2) as relay:
            async with relay.client() as first, relay.client() as second:
                for _ in range(3):
                    with pytest.raises(InvalidStatus) as refused:
                        async with relay.client():
                            pass
                    assert refused.value.response.status_code == 503
                assert len(up.requests) == 2  # the refused ones never reached the upstream
                assert await echoed(first, "one") == "one" and await echoed(second, "two") == "two"
            # Each relayed client's end reported (its and its upstream's) once its slot is free.
            await until(lambda: len(relay.links("disconnected")) == 4, DEADLINE_S, "both clients' ends reported")
            async with relay.client() as again:  # a slot is free again once a client has gone
                assert await echoed(again, "three") == "three"
            assert len(up.requests) == 3
            full = [note for note in relay.notes if "503" in note]
            assert len(full) == 1 and "2 clients at once" in full[0]  # throttled: one line for three

    asyncio.run(scenario())


def test_a_hostile_client_is_dropped_alone() -> None:
    async def scenario() -> None:
        async with upstream_running() as up, Relay(up.url, max_frame_bytes=4096) as relay:
            async with relay.client() as served:
                async with relay.client(max_size=None) as hostile:
                    await hostile.send(b"x" * 10_000)  # over the relay's limit: 1009
                    with pytest.raises(ConnectionClosed) as closed:
                        await asyncio.wait_for(hostile.recv(), DEADLINE_S)
                    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
                # Not WebSocket at all: the handshake fails, nothing reaches the upstream.
                reader, writer = await asyncio.open_connection("127.0.0.1", relay.port)
                writer.write(b"\x16\x03\x01garbage\r\n\r\n" + bytes(range(256)))
                await writer.drain()
                await asyncio.wait_for(reader.read(), DEADLINE_S)  # answered and closed, or just closed
                writer.close()
                assert await echoed(served, "fine") == "fine"
            await until(lambda: len(up.ended) == 2, DEADLINE_S, "both upstreams closed")
            assert (1001, "the other side broke the protocol") in up.ended  # the hostile one's upstream
            assert any("closed by the proxy" in note and "1009" in note for note in relay.notes)
            assert b"x" * 10_000 not in up.received

    asyncio.run(scenario())


def test_close_codes_and_reasons_go_on_both_ways_and_a_vanished_side_is_dropped() -> None:
    async def scenario() -> None:
        async with upstream_running() as up, Relay(up.url) as relay:
            async with relay.client() as client:
                await client.close(4001, "client says bye")
            await until(lambda: up.ended, DEADLINE_S, "the upstream closed")
            assert up.ended == [(4001, "client says bye")]
            async with relay.client() as client:
                await client.send("close 4002 upstream says later")
                with pytest.raises(ConnectionClosed) as closed:
                    await asyncio.wait_for(client.recv(), DEADLINE_S)
                assert closed.value.rcvd is not None
                assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4002, "upstream says later")
            async with relay.client() as client:
                await client.send("vanish")
                with pytest.raises(ConnectionClosed) as closed:
                    await asyncio.wait_for(client.recv(), DEADLINE_S)
                assert closed.value.rcvd is None  # dropped as the upstream dropped the proxy
            await until(lambda: len(relay.links("disconnected")) == 6, DEADLINE_S, "every end reported")

    asyncio.run(scenario())


def test_a_client_that_vanishes_drops_its_upstream() -> None:
    async def scenario() -> None:
        async with upstream_running() as up, Relay(up.url) as relay:
            raw = socket.create_connection(("127.0.0.1", relay.port))
            raw.sendall(
                b"GET /up HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            await until(lambda: relay.links("peer-connected"), DEADLINE_S, "the client relayed")
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            raw.close()  # a reset: no close frame
            await until(lambda: up.ended, DEADLINE_S, "its upstream dropped")
            assert up.ended == [(1006, "")]

    asyncio.run(scenario())


def test_a_drop_rule_drops_frames_and_says_so() -> None:
    async def scenario() -> None:
        async with upstream_running() as up, Relay(up.url, Faults([parse_rule("drop direction=in")])) as relay:
            async with relay.client() as client:
                await client.send("one")
                await until(lambda: relay.frames("in"), DEADLINE_S, "the echo tapped")
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(client.recv(), 0.3)
            assert up.received == ["one"]
            assert [m.fault for m in relay.frames("in")] == ["dropped"]
            assert [m.fault for m in relay.frames("out")] == [None]

    asyncio.run(scenario())


def test_a_disconnect_rule_drops_every_client_and_its_upstream() -> None:
    async def scenario() -> None:
        async with upstream_running() as up, Relay(up.url, Faults([parse_rule("disconnect after=1s")])) as relay:
            async with relay.client() as first, relay.client() as second:
                for client in (first, second):
                    with pytest.raises(ConnectionClosed) as closed:
                        await asyncio.wait_for(client.recv(), DEADLINE_S)
                    assert closed.value.rcvd is None  # dropped, as a lost network does
            await until(lambda: len(up.ended) == 2, DEADLINE_S, "both upstreams dropped")
            assert [m.fault for m in relay.links("disconnected") if m.fault] == ["disconnected"]

    asyncio.run(scenario())


def test_the_upstream_url_takes_the_clients_path_under_the_upstreams_prefix() -> None:
    assert upstream_url("ws://h:1", "ws://127.0.0.1:2", "/") == "ws://h:1/"
    assert upstream_url("ws://h:1", "ws://127.0.0.1:2", "/a?b=1") == "ws://h:1/a?b=1"
    local, up = "ws://127.0.0.1:2/api/v1/wsock/websocket", "wss://h/vantiq/api/v1/wsock/websocket"
    assert upstream_url(up, local, "/api/v1/wsock/websocket") == "wss://h/vantiq/api/v1/wsock/websocket"
    assert upstream_url(up, local, "/other") == "wss://h/other"
    assert upstream_url("ws://h:1/x?k=v", "ws://127.0.0.1:2/", "/") == "ws://h:1/x?k=v"


def test_a_client_that_does_not_read_holds_its_upstream_back_not_the_relays_memory() -> None:
    """The upstream floods 1 MiB messages at a client that reads nothing: its sends stall once
    the few buffers on the way are full (the relay's read queue, its write buffer, the kernel's),
    while another client is served at once."""
    sent = 0

    async def flood(conn: ServerConnection) -> None:
        nonlocal sent
        if conn.request is not None and conn.request.path == "/up/flood":
            with contextlib.suppress(ConnectionClosed):
                while True:
                    await conn.send(b"x" * (1 << 20))
                    sent += 1
        else:
            async for message in conn:
                await conn.send(message)

    async def scenario() -> None:
        server = await serve(flood, "127.0.0.1", 0, compression=None, max_size=None)
        port = next(iter(server.sockets)).getsockname()[1]
        try:
            relay = Relay(f"ws://127.0.0.1:{port}/up", max_frame_bytes=2 << 20)
            async with relay, relay.client("/up/flood", max_size=None, max_queue=1, close_timeout=0.5):
                await until(lambda: sent >= 8, DEADLINE_S, "the flood started")
                await asyncio.sleep(2)
                stalled = sent
                await asyncio.sleep(1)
                assert sent - stalled <= 2 and sent < 64  # held back, a bounded number in flight
                async with relay.client() as other:
                    assert await echoed(other, "served") == "served"
        finally:
            server.close()
            await server.wait_closed()

    asyncio.run(scenario())
