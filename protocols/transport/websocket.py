"""WebSocket client and server on the websockets asyncio API: TLS choices, reconnects with capped,
jittered exponential backoff, and an immediate failure when the other side refuses us (the real
Vantiq SDK reconnects hundreds of times a second after a refusal; fieldctl must not)."""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.http11 import USER_AGENT, Request, Response
from websockets.typing import Subprotocol

from fieldctl.protocols.core.errors import ConnectFailure, UsageError
from fieldctl.protocols.core.limits import MAX_FRAME_BYTES
from fieldctl.protocols.transport import LISTEN_REFUSED_AFTER_S, LinkCallback, failures
from fieldctl.protocols.transport.backoff import Backoff

#: Largest message either side takes when the caller does not pass its profile's
#: limits.max_frame_bytes: the project-wide default, not websockets' (or the Vantiq Python SDK's)
#: 1 MiB, which real query answers exceed (vantiq spec §11.8). Bigger ones close with 1009.
#: A connection that lasted this long resets the reconnect backoff; a shorter one counts as a failure.
STABLE_S = 10.0
DEFAULT_MAX_SIZE = MAX_FRAME_BYTES
#: How long a closing handshake may take before the TCP connection is cut (websockets: 10 s). A
#: peer flooding frames holds its close answer behind them while our reads are paused (nobody
#: reads a closing connection), so a role's deadline would otherwise overrun by this much.
CLOSE_TIMEOUT_S = 0.5

#: websockets' own logging goes nowhere: some versions log a hostile client's failed handshake as
#: an error with a traceback on stderr. What a peer did wrong reaches the operator through the
#: roles (one escaped line each), never through a library's log.
QUIET = logging.getLogger("fieldctl.websockets")
QUIET.addHandler(logging.NullHandler())
QUIET.propagate = False


#: The URL schemes a WebSocket endpoint may have.
SCHEMES = ("ws", "wss")


class Unreachable(ConnectFailure):
    """The other side could not be reached this time; worth another try."""


def tls_context(url: str, *, insecure: bool = False, cafile: str | None = None) -> ssl.SSLContext | None:
    """Verification stays on for wss:// unless --insecure; a CA file adds trust, never removes it."""
    if urlsplit(url).scheme != "wss":
        return None
    try:
        context = ssl.create_default_context(cafile=cafile)
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"CA file {cafile}: {exc}") from None
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


async def open_connection(
    url: str,
    *,
    tls: ssl.SSLContext | None = None,
    max_size: int = DEFAULT_MAX_SIZE,
    timeout: float = 10.0,
    headers: dict[str, str] | list[tuple[str, str]] | None = None,
    ping_interval: float | None = 20.0,
    subprotocols: Sequence[str] | None = None,
    user_agent: str | None = USER_AGENT,
) -> ClientConnection:
    """ping_interval None: no automatic keepalive pings (for protocols that ping on their own terms).
    `subprotocols` offered, in order; `user_agent` None: no User-Agent header (a relay passes its
    client's, or none)."""
    try:
        return await connect(
            url,
            ssl=tls,
            max_size=max_size,
            open_timeout=timeout,
            proxy=None,
            logger=QUIET,
            additional_headers=headers,
            user_agent_header=user_agent,
            subprotocols=None if subprotocols is None else [Subprotocol(name) for name in subprotocols],
            compression=None,
            ping_interval=ping_interval,
            close_timeout=CLOSE_TIMEOUT_S,
        )
    except ssl.SSLCertVerificationError as exc:  # before ValueError: it is one too
        raise ConnectFailure(
            f"{url}: certificate not trusted ({exc.verify_message}); see --ca-file, --insecure"
        ) from None
    except InvalidStatus as exc:
        raise ConnectFailure(f"{url} refused the connection: HTTP {exc.response.status_code}") from None
    except (InvalidURI, ValueError) as exc:
        if failures.scheme(url) not in SCHEMES:
            raise failures.unsupported_scheme(url, SCHEMES) from None
        raise UsageError(f"not a WebSocket URL: {url} ({exc})") from None
    except TimeoutError:
        raise failures.cannot_connect(url, failures.no_answer(timeout), kind=Unreachable) from None
    except OSError as exc:
        raise failures.failed(url, exc, kind=Unreachable) from None
    except InvalidHandshake as exc:
        raise Unreachable(f"cannot connect to {url}: {exc}") from None


Session = Callable[[ClientConnection], Awaitable[bool]]


async def keep_connected(
    url: str,
    session: Session,
    *,
    name: str,
    on_link: LinkCallback,
    backoff: Backoff,
    tls: ssl.SSLContext | None = None,
    max_size: int = DEFAULT_MAX_SIZE,
    ping_interval: float | None = 20.0,
    retry_first: bool = True,
) -> None:
    """Runs `session` on a connection until it returns True (done). A dropped connection or an
    unreachable server means another try after the next backoff delay; a ConnectFailure that is
    not Unreachable (refused credentials, HTTP refusal, untrusted certificate) ends it at once.
    retry_first=False: a server still unreachable LISTEN_REFUSED_AFTER_S after the start ends it
    (a wrong URL or port is a mistake to report, not to retry for ever; a server started along with
    us, as a script does, gets the time `listen` gives a peer; losing a working one is not either)."""
    delays = backoff.delays()
    may_retry = retry_first
    first_until = time.monotonic() + LISTEN_REFUSED_AFTER_S
    while True:
        try:
            conn = await open_connection(url, tls=tls, max_size=max_size, ping_interval=ping_interval)
        except Unreachable as exc:
            left = first_until - time.monotonic()
            if not may_retry and left <= 0:
                raise
            delay = next(delays, None)
            if delay is None:
                raise ConnectFailure(f"{exc} (gave up after {backoff.max_retries} retries)") from None
            if not may_retry:
                delay = min(delay, left)  # the last try at the end of the grace
            on_link(name, "retrying", {"url": url, "in_s": round(delay, 2), "error": str(exc)})
            await asyncio.sleep(delay)
            continue
        on_link(name, "connected", {"url": url})
        may_retry = True
        opened = time.monotonic()
        try:
            if await session(conn):
                return
        except ConnectionClosed as exc:
            on_link(
                name,
                "disconnected",
                {
                    "url": url,
                    "code": exc.rcvd.code if exc.rcvd else None,
                    "sent_code": exc.sent.code if exc.sent else None,
                },
            )  # 1009: too big
        finally:
            await conn.close()
            let_go(conn)
        if time.monotonic() - opened >= STABLE_S:
            delays = backoff.delays()  # a connection that held starts the count again
        delay = next(delays, None)
        if delay is None:
            raise ConnectFailure(f"{url} keeps closing the connection (gave up after {backoff.max_retries} retries)")
        # Not at once: a server that accepts and closes straight away must not get a reconnect storm.
        on_link(name, "retrying", {"url": url, "in_s": round(delay, 2)})
        await asyncio.sleep(delay)


async def start_server(
    url: str,
    handler: Callable[[ServerConnection], Awaitable[None]],
    *,
    tls: ssl.SSLContext | None = None,
    max_size: int = DEFAULT_MAX_SIZE,
    ping_interval: float | None = 20.0,
    process_request: Callable[[ServerConnection, Request], Awaitable[Response | None]] | None = None,
    process_response: Callable[[ServerConnection, Request, Response], None] | None = None,
    select_subprotocol: Callable[[ServerConnection, Sequence[Subprotocol]], Subprotocol | None] | None = None,
) -> tuple[Server, str]:
    """Listens where `url` says (port 0 picks a free one); returns the server and its real URL.
    `process_request`, `process_response` and `select_subprotocol` are websockets' handshake hooks
    (a relay answers a client only once its upstream has: as the upstream did, or an HTTP error)."""
    try:
        parts = urlsplit(url)
        port = parts.port or 0
    except ValueError as exc:
        raise UsageError(f"not a WebSocket URL: {url} ({exc})") from None
    if failures.scheme(url) not in SCHEMES:
        raise failures.unsupported_scheme(url, SCHEMES)
    if not parts.hostname:
        raise UsageError(f"not a WebSocket URL: {url}")
    try:
        server = await serve(
            _letting_go(handler),
            parts.hostname,
            port,
            ssl=tls,
            max_size=max_size,
            compression=None,
            ping_interval=ping_interval,
            close_timeout=CLOSE_TIMEOUT_S,
            logger=QUIET,
            process_request=process_request,
            process_response=process_response,
            select_subprotocol=select_subprotocol,
        )
    except OSError as exc:
        raise ConnectFailure(f"cannot listen on {url}: {exc.strerror}") from None
    port = next(iter(server.sockets)).getsockname()[1]
    return server, f"{parts.scheme}://{parts.hostname}:{port}{parts.path}"


def let_go(conn: Any) -> None:
    """For a connection that has closed. websockets keeps the error that ended it abnormally,
    and through that error's traceback its frame parser with the last frame it read (up to
    max_size bytes), in a reference cycle that only a full garbage collection frees: a peer that
    sends megabytes and vanishes, again and again, would leave all of it behind until then."""
    protocol = getattr(conn, "protocol", None)
    if protocol is not None:
        protocol.parser_exc = None


def _letting_go(
    handler: Callable[[ServerConnection], Awaitable[None]],
) -> Callable[[ServerConnection], Awaitable[None]]:
    """`handler`, and let_go() once its connection has closed (websockets closes it after the
    handler returns, with a code that depends on how it returned)."""

    async def serve_one(conn: ServerConnection) -> None:
        closed = asyncio.ensure_future(conn.wait_closed())
        closed.add_done_callback(lambda _: let_go(conn))
        await handler(conn)

    return serve_one


def as_text(frame: str | bytes) -> str:
    return frame if isinstance(frame, str) else frame.decode("utf-8", errors="replace")


def watch_frames(conn: Any, seen: Callable[[str], None]) -> None:
    """Calls seen(opcode name: text, binary, ping, pong, close, cont) for every frame `conn`
    receives. The websockets API hides control frames, but read deadlines renewed by pings and
    keepalive rules that react to the peer's pings need them."""
    process = conn.process_event

    def process_event(event: Any) -> None:
        seen(getattr(event.opcode, "name", "").lower())
        process(event)

    conn.process_event = process_event


def drop(conn: Any) -> None:
    """Ends the TCP connection without a close frame, as some servers refuse a peer."""
    conn.transport.abort()
