"""The document runner on real Unix sockets in a temp dir: a listener that hands on each
connection's document and refuses a sender past a limit, ordered deliveries that report a failed
one and go on, and a one-shot exchange bounded by its deadline; no socket file is left behind."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from fieldctl.protocols.core.errors import FieldctlError
from fieldctl.protocols.sdk.runners import documents
from tests.helpers.tracim import send_hostile

READING = documents.Reading(read_s=5.0, max_bytes=1 << 20)


class Collected:
    """What a listener handed on and refused, with an event per arrival to wait on."""

    def __init__(self) -> None:
        self.documents: list[tuple[bytes, str]] = []
        self.refused: list[tuple[str, str]] = []
        self.changed = asyncio.Event()

    async def on_document(self, raw: bytes, who: str) -> None:
        self.documents.append((raw, who))
        self.changed.set()

    def on_refused(self, who: str, reason: str) -> None:
        self.refused.append((who, reason))
        self.changed.set()

    async def until(self, count: int) -> None:
        async def wait() -> None:
            while len(self.documents) + len(self.refused) < count:
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(wait(), 15)


def feed(path: Path, data: bytes) -> asyncio.Future[object]:
    return asyncio.get_running_loop().run_in_executor(None, send_hostile, path, data)


def test_each_connection_is_one_document_on_a_private_socket_removed_on_exit(sockdir: Path) -> None:
    path = sockdir / "l.sock"

    async def run() -> tuple[Collected, int]:
        got = Collected()
        async with documents.DocumentListener(str(path), READING, got.on_document, got.on_refused):
            mode = stat.S_IMODE(os.stat(path).st_mode)
            await documents.send(str(path), b'{"a": 1}', 2.0)
            await documents.send(str(path), b'{"b": 2}', 2.0)
            await got.until(2)
        return got, mode

    got, mode = asyncio.run(run())
    assert mode == 0o600
    assert got.documents == [(b'{"a": 1}', f"pid {os.getpid()}"), (b'{"b": 2}', f"pid {os.getpid()}")]
    assert not path.exists()


def test_a_sender_past_the_size_limit_is_refused_and_the_listener_goes_on(sockdir: Path) -> None:
    path = sockdir / "l.sock"

    async def run() -> Collected:
        got = Collected()
        async with documents.DocumentListener(str(path), READING, got.on_document, got.on_refused):
            await feed(path, b"x" * (4 << 20))
            await got.until(1)
            await documents.send(str(path), b"{}", 2.0)
            await got.until(2)
        return got

    got = asyncio.run(run())
    [(who, reason)] = got.refused
    assert who.startswith("pid ") and "over the 1048576-byte limit" in reason
    assert got.documents == [(b"{}", who)]


def test_a_single_read_takes_what_one_read_gives_and_no_more(sockdir: Path) -> None:
    path = sockdir / "l.sock"

    async def run() -> Collected:
        got = Collected()
        reading = documents.Reading(read_s=5.0, max_bytes=1 << 20, single_read=8)
        async with documents.DocumentListener(str(path), reading, got.on_document, got.on_refused):
            await documents.send(str(path), b"0123456789abcdef", 2.0)
            await got.until(1)
        return got

    [(raw, _)] = asyncio.run(run()).documents
    assert 0 < len(raw) <= 8 and b"0123456789abcdef".startswith(raw)


def test_deliveries_go_in_order_and_a_failed_one_is_reported_and_lost(sockdir: Path) -> None:
    path, missing = sockdir / "l.sock", sockdir / "nobody.sock"
    failed: list[tuple[str, str]] = []

    async def run() -> tuple[Collected, list[str | None]]:
        got = Collected()
        outbox = documents.Outbox[documents.Document, str](
            2.0, lambda doc: doc.raw.decode(), lambda doc, exc: failed.append((doc.destination, str(exc)))
        )
        async with documents.DocumentListener(str(path), READING, got.on_document, got.on_refused):
            delivering = asyncio.ensure_future(outbox.run())
            try:
                outbox.put([documents.Document(str(path), b"1"), documents.Document(str(missing), b"lost")])
                waited = outbox.put_waited([documents.Document(str(path), b"2"), documents.Document(str(missing), b"")])
                results = await asyncio.wait_for(asyncio.gather(*waited), 15)
                await got.until(2)
            finally:
                delivering.cancel()
        return got, results

    got, results = asyncio.run(run())
    assert [raw for raw, _ in got.documents] == [b"1", b"2"]
    assert results == ["2", None]
    assert [destination for destination, _ in failed] == [str(missing), str(missing)]


def test_a_bounded_outbox_holds_a_bounded_number_of_documents_and_bytes() -> None:
    def outbox(max_bytes: int) -> documents.Outbox[documents.Document, None]:
        return documents.Outbox(1.0, lambda doc: None, lambda doc, exc: None, limit=3, max_bytes=max_bytes)

    async def run() -> list[bool]:
        box = outbox(10)
        offered = [box.offer(documents.Document("/nowhere", raw)) for raw in (b"x" * 20, b"y", b"1" * 8, b"z")]
        refused = box.put_waited([documents.Document("/nowhere", b"late")])[0]
        assert refused.done() and refused.result() is None  # refused: its future says so at once
        return offered

    # The first fits however big it is; then bytes are counted, and then documents.
    assert asyncio.run(run()) == [True, False, False, False]

    async def count() -> list[bool]:
        box = outbox(100)
        return [box.offer(documents.Document("/nowhere", b"a")) for _ in range(4)]

    assert asyncio.run(count()) == [True, True, True, False]


def test_an_exchange_returns_the_first_answer_and_leaves_no_socket(sockdir: Path) -> None:
    ours, theirs = sockdir / "ours.sock", sockdir / "theirs.sock"
    seen: list[bytes] = []

    async def peer(raw: bytes, _who: str) -> None:  # answers a request twice: first a stray, then the reply
        await documents.send(str(ours), b"stray", 2.0)
        await documents.send(str(ours), b"reply to " + raw, 2.0)

    def answer(raw: bytes) -> bytes | None:
        seen.append(raw)
        return raw if raw.startswith(b"reply") else None

    async def run() -> tuple[str, bytes, float]:
        async with documents.DocumentListener(str(theirs), READING, peer, lambda who, reason: None):

            async def request() -> str:
                await documents.send(str(theirs), b"ping", 2.0)
                return "sent"

            return await documents.exchange(str(ours), READING, lambda who, reason: None, request, answer, 10.0)

    sent, reply, elapsed = asyncio.run(run())
    assert (sent, reply, seen) == ("sent", b"reply to ping", [b"stray", b"reply to ping"])
    assert 0 <= elapsed < 10.0
    assert not ours.exists()


def test_an_exchange_without_an_answer_ends_at_its_deadline(sockdir: Path) -> None:
    ours, silent = sockdir / "ours.sock", sockdir / "silent.sock"

    async def run() -> None:
        async def ignore(raw: bytes, who: str) -> None:
            return None

        async with documents.DocumentListener(str(silent), READING, ignore, lambda who, reason: None):

            async def request() -> None:
                await documents.send(str(silent), b"ping", 2.0)

            await documents.exchange(str(ours), READING, lambda who, reason: None, request, lambda raw: raw, 0.3)

    with pytest.raises(TimeoutError):
        asyncio.run(run())
    assert not ours.exists()


def test_an_exchange_whose_request_cannot_go_fails_at_once(sockdir: Path) -> None:
    async def run() -> None:
        async def request() -> None:
            await documents.send(str(sockdir / "nobody.sock"), b"ping", 2.0)

        await documents.exchange(str(sockdir / "ours.sock"), READING, lambda w, r: None, request, lambda raw: raw, 5.0)

    with pytest.raises(FieldctlError):
        asyncio.run(run())
    assert not (sockdir / "ours.sock").exists()
