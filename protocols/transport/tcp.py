"""Plain TCP streams of newline-delimited frames (asyncio streams), for line protocols."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from fieldctl.protocols.core.errors import ConnectFailure, UsageError
from fieldctl.protocols.core.limits import MAX_FRAME_BYTES, Malformed
from fieldctl.protocols.transport import failures, within

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def address(url: str) -> tuple[str, int]:
    """tcp://HOST:PORT; a port of 0 or * lets the system pick one (simulators announce it)."""
    parts = urlsplit(url)
    port = parts.netloc.rpartition(":")[2]
    if parts.scheme != "tcp":
        raise failures.unsupported_scheme(url, ("tcp",))
    if not parts.hostname or not (port.isdigit() or port == "*"):
        raise UsageError(f"not a TCP URL: {url} (expected tcp://HOST:PORT)")
    return parts.hostname, 0 if port == "*" else int(port)


async def connect(url: str, timeout: float, max_frame_bytes: int = MAX_FRAME_BYTES) -> Streams:
    host, port = address(url)
    try:
        return await within(asyncio.open_connection(host, port, limit=max_frame_bytes + 1), timeout)
    except TimeoutError:
        raise failures.cannot_connect(url, failures.no_answer(timeout)) from None
    except OSError as exc:
        raise failures.failed(url, exc) from None


async def serve(url: str, handler: Handler, max_frame_bytes: int = MAX_FRAME_BYTES) -> tuple[asyncio.Server, str]:
    """Listens where `url` says; returns the server and the URL it really listens on."""
    host, port = address(url)
    try:
        server = await asyncio.start_server(handler, host, port, limit=max_frame_bytes + 1)
    except OSError as exc:
        raise ConnectFailure(f"cannot listen on {url}: {exc.strerror or exc}") from None
    bound = server.sockets[0].getsockname()
    return server, f"tcp://{host}:{bound[1]}"


async def read_line(reader: asyncio.StreamReader) -> bytes | None:
    """One frame without its newline, or None at end of stream. A line over the reader's limit
    raises Malformed; the stream cannot be trusted to resynchronise, so the caller drops it."""
    try:
        line = await reader.readline()
    except (asyncio.LimitOverrunError, ValueError):
        raise Malformed("a line over the frame size limit") from None
    except (ConnectionError, OSError):
        return None
    if not line:
        return None
    return line.rstrip(b"\r\n")


async def write_line(writer: asyncio.StreamWriter, frame: bytes) -> None:
    writer.write(frame + b"\n")
    await writer.drain()


async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError, OSError):
        await writer.wait_closed()
