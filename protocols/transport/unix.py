"""Unix stream sockets: listening socket files we own (0600, stale files replaced, live ones never
stolen, always removed) and one-shot documents (connect, write once, close)."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import socket
import stat
from typing import Awaitable, Callable

from fieldctl.protocols.errors import ConnectFailure, Timeout, UsageError

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

#: Longest line a stream reader takes (asyncio's default, 64 KiB, is below one recorded frame).
LINE_LIMIT = 16 << 20

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


class UnixListener:
    def __init__(self, path: str, handler: Handler, backlog: int = 128) -> None:
        self.path, self.handler, self.backlog = path, handler, backlog
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        claim(self.path)
        previous = os.umask(0o177)  # created 0600: no window where others may connect
        try:
            self._server = await asyncio.start_unix_server(self.handler, self.path, backlog=self.backlog,
                                                           limit=LINE_LIMIT)
        except OSError as exc:
            raise ConnectFailure(f"cannot listen on {self.path}: {exc.strerror}") from None
        finally:
            os.umask(previous)
        os.chmod(self.path, 0o600)
        _owned[self.path] = os.stat(self.path).st_ino

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        _remove_owned(self.path)


async def read_document(reader: asyncio.StreamReader, timeout: float, single_read: int | None = None) -> bytes:
    """To EOF, or one read of at most `single_read` bytes as the real TracimDaemon does."""
    try:
        return await asyncio.wait_for(reader.read(single_read) if single_read else reader.read(), timeout)
    except asyncio.TimeoutError:
        raise Timeout(f"no document within {timeout:g} s") from None


async def connect(path: str, timeout: float) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    try:
        return await asyncio.wait_for(asyncio.open_unix_connection(path, limit=LINE_LIMIT), timeout)
    except asyncio.TimeoutError:
        raise Timeout(f"cannot connect to {path} within {timeout:g} s") from None
    except OSError as exc:
        raise ConnectFailure(f"cannot connect to {path}: {exc.strerror or exc}") from None


async def send_document(path: str, data: bytes, timeout: float = 5.0) -> None:
    """One document on its own connection, in one write, then close."""
    _, writer = await connect(path, timeout)
    try:
        writer.write(data)
        await asyncio.wait_for(writer.drain(), timeout)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
