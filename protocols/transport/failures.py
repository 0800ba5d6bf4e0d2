"""How a connection that could not be made is told: one wording per cause, whatever the transport
(ZeroMQ, WebSocket, TCP, Unix sockets), so a refused port reads the same for every profile and no
library's own text (`[Errno 111] Connect call failed`, `Protocol not supported`) reaches a person."""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import os
import socket
from collections.abc import Sequence
from urllib.parse import urlsplit

from fieldctl.protocols.core.errors import ConnectFailure, UsageError
from fieldctl.protocols.transport import within

REFUSED = "connection refused (nothing listens there, or it is unreachable)"
NO_SOCKET_FILE = "no such socket file (is the other side running?)"
PERMISSION_DENIED = "permission denied"
#: How long finding why a connection failed may take (a name lookup); past it, it was refused.
DIAGNOSE_S = 2.0


def no_answer(timeout: float) -> str:
    return f"no answer within {timeout:g} s"


def unresolved(host: str) -> str:
    return f"cannot resolve host name {host!r}"


def cannot_connect(
    url: str, reason: str, name: str = "", kind: type[ConnectFailure] = ConnectFailure
) -> ConnectFailure:
    """`cannot connect [NAME ]to URL: REASON`, the one shape of every connect failure."""
    who = f" {name}" if name else ""
    return kind(f"cannot connect{who} to {url}: {reason}")


def reason_of(exc: OSError, host: str | None = None) -> str:
    """What an OSError from connecting means, in the words every transport uses."""
    if isinstance(exc, socket.gaierror):
        return unresolved(host) if host else "cannot resolve host name"
    if isinstance(exc, ConnectionRefusedError) or exc.errno == errno.ECONNREFUSED:
        return REFUSED
    if isinstance(exc, FileNotFoundError):
        return NO_SOCKET_FILE
    if isinstance(exc, PermissionError):
        return PERMISSION_DENIED
    if exc.errno is None and "Connect call failed" in str(exc):  # asyncio: every address refused
        return REFUSED
    text = exc.strerror or str(exc)
    return text[:1].lower() + text[1:]


def failed(url: str, exc: OSError, name: str = "", kind: type[ConnectFailure] = ConnectFailure) -> ConnectFailure:
    return cannot_connect(url, reason_of(exc, _host(url)), name, kind)


def scheme(url: str) -> str:
    """What comes before `://`, lower-case; empty when there is none."""
    return url.partition("://")[0].lower() if "://" in url else ""


def unsupported_scheme(url: str, expected: Sequence[str], where: str = "", *others: str) -> UsageError:
    """A URL no transport of this profile speaks: a usage error (exit 2), not a failed connection.
    `where` names what held it (an option); `others` are further forms accepted (a plain path)."""
    said = f"unsupported URL scheme {scheme(url)!r}" if scheme(url) else "not a URL"
    accepted = " or ".join([*(f"{s}://" for s in expected), *others])
    return UsageError(f"{where + ': ' if where else ''}{url}: {said} (expected {accepted})")


def _host(url: str) -> str | None:
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _socket_file(path: str) -> str:
    """Why a socket file refuses us: not there, not ours to use, or nobody listening on it."""
    if not os.path.exists(path):
        return NO_SOCKET_FILE
    if not os.access(path, os.W_OK):
        return PERMISSION_DENIED
    return REFUSED


async def diagnose(url: str) -> str:
    """Why a connection to `url` keeps failing when the transport does not say (ZeroMQ only
    retries): a host name that does not resolve, a socket file that is not there or not ours to
    use; else refused."""
    if scheme(url) == "ipc":
        return _socket_file(url.partition("://")[2])
    host = _host(url)
    if host and not _is_address(host):
        try:
            await within(asyncio.get_running_loop().getaddrinfo(host, None), DIAGNOSE_S)
        except socket.gaierror:
            return unresolved(host)
        except (OSError, TimeoutError):
            pass
    return REFUSED
