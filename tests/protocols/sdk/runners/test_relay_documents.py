"""The document relay on real Unix sockets in a temp dir, with a protocol of its own (a document is
its reply socket's path, a newline, and a body): a sender gets a socket of the relay's own named
upstream in its place and the answers come back with the names swapped again; a gone sender is
reported and signed off upstream; routes are bounded; a hung upstream does not hold up the
relay's end; no socket file is left behind."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import stat
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import pytest

from fieldctl.protocols.core.limits import Limits
from fieldctl.protocols.core.message import IN, OUT, Message
from fieldctl.protocols.sdk.contract import Context
from fieldctl.protocols.sdk.faults import Faults
from fieldctl.protocols.sdk.machine import Frame
from fieldctl.protocols.sdk.runners import documents, relay_documents
from fieldctl.protocols.sdk.runners.relay import Tap
from tests.helpers.waiting import until

READING = documents.Reading(read_s=5.0, max_bytes=1 << 20)


class Lines(relay_documents.Naming):
    """`PATH\\nBODY`: answers go to PATH; the body `hello` signs on, `bye` off."""

    def address(self, raw: bytes) -> relay_documents.Address:
        path, _, body = raw.decode().partition("\n")
        if not path.startswith("/"):
            return relay_documents.Address(None)
        return relay_documents.Address(path, {"hello": True, "bye": False}.get(body))

    def rename(self, raw: bytes, names: Mapping[str, str]) -> bytes:
        return "\n".join(names.get(line, line) for line in raw.decode().split("\n")).encode()

    def sign_off(self, own: str) -> bytes:
        return f"{own}\nbye".encode()

    def taps(self, client: str | None) -> dict[str, Tap]:
        def tap(direction: str) -> Tap:
            def decode(frame: Frame) -> list[Message]:
                raw = relay_documents.document(frame)
                body = raw.decode().partition("\n")[2]
                return [Message("lines", "main", direction, "lines", body, id=client, raw=(raw,))]

            return decode

        return {OUT: tap(OUT), IN: tap(IN)}


class Side:
    """A socket that keeps what it receives: a sender, or upstream."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.received: list[bytes] = []
        self.listener = documents.DocumentListener(self.path, READING, self._got, lambda who, why: None)

    async def _got(self, raw: bytes, _who: str) -> None:
        self.received.append(raw)


@contextlib.asynccontextmanager
async def relay(
    sockdir: Path, emitted: list[Message], notes: list[str], naming: Lines | None = None, send_s: float = 1.0
) -> AsyncIterator[relay_documents.Sockets]:
    serial = iter(range(100))
    sockets = relay_documents.Sockets(
        str(sockdir / "front.sock"),
        str(sockdir / "up.sock"),
        lambda: str(sockdir / f"own-{next(serial)}.sock"),
        "main",
        "sender",
    )
    context = Context(emitted.append, notes.append, {}, Limits())
    timing = relay_documents.Timing(READING, send_s=send_s, retry_s=0.2)
    task = asyncio.ensure_future(
        relay_documents.DocumentRelay(naming or Lines(), context, Faults(), "lines", sockets, timing).run()
    )
    try:
        await until(lambda: any(m.kind == "bound" for m in emitted), what="bound")
        yield sockets
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_a_sender_is_named_upstream_by_a_socket_of_the_relays_and_answered_through_it(sockdir: Path) -> None:
    upstream, sender = Side(sockdir / "up.sock"), Side(sockdir / "sender.sock")
    emitted: list[Message] = []

    async def run() -> tuple[bytes, bytes, int]:
        async with upstream.listener, sender.listener, relay(sockdir, emitted, []) as sockets:
            await documents.send(sockets.local, f"{sender.path}\nhello".encode(), 2.0)
            await until(lambda: upstream.received, what="the document upstream")
            own = upstream.received[0].decode().partition("\n")[0]
            mode = stat.S_IMODE(os.stat(own).st_mode)
            await documents.send(own, f"{sockets.upstream}\nwelcome {own}".encode(), 2.0)
            await until(lambda: sender.received, what="the answer at the sender")
        return upstream.received[0], sender.received[0], mode

    went, came, mode = asyncio.run(run())
    own = str(sockdir / "own-0.sock")
    assert went == f"{own}\nhello".encode() and mode == 0o600
    # The upstream's name and the relay's socket become the relay's front and the sender's again,
    # which a renaming protocol does only where a name stands alone (here: a whole line).
    assert came == f"{sockdir / 'front.sock'}\nwelcome {own}".encode()
    shown = [(m.direction, m.kind, m.raw[0]) for m in emitted if m.channel == "lines"]
    assert shown == [
        (OUT, "hello", f"{sender.path}\nhello".encode()),
        (IN, f"welcome {own}", f"{sockdir / 'up.sock'}\nwelcome {own}".encode()),  # as it came
        (OUT, "bye", f"{own}\nbye".encode()),  # the relay ends: what signed on is signed off
    ]
    assert sorted(os.listdir(sockdir)) == []


def test_a_gone_sender_is_reported_and_signed_off_upstream(sockdir: Path) -> None:
    upstream = Side(sockdir / "up.sock")
    emitted: list[Message] = []
    notes: list[str] = []

    async def run() -> list[bytes]:
        async with upstream.listener, relay(sockdir, emitted, notes) as sockets:
            gone = str(sockdir / "gone.sock")
            await documents.send(sockets.local, f"{gone}\nhello".encode(), 2.0)
            await until(lambda: upstream.received, what="the sign-on upstream")
            own = upstream.received[0].decode().partition("\n")[0]
            await documents.send(own, f"{sockets.upstream}\nnews".encode(), 2.0)  # nobody at `gone`
            await until(lambda: len(upstream.received) == 2, what="the sign-off upstream")
            assert upstream.received[1] == f"{own}\nbye".encode()
        return upstream.received

    asyncio.run(run())
    drop = [m for m in emitted if m.channel == "link" and m.kind == "disconnected"]
    assert drop and drop[0].payload["url"] == str(sockdir / "gone.sock") and drop[0].endpoint == "sender"
    assert any("is gone" in note for note in notes)


def test_routes_are_bounded_the_idlest_unsigned_one_making_room(sockdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(relay_documents, "MAX_ROUTES", 2)
    upstream = Side(sockdir / "up.sock")
    emitted: list[Message] = []
    notes: list[str] = []

    async def run() -> None:
        async with upstream.listener, relay(sockdir, emitted, notes) as sockets:
            for name, body in (("a", "query"), ("b", "hello"), ("c", "hello"), ("d", "hello")):
                await documents.send(sockets.local, f"{sockdir / name}.sock\n{body}".encode(), 2.0)
            await until(lambda: len(upstream.received) == 3, what="three documents upstream")
            await until(lambda: notes, what="the refusal")

    asyncio.run(run())
    made_room = [m.payload for m in emitted if m.channel == "link" and m.kind == "disconnected"]
    assert made_room[0] == {"url": f"{sockdir / 'a'}.sock", "reason": f"made room for {sockdir / 'c'}.sock"}
    assert f"{sockdir / 'd'}.sock: 2 senders are signed on through the proxy already" in notes[0]
    assert [raw.decode().partition("\n")[2] for raw in upstream.received[:3]] == ["query", "hello", "hello"]


class BulkySignOff(Lines):
    """Sign-offs bigger than a socket's buffer: an upstream that never reads holds each one."""

    def sign_off(self, own: str) -> bytes:
        return f"{own}\nbye\n".encode() + b"." * (4 << 20)


def test_a_hung_upstream_does_not_hold_up_the_relays_end(sockdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Upstream accepts and never reads: the documents in flight and the sign-offs (one each for
    three senders, each allowed 30 s) are given up together after CLOSING_S."""
    monkeypatch.setattr(relay_documents, "CLOSING_S", 0.5)
    accepted: list[socket.socket] = []

    async def run() -> float:
        hung = socket.socket(socket.AF_UNIX)
        hung.bind(str(sockdir / "up.sock"))
        hung.listen(64)
        hung.setblocking(False)
        loop = asyncio.get_running_loop()

        def accept() -> None:
            with contextlib.suppress(BlockingIOError):
                accepted.append(hung.accept()[0])

        loop.add_reader(hung.fileno(), accept)
        emitted: list[Message] = []
        try:
            async with relay(sockdir, emitted, [], BulkySignOff(), send_s=30.0) as sockets:
                for name in "abc":
                    await documents.send(sockets.local, f"{sockdir / name}.sock\nhello".encode(), 2.0)
                # one sender's document too big for the socket's buffer, stuck on its way up
                await documents.send(sockets.local, f"{sockdir / 'a'}.sock\n".encode() + b"." * (900 << 10), 2.0)
                await until(lambda: len(accepted) >= 4, what="the documents at the hung upstream")
                started = loop.time()
            return loop.time() - started
        finally:
            loop.remove_reader(hung.fileno())
            for conn in accepted:
                conn.close()
            hung.close()

    took = asyncio.run(run())
    assert took < 5.0, f"the relay took {took:.1f} s to end"
    assert sorted(os.listdir(sockdir)) == ["up.sock"]
