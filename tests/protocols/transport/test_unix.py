"""The Unix-socket transport against hostile peers, on real sockets in a temp dir: a document read
within a size cap and a time limit, and every way a delivery can fail is a ConnectFailure (never an
OSError that would end a role): full backlog, a peer that goes away, an impossible path."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from pathlib import Path

import pytest

from fieldctl.protocols.core.errors import ConnectFailure, Timeout
from fieldctl.protocols.core.limits import Malformed
from fieldctl.protocols.transport import unix
from tests.helpers.tracim import send_hostile


def feed(path: Path, data: bytes) -> threading.Thread:
    """A sender in a thread that writes `data` and tolerates being cut off, as a hostile peer would."""
    thread = threading.Thread(target=send_hostile, args=(path, data), daemon=True)
    thread.start()
    return thread


async def read_one(path: Path, data: bytes, **kwargs: object) -> bytes:
    """Listens on `path`, lets a sender write `data`, returns read_document's result."""
    result: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            result.set_result(await unix.read_document(reader, **kwargs))  # type: ignore[arg-type]
        except Exception as exc:  # noqa: BLE001  whatever read_document raises is what the test reads
            result.set_exception(exc)
        finally:
            writer.close()

    listener = unix.UnixListener(str(path), serve)
    await listener.start()
    try:
        feed(path, data)
        return await asyncio.wait_for(result, 15)
    finally:
        listener.close()


def test_document_within_the_cap_is_read_to_eof(sockdir: Path) -> None:
    data = b"x" * (3 << 20)
    assert asyncio.run(read_one(sockdir / "a.sock", data, timeout=10, max_bytes=4 << 20)) == data


def test_document_over_the_cap_is_refused_as_it_arrives(sockdir: Path) -> None:
    with pytest.raises(Malformed, match="over the 1048576-byte limit"):
        asyncio.run(read_one(sockdir / "a.sock", b"y" * (32 << 20), timeout=10, max_bytes=1 << 20))


def test_single_read_never_exceeds_the_cap(sockdir: Path) -> None:
    got = asyncio.run(read_one(sockdir / "a.sock", b"z" * 10_000, timeout=10, max_bytes=100, single_read=4096))
    assert got == b"z" * 100


def test_a_sender_that_never_finishes_times_out(sockdir: Path) -> None:
    outcome: list[BaseException] = []

    async def main() -> None:
        path = sockdir / "slow.sock"

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await unix.read_document(reader, 0.3)
            except Timeout as exc:
                outcome.append(exc)
            finally:
                writer.close()

        listener = unix.UnixListener(str(path), serve, limit=unix.CHUNK)
        await listener.start()
        try:
            reader, writer = await unix.connect(str(path), 2)
            writer.write(b'{"path":')
            started = time.monotonic()
            assert await asyncio.wait_for(reader.read(), 5) == b""  # dropped at the reader's deadline
            assert time.monotonic() - started < 3
            writer.close()
        finally:
            listener.close()

    asyncio.run(main())
    assert [str(exc) for exc in outcome] == ["no document within 0.3 s"]


def test_full_backlog_fails_at_once_like_go(sockdir: Path) -> None:
    """asyncio took EAGAIN for a pending connect; the write then raised EINVAL (an OSError that
    ended `simulate tracim` with exit 1 when a Python SDK client, backlog 1, was slow)."""
    path = sockdir / "busy.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as busy:
        busy.bind(str(path))
        busy.listen(1)  # never accepts

        async def main() -> list[str]:
            outcomes = []
            for _ in range(4):
                try:
                    await unix.send_document(str(path), b"{}", 2.0)
                    outcomes.append("sent")
                except ConnectFailure as exc:
                    outcomes.append(str(exc))
            return outcomes

        started = time.monotonic()
        outcomes = asyncio.run(main())
    assert outcomes[:2] == ["sent", "sent"] and all("backlog is full" in text for text in outcomes[2:])
    assert time.monotonic() - started < 1.5


def test_a_peer_that_goes_away_mid_document_is_a_connect_failure(sockdir: Path) -> None:
    path = sockdir / "rude.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as rude:
        rude.bind(str(path))
        rude.listen(4)

        def accept_and_drop() -> None:
            conn, _ = rude.accept()
            conn.close()

        threading.Thread(target=accept_and_drop, daemon=True).start()
        with pytest.raises(ConnectFailure, match="cannot deliver"):
            asyncio.run(unix.send_document(str(path), b"w" * (8 << 20), 5.0))


@pytest.mark.parametrize("path", ["a\x00b", "x" * 200, "/nonexistent/dir/s.sock", "\udcff.sock"])
def test_impossible_paths_are_connect_failures(path: str) -> None:
    with pytest.raises(ConnectFailure):
        asyncio.run(unix.send_document(path, b"{}", 1.0))


def test_peer_pid_names_the_sender(sockdir: Path) -> None:
    async def main() -> int | None:
        pids: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            pids.set_result(unix.peer_pid(writer))
            writer.close()

        listener = unix.UnixListener(str(sockdir / "p.sock"), serve)
        await listener.start()
        try:
            await unix.send_document(str(sockdir / "p.sock"), b"{}", 2.0)
            return await asyncio.wait_for(pids, 5)
        finally:
            listener.close()

    assert asyncio.run(main()) == os.getpid()


def test_a_peer_still_starting_is_waited_for(sockdir: Path) -> None:
    """A script starts a simulator and asks it at once: the socket that appears later is reached."""
    path = sockdir / "late.sock"

    async def main() -> bytes:
        asking = asyncio.ensure_future(unix.connect_when_listening(str(path), 10.0))
        await asyncio.sleep(0.3)  # long enough for several attempts at a path with no socket yet
        assert not asking.done()
        accepted: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.set_result(await reader.read())
            writer.close()

        listener = unix.UnixListener(str(path), serve)
        await listener.start()
        try:
            _, writer = await asking
            writer.write(b"hello")
            writer.close()
            return await asyncio.wait_for(accepted, 10)
        finally:
            listener.close()

    assert asyncio.run(main()) == b"hello"


def test_waiting_for_a_peer_ends_at_the_timeout_and_other_failures_are_at_once(sockdir: Path) -> None:
    started = time.monotonic()
    with pytest.raises(ConnectFailure, match="no such socket file"):
        asyncio.run(unix.connect_when_listening(str(sockdir / "nobody.sock"), 0.5))
    assert 0.4 < time.monotonic() - started < 5
    started = time.monotonic()
    with pytest.raises(ConnectFailure):
        asyncio.run(unix.connect_when_listening("/nonexistent/dir/s.sock", 10.0))  # no folder: a typo
    assert time.monotonic() - started < 2
