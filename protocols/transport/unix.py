"""Unix stream sockets: listening socket files we own (0600, stale files replaced, live ones never
stolen, always removed) and one-shot documents (connect, write once, close; read within a size cap)."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import socket
import stat
import struct
from collections.abc import Awaitable, Callable

from fieldctl.protocols.core.errors import ConnectFailure, Timeout, UsageError
from fieldctl.protocols.core.limits import MAX_FRAME_BYTES, Malformed
from fieldctl.protocols.transport import failures, within

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

#: Longest line a stream reader takes (asyncio's default, 64 KiB, is below one recorded frame).
LINE_LIMIT = 16 << 20
#: What one read of a document asks for: memory grows by what arrived, never by what was announced.
CHUNK = 64 << 10

_owned: dict[str, int] = {}  # path -> inode of the socket file we created


def _remove_owned(path: str) -> None:
    inode = _owned.pop(path, None)
    with contextlib.suppress(OSError):
        if inode is not None and os.stat(path).st_ino == inode:
            os.unlink(path)


@atexit.register
def _remove_all_owned() -> None:
    for path in list(_owned):
        _remove_owned(path)


def claim(path: str) -> None:
    """Makes `path` free to bind: a stale socket file left by a dead process is removed; a socket
    someone still listens on, or a file that is not a socket, is refused."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise UsageError(f"{path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        os.unlink(path)
        return
    except FileNotFoundError:
        return
    except OSError:
        pass
    finally:
        probe.close()
    raise ConnectFailure(f"{path} is in use by a running process")


#: What tells one master socket file from the next: a restarted daemon deletes the file and binds a
#: new one, which ext4 often gives the same inode number, but never the same change time.
SocketIdentity = tuple[int, int, int]


def socket_identity(path: str) -> SocketIdentity | None:
    """(device, inode, ctime in ns) of the socket file, None when there is none. Connections do not
    touch a socket file's times; only binding a new one (or a chmod) does."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    return info.st_dev, info.st_ino, info.st_ctime_ns


class UnixListener:
    """`limit` is the StreamReader's: its buffer is read ahead to twice that before the socket is
    paused, so a listener that reads documents by CHUNK passes CHUNK (a waiting connection then
    holds 128 KiB, not 32 MiB)."""

    def __init__(self, path: str, handler: Handler, backlog: int = 128, limit: int = LINE_LIMIT) -> None:
        self.path, self.handler, self.backlog, self.limit = path, handler, backlog, limit
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        claim(self.path)
        previous = os.umask(0o177)  # created 0600: no window where others may connect
        try:
            self._server = await asyncio.start_unix_server(
                self._serve, self.path, backlog=self.backlog, limit=self.limit
            )
        except OSError as exc:
            raise ConnectFailure(f"cannot listen on {self.path}: {exc.strerror}") from None
        finally:
            os.umask(previous)
        os.chmod(self.path, 0o600)
        _owned[self.path] = os.stat(self.path).st_ino

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """The handler, ending quietly when cancelled (a run that ends while a peer is still
        writing): Python 3.11's streams ask a handler's task for its exception when it ends, which
        raises for a cancelled one, and the loop prints that as a traceback."""
        try:
            await self.handler(reader, writer)
        except asyncio.CancelledError:
            writer.close()

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        _remove_owned(self.path)


async def read_document(
    reader: asyncio.StreamReader,
    timeout: float,
    max_bytes: int = MAX_FRAME_BYTES,
    single_read: int | None = None,
    large: asyncio.Semaphore | None = None,
) -> bytes:
    """To EOF, or one read of at most `single_read` bytes as the real TracimDaemon does. A sender
    that goes past `max_bytes` is refused with Malformed as soon as it does; one that never
    finishes, Timeout. A document growing past its first CHUNK holds a slot of `large` (shared by
    one listener's connections) until it is read, so many concurrent big senders cost at most
    (slots x max_bytes), while small documents never wait for them."""

    async def to_eof() -> bytes:
        document = bytearray()
        held: asyncio.Semaphore | None = None  # `large`, once this document holds one of its slots
        try:
            while chunk := await reader.read(CHUNK):
                if document and large is not None and held is None:
                    await large.acquire()
                    held = large
                document += chunk
                if len(document) > max_bytes:
                    size = len(document)
                    document.clear()  # now: the exception's traceback keeps this frame, and the buffer, alive
                    raise Malformed(
                        f"a document over the {max_bytes}-byte limit (limits.max_frame_bytes): refused "
                        f"after {size} bytes"
                    )
            return bytes(document)
        finally:
            if held is not None:
                held.release()

    try:
        return await within(reader.read(min(single_read, max_bytes)) if single_read else to_eof(), timeout)
    except TimeoutError:
        raise Timeout(f"no document within {timeout:g} s") from None


def peer_pid(writer: asyncio.StreamWriter) -> int | None:
    """The process on the other end of an accepted connection (SO_PEERCRED), to name a bad sender:
    Unix sockets have no address, and the envelope's `path` is whatever the sender claims."""
    sock = writer.get_extra_info("socket")
    try:
        pid, _, _ = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    except (AttributeError, OSError):
        return None
    return pid or None


def _dial(path: str) -> socket.socket:
    """A Unix connect never waits: it succeeds, fails, or finds the listen backlog full, which asyncio
    would mistake for a pending connection (the first write then fails with EINVAL). Go's net.Dial
    fails at once in that case (spec §2), and so do we."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        sock.connect(path)
    except BlockingIOError:
        sock.close()
        raise ConnectFailure(
            f"cannot connect to {path}: resource temporarily unavailable (its listen backlog is full)"
        ) from None
    except OSError as exc:
        sock.close()
        starting = isinstance(exc, ConnectionRefusedError) or (
            isinstance(exc, FileNotFoundError) and os.path.isdir(os.path.dirname(path) or ".")
        )
        raise failures.failed(path, exc, kind=NotListening if starting else ConnectFailure) from None
    except ValueError as exc:  # a path with a NUL byte, or too long for a socket address
        sock.close()
        raise failures.cannot_connect(path, str(exc)) from None
    return sock


class NotListening(ConnectFailure):
    """No socket file there yet (its folder is), or nobody accepting on it: a peer that may still
    be starting."""


async def connect(path: str, timeout: float) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    sock = _dial(path)
    try:
        return await within(asyncio.open_unix_connection(sock=sock, limit=LINE_LIMIT), timeout)
    except TimeoutError:
        sock.close()
        raise Timeout(f"cannot connect to {path}: {failures.no_answer(timeout)}") from None
    except OSError as exc:
        sock.close()
        raise failures.failed(path, exc) from None


async def connect_when_listening(path: str, timeout: float) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """connect, to a peer that may still be starting (a script starts a simulator and asks it at
    once, as a person pasting a session does): its socket not being there yet is waited out within
    `timeout`, as `listen` gives a peer time to appear; any other failure is at once."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    pause = 0.02
    while True:
        try:
            return await connect(path, max(0.0, deadline - loop.time()))
        except NotListening:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise
        await asyncio.sleep(min(pause, remaining))
        pause = min(pause * 2, 0.25)


async def send_document(path: str, data: bytes, timeout: float = 5.0) -> None:
    """One document on its own connection, in one write, then close. A peer that goes away
    meanwhile (its listener closed with our connection still in the backlog) is a ConnectFailure.
    A document that did not go out (time up, cancelled) is discarded, so closing never waits on
    a peer that accepts and never reads."""
    _, writer = await connect(path, timeout)
    sent = False
    try:
        writer.write(data)
        await within(writer.drain(), timeout)
        sent = True
    except TimeoutError:
        raise Timeout(f"{path} took no document within {timeout:g} s") from None
    except OSError as exc:
        raise ConnectFailure(f"cannot deliver to {path}: {exc.strerror or exc}") from None
    finally:
        if not sent:
            writer.transport.abort()
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
