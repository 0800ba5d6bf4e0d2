"""Documents, one per Unix-socket connection (a sender connects, writes one document, closes):
a listener that reads each within its limits and hands it on, deliveries one at a time in order,
and a one-shot exchange (a request out, its answer back on a socket of our own). The protocol
decides what a document means and what to send; this module owns the sockets and the deadlines."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from fieldctl.protocols.core.errors import FieldctlError, Timeout
from fieldctl.protocols.core.limits import MAX_FRAME_BYTES, Malformed
from fieldctl.protocols.transport import unix, within

#: Documents over unix.CHUNK read at the same time on one listener: what concurrent big senders
#: may cost is this many times the size limit, while small documents never wait for them.
LARGE_DOCUMENTS = 2


@dataclass(frozen=True)
class Reading:
    """How a listener reads one document: within `read_s` and `max_bytes`; to EOF, or, with
    `single_read`, in one read of at most that many bytes (as a peer that reads once does)."""

    read_s: float
    max_bytes: int = MAX_FRAME_BYTES
    single_read: int | None = None
    large: int = LARGE_DOCUMENTS


@dataclass(frozen=True)
class Document:
    """A document to deliver: the socket it goes to and its bytes."""

    destination: str
    raw: bytes


#: A document that arrived, with who sent it ("pid 123", or "a sender" when the kernel does not tell).
OnDocument = Callable[[bytes, str], Awaitable[None]]
#: A sender refused (over the size or the time limit): who, and why.
OnRefused = Callable[[str, str], None]

D = TypeVar("D", bound=Document)
T = TypeVar("T")
R = TypeVar("R")
A = TypeVar("A")


def sender(writer: asyncio.StreamWriter) -> str:
    """How a warning names who connected: its process, when the kernel tells."""
    pid = unix.peer_pid(writer)
    return f"pid {pid}" if pid is not None else "a sender"


class DocumentListener:
    """Our listening socket (0600, removed on exit): each connection is one document, read within
    `reading`; a sender past a limit is dropped and reported to `on_refused`, and we go on."""

    def __init__(
        self, path: str, reading: Reading, on_document: OnDocument, on_refused: OnRefused, backlog: int = 128
    ) -> None:
        self.path, self.reading, self.on_document, self.on_refused = path, reading, on_document, on_refused
        self.large = asyncio.Semaphore(reading.large)
        self.listener = unix.UnixListener(path, self._serve, backlog=backlog, limit=unix.CHUNK)

    async def __aenter__(self) -> DocumentListener:
        await self.listener.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.listener.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        who = sender(writer)
        reading = self.reading
        try:
            raw = await unix.read_document(reader, reading.read_s, reading.max_bytes, reading.single_read, self.large)
        except (Malformed, Timeout) as exc:
            self.on_refused(who, str(exc))
            return
        finally:
            writer.close()
        await self.on_document(raw, who)


async def send(path: str, document: bytes, deadline: float) -> None:
    """One document on its own connection, in one write, then close, within `deadline` seconds."""
    await unix.send_document(path, document, deadline)


class Outbox(Generic[D, T]):
    """Deliveries one at a time, in order, each within `send_s`: each delivered one is reported to
    `delivered` (which says what it became, a Message say), a failed one to `failed`, and that
    document is lost (no retry), as a peer dialling synchronously does. Bounded when given `limit`
    (documents waiting) or `max_bytes` (their bytes, but one document however big): past either a
    document is refused (`offer` returns False), so a receiver slow to take them costs bounded memory."""

    def __init__(
        self,
        send_s: float,
        delivered: Callable[[D], T],
        failed: Callable[[D, FieldctlError], None],
        *,
        limit: int = 0,
        max_bytes: int | None = None,
    ) -> None:
        self.send_s, self.delivered, self.failed, self.max_bytes = send_s, delivered, failed, max_bytes
        self.queue: asyncio.Queue[tuple[D, asyncio.Future[T | None] | None]] = asyncio.Queue(limit)
        self.waiting = 0  # bytes in the queue

    def offer(self, document: D, future: asyncio.Future[T | None] | None = None) -> bool:
        """Queues `document`, or refuses it past a bound (False)."""
        if self.max_bytes is not None and self.waiting and self.waiting + len(document.raw) > self.max_bytes:
            return False
        try:
            self.queue.put_nowait((document, future))
        except asyncio.QueueFull:
            return False
        self.waiting += len(document.raw)
        return True

    def put(self, documents: Iterable[D]) -> None:
        """Each offered: past a bound it is lost."""
        for document in documents:
            self.offer(document)

    def put_waited(self, documents: Iterable[D]) -> list[asyncio.Future[T | None]]:
        """As `put`, with a future for each: what `delivered` made of it, None when it failed (or
        was refused)."""
        futures: list[asyncio.Future[T | None]] = []
        for document in documents:
            future = asyncio.get_running_loop().create_future()
            if not self.offer(document, future):
                future.set_result(None)
            futures.append(future)
        return futures

    async def run(self) -> None:
        while True:
            document, future = await self.queue.get()
            self.waiting -= len(document.raw)
            result: T | None = None
            try:
                await send(document.destination, document.raw, self.send_s)
            except FieldctlError as exc:
                self.failed(document, exc)
            else:
                result = self.delivered(document)
            if future is not None and not future.done():
                future.set_result(result)


async def exchange(
    path: str,
    reading: Reading,
    on_refused: OnRefused,
    request: Callable[[], Awaitable[R]],
    answer: Callable[[bytes], A | None],
    timeout: float,
) -> tuple[R, A, float]:
    """A one-shot query: listen on `path` (our own temporary socket), send with `request`, and
    hand each document that arrives, in order, to `answer` until it returns one. `timeout` bounds
    all of it, binding and sending included, whatever keeps arriving (what came is not kept: a
    flood costs no memory). Returns (what `request` returned, the answer, seconds it took);
    raises TimeoutError without an answer."""
    inbox: asyncio.Queue[bytes] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + timeout

    async def arrived(raw: bytes, _who: str) -> None:
        await inbox.put(raw)

    async def run() -> tuple[R, A, float]:
        async with DocumentListener(path, reading, arrived, on_refused, backlog=64):
            sent = await request()
            while True:
                raw = await inbox.get()  # returns at once while documents are queued: check the time
                if loop.time() >= deadline:
                    raise TimeoutError
                found = answer(raw)
                if found is not None:
                    return sent, found, loop.time() - started

    result: tuple[R, A, float] = await within(run(), timeout)
    return result
