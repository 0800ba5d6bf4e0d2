"""ZeroMQ sockets over zmq.asyncio, with connection state from socket monitors.

Every socket is bounded where the bytes arrive: MAXMSGSIZE (a peer sending a bigger message is
disconnected by libzmq before it allocates it) and a receive queue whose worst case in bytes is
bounded. A refused first connection raises ConnectFailure (ZeroMQ itself would retry forever),
and a busy socket still yields to the event loop, so every deadline holds under any traffic."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar, cast

import zmq
import zmq.asyncio
from zmq.utils.monitor import parse_monitor_message

from fieldctl.protocols.core.errors import AddressInUse, ConnectFailure, Timeout, UsageError
from fieldctl.protocols.core.limits import MAX_FRAME_BYTES
from fieldctl.protocols.transport import LinkCallback, Throttle, failures, within

T = TypeVar("T")

_STATES: dict[int, str] = {
    zmq.EVENT_CONNECTED: "connected",
    zmq.EVENT_CONNECT_RETRIED: "retrying",
    zmq.EVENT_DISCONNECTED: "disconnected",
    zmq.EVENT_ACCEPTED: "peer-connected",
    zmq.EVENT_HANDSHAKE_SUCCEEDED: "ready",
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL: "handshake-failed",
}
_MONITORED = 0
for _event in _STATES:
    _MONITORED |= _event

#: The URL schemes a ZeroMQ endpoint of a profile may have.
SCHEMES = ("tcp", "ipc")
#: Worst-case bytes a socket's receive queue may hold: its high-water mark (in messages) is this
#: divided by the largest message allowed, capped at MAX_QUEUED messages for small ones.
RECEIVE_QUEUE_BYTES = 512 * 1024 * 1024
MAX_QUEUED = 100_000
#: How long a one-shot publisher (`publish`) waits at exit for slow subscribers to take what it
#: published: their receive queues are small (see receive_hwm), so most of a burst waits here.
DELIVERY_LINGER_MS = 30_000
#: A socket with messages always waiting never suspends in recv(); it yields this often.
YIELD_EVERY_S = 0.02
_sized: zmq.asyncio.Context | None = None
#: Sockets a context may hold when the process may open any number of files.
MAX_SOCKETS_UNLIMITED = 65536


def context() -> zmq.asyncio.Context:
    """The one context of the process, one I/O thread for every socket (`simulate --devices` runs
    thousands). libzmq stops a context at 1,023 sockets; this one may hold as many as the process
    may open files, set before its first socket."""
    global _sized  # noqa: PLW0603  Context.instance() may be a new context (after term()): size each once
    ctx = zmq.asyncio.Context.instance()
    if ctx is not _sized:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        wanted = MAX_SOCKETS_UNLIMITED if soft == resource.RLIM_INFINITY else soft
        if wanted > ctx.get(zmq.MAX_SOCKETS):
            ctx.set(zmq.MAX_SOCKETS, wanted)
        _sized = ctx
    return ctx


def receive_hwm(max_frame_bytes: int) -> int:
    """Messages a receive queue may hold so that it never holds more than RECEIVE_QUEUE_BYTES."""
    return max(2, min(MAX_QUEUED, RECEIVE_QUEUE_BYTES // max(1, max_frame_bytes)))


class Socket:
    """One ZeroMQ socket, its monitor, and a 'handshake done' condition to wait on."""

    def __init__(
        self,
        kind: int,
        name: str,
        on_link: LinkCallback | None = None,
        max_frame_bytes: int = MAX_FRAME_BYTES,
        **options: int,
    ) -> None:
        self.name = name
        self.url = ""
        self.sock = context().socket(kind)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.MAXMSGSIZE, max_frame_bytes)
        self.sock.setsockopt(zmq.RCVHWM, receive_hwm(max_frame_bytes))
        for option, value in options.items():
            self.sock.setsockopt(getattr(zmq, option), value)
        self._sync: zmq.Socket[bytes] = zmq.Socket.shadow(self.sock.underlying)
        self.ready = asyncio.Event()
        self._on_link = on_link
        self._last_state: str | None = None
        self._monitor: asyncio.Task[None] | None = None
        self._connected_once = False
        self._refuse_at = 0.0  # monotonic time from which a refused first connection is final
        #: Resolved with the ConnectFailure when the first connection attempt is refused (a
        #: connecting socket's; a bound one is never refused, so it has none and never races it).
        self._refused: asyncio.Future[ConnectFailure] | None = None
        self._yielded = time.monotonic()

    def _start_monitor(self) -> None:
        if self._monitor is None:
            monitor = self.sock.get_monitor_socket(_MONITORED)
            self._monitor = asyncio.get_running_loop().create_task(self._watch(monitor))

    async def _watch(self, monitor: zmq.asyncio.Socket) -> None:
        """Drains the monitor until cancelled. It must outlive the socket: libzmq's final
        MONITOR_STOPPED event is a blocking send that hangs if nobody is there to take it."""
        try:
            while True:
                event = parse_monitor_message(await monitor.recv_multipart())
                state = _STATES.get(event["event"])
                if state == "connected":
                    self._connected_once = True
                elif state == "retrying" and not self._connected_once and time.monotonic() >= self._refuse_at:
                    await self._refuse()
                if state == "ready":
                    self.ready.set()
                elif state == "disconnected":
                    self.ready.clear()
                if state and state != self._last_state and self._on_link is not None:
                    self._last_state = state
                    try:
                        self._on_link(self.name, state, {"url": self.url})
                    except Exception:  # noqa: BLE001  e.g. a closed stdout: the command's own path reports it
                        self._on_link = None
        except (asyncio.CancelledError, zmq.ZMQError):
            pass
        finally:
            monitor.close(linger=0)

    async def _refuse(self) -> None:
        """ZeroMQ retries a refused connection forever; a tool asked to reach a device that is not
        there says so, and why when it can tell (a name that does not resolve, a socket file that
        is not there). Only the first connection counts: a device that goes away later is retried."""
        if self._refused is not None and not self._refused.done():
            reason = await failures.diagnose(self.url)
            if not self._refused.done():
                self._refused.set_result(failures.cannot_connect(self.url, reason, self.name))

    @property
    def connected_once(self) -> bool:
        """A connection was made: a refusal no longer counts (ZeroMQ reconnects by itself)."""
        return self._connected_once and not (self._refused is not None and self._refused.done())

    async def _unless_refused(self, awaitable: Awaitable[T]) -> T:
        """`awaitable`, or ConnectFailure as soon as the connection is known to be refused. Only
        the first connection can be refused: after it, `awaitable` is awaited as it is (racing it
        costs a task and trips through the event loop on every message)."""
        refused = self._refused
        if refused is None or self.connected_once:
            return await awaitable
        task = asyncio.ensure_future(awaitable)
        try:
            racing: set[asyncio.Future[Any]] = {task, refused}
            await asyncio.wait(racing, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not task.done():
                task.cancel()
        if task.done() and not task.cancelled():
            return task.result()
        raise refused.result()

    def connect(self, url: str, refuse_after_s: float = 0.0) -> None:
        """Connects in the background; a connection still refused `refuse_after_s` from now (at
        once by default) raises ConnectFailure in recv(), send() and wait_ready()."""
        self.url = url
        self._refuse_at = time.monotonic() + refuse_after_s
        self._refused = asyncio.get_running_loop().create_future()
        self._start_monitor()
        try:
            self.sock.connect(url)
        except zmq.ZMQError as exc:
            if exc.errno == zmq.EPROTONOSUPPORT:
                raise failures.unsupported_scheme(url, SCHEMES, f"endpoint {self.name}") from None
            raise failures.cannot_connect(url, str(exc), self.name) from None

    def bind(self, url: str) -> str:
        try:
            self.sock.bind(url)
        except zmq.ZMQError as exc:
            if exc.errno == zmq.EADDRINUSE:
                raise AddressInUse(f"cannot bind {self.name} on {url}: address already in use") from None
            if exc.errno == zmq.EPROTONOSUPPORT:
                raise failures.unsupported_scheme(url, SCHEMES, f"endpoint {self.name}") from None
            raise UsageError(f"cannot bind {self.name} on {url}: {exc}") from None
        self.url = self.sock.getsockopt_string(zmq.LAST_ENDPOINT)
        if self._on_link is not None:
            # Attached after bind: a monitor present during a failed bind clobbers its errno.
            self._start_monitor()
        return self.url

    async def recv(self) -> list[bytes]:
        """The next message. Under a flood, messages are taken without a trip through the event
        loop (the fast path of a busy stream), yet the loop gets its turn every YIELD_EVERY_S: a
        timeout or a signal is never starved by what keeps arriving."""
        frames = self.recv_nowait()
        if frames is None:
            frames = await self._unless_refused(self.sock.recv_multipart())
            self._yielded = time.monotonic()
        elif time.monotonic() - self._yielded > YIELD_EVERY_S:
            await asyncio.sleep(0)
            self._yielded = time.monotonic()
        return frames

    def recv_nowait(self) -> list[bytes] | None:
        """Drains without a trip through the event loop; the fast path of a busy stream."""
        try:
            return self._sync.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return None

    async def recv_by(self, deadline: float) -> list[bytes]:
        """recv() of a socket that has connected, bounded by a deadline in loop time
        (asyncio.TimeoutError past it), without a task of its own: a timer fails the one future
        awaited, as pyzmq's own RCVTIMEO does. A cancellation of ours stays a cancellation: it
        cancels that future (or, once the timer has failed it, is raised in its place). pyzmq
        takes a message already queued at once; then the others still get their turn first (a
        loop of round trips whose replies are always there would otherwise never let them run)."""
        future = _future(self.sock.recv_multipart())
        if future.done():
            await asyncio.sleep(0)
            return future.result()
        timer = asyncio.get_running_loop().call_at(deadline, _fail_late, future)
        try:
            return await future
        finally:
            timer.cancel()

    async def send(self, frames: Sequence[bytes]) -> None:
        await self._unless_refused(self.sock.send_multipart(frames))

    def send_nowait(self, frames: Sequence[bytes]) -> None:
        """Sends at once or raises zmq.Again. Through the asyncio socket, not the shadow: a send
        can consume the wake-up of ZeroMQ's edge-triggered descriptor, and pyzmq then re-arms a
        receive pending on the same socket (an XPUB's subscription listener)."""
        sent = _future(self.sock.send_multipart(frames, zmq.NOBLOCK))
        if not sent.done():  # queued behind an awaited send: not at once
            sent.cancel()
            raise zmq.Again()
        sent.result()

    async def wait_ready(self, timeout: float) -> bool:
        """True once the handshake is done, False after `timeout`; ConnectFailure if refused."""
        with contextlib.suppress(asyncio.TimeoutError):
            await within(self._unless_refused(self.ready.wait()), timeout)
        return self.ready.is_set()

    def close(self, linger_ms: int = 0) -> None:
        if self._monitor is not None:
            if not self._monitor.done():  # its reader is still open: the stop event can be delivered
                with contextlib.suppress(zmq.ZMQError):
                    self.sock.disable_monitor()
            self._monitor.cancel()
        self.sock.close(linger=linger_ms)


def _future(awaitable: Awaitable[T]) -> asyncio.Future[T]:
    """What a zmq.asyncio socket's recv and send return: a Future (pyzmq's documentation), which
    its annotations call an Awaitable. recv_by and send_nowait need the Future's own methods."""
    return cast("asyncio.Future[T]", awaitable)


def _fail_late(future: asyncio.Future[list[bytes]]) -> None:
    if not future.done():
        future.set_exception(TimeoutError())


def subscriber(
    name: str,
    url: str,
    prefixes: Sequence[bytes],
    on_link: LinkCallback | None = None,
    max_frame_bytes: int = MAX_FRAME_BYTES,
    refuse_after_s: float = 0.0,
) -> Socket:
    sock = Socket(zmq.SUB, name, on_link, max_frame_bytes)
    for prefix in prefixes or (b"",):
        sock.sock.setsockopt(zmq.SUBSCRIBE, prefix)
    sock.connect(url, refuse_after_s)
    return sock


class Publisher(Socket):
    """XPUB: wire-compatible with PUB, and it hears subscriptions, so a publisher can wait for its
    first subscriber instead of losing messages to ZeroMQ's slow-joiner effect."""

    def __init__(
        self, name: str, url: str, on_link: LinkCallback | None = None, max_frame_bytes: int = MAX_FRAME_BYTES
    ) -> None:
        super().__init__(zmq.XPUB, name, on_link, max_frame_bytes, XPUB_VERBOSE=1, SNDHWM=MAX_QUEUED)
        self.bind(url)
        self.subscribed = asyncio.Event()
        self._listener = asyncio.get_running_loop().create_task(self._hear_subscriptions())

    async def _hear_subscriptions(self) -> None:
        with contextlib.suppress(asyncio.CancelledError, zmq.ZMQError):
            while True:
                frames = await self.recv()
                if frames and frames[0][:1] == b"\x01":
                    self.subscribed.set()

    async def wait_subscriber(self, timeout: float) -> None:
        try:
            await within(self.subscribed.wait(), timeout)
        except TimeoutError:
            raise Timeout(f"no subscriber on {self.url} within {timeout:g} s") from None

    def close(self, linger_ms: int = 2000) -> None:
        """Lingers by default: what was published should still reach the subscribers."""
        self._listener.cancel()
        super().close(linger_ms)


class Replier(Socket):
    """REP's contract (recv a request, send its reply) over ROUTER, which survives any client: a
    REP socket is left unable to send or receive by a peer speaking raw TCP or old ZMTP, or by one
    that goes away before its reply. Messages without a request envelope are dropped, reported
    through `on_drop` at most every WARN_EVERY_S; a reply to a peer that has gone is dropped."""

    def __init__(
        self,
        name: str,
        url: str,
        on_link: LinkCallback | None = None,
        on_drop: Callable[[str], None] | None = None,
        max_frame_bytes: int = MAX_FRAME_BYTES,
    ) -> None:
        super().__init__(zmq.ROUTER, name, on_link, max_frame_bytes)
        self.bind(url)
        self._drop = Throttle(on_drop)
        self._envelope: list[bytes] | None = None

    async def recv(self) -> list[bytes]:
        """The next request's frames (after the envelope), as REP would deliver them."""
        while True:
            frames = await super().recv()
            try:
                delimiter = frames.index(b"", 1)
            except ValueError:
                self._drop(f"{self.name}: dropped a message without a request envelope (not a REQ or DEALER client)")
                continue
            self._envelope = frames[: delimiter + 1]
            return frames[delimiter + 1 :]

    async def send(self, frames: Sequence[bytes]) -> None:
        """The reply to the last request; dropped if its client has gone."""
        envelope, self._envelope = self._envelope, None
        if envelope is None:
            raise RuntimeError("Replier.send without a request")
        try:
            self.send_nowait([*envelope, *frames])
        except zmq.ZMQError as exc:
            self._drop(f"{self.name}: dropped a reply its client cannot take ({exc})")


def replier(
    name: str,
    url: str,
    on_link: LinkCallback | None = None,
    on_drop: Callable[[str], None] | None = None,
    max_frame_bytes: int = MAX_FRAME_BYTES,
) -> Replier:
    return Replier(name, url, on_link, on_drop, max_frame_bytes)


class Requester:
    """REQ with the 'lazy pirate' recovery: a request that times out takes its socket with it,
    because a REQ socket cannot send again before it has received (spec §6.8)."""

    def __init__(
        self, name: str, url: str, on_link: LinkCallback | None = None, max_frame_bytes: int = MAX_FRAME_BYTES
    ) -> None:
        self.name, self.url, self._on_link = name, url, on_link
        self.max_frame_bytes = max_frame_bytes
        self._sock: Socket | None = None
        self._lock = asyncio.Lock()

    def _socket(self) -> Socket:
        if self._sock is None:
            self._sock = Socket(zmq.REQ, self.name, self._on_link, self.max_frame_bytes)
            self._sock.connect(self.url)
        return self._sock

    async def wait_ready(self, timeout: float) -> bool:
        return await self._socket().wait_ready(timeout)

    async def request(self, frames: Sequence[bytes], timeout: float) -> list[bytes]:
        async with self._lock:
            sock = self._socket()
            try:
                if sock.connected_once and self._sent_at_once(sock, frames):
                    return await sock.recv_by(asyncio.get_running_loop().time() + timeout)
                return await within(self._round_trip(sock, frames), timeout)
            except TimeoutError:
                self.close()
                raise Timeout(f"no reply from {self.url} within {timeout:.3g} s") from None
            except BaseException:  # refused, or cancelled (Ctrl-C) while a request is out
                self.close()
                raise

    @staticmethod
    def _sent_at_once(sock: Socket, frames: Sequence[bytes]) -> bool:
        """The fast path of a connected socket: sent without a trip through the event loop (REQ
        never has a receive pending while it sends; the receive that follows re-reads the
        socket's events when it arms its handler, so no wake-up is lost)."""
        try:
            sock.send_nowait(frames)
        except zmq.Again:  # no peer can take it now: the awaited send waits for one
            return False
        return True

    @staticmethod
    async def _round_trip(sock: Socket, frames: Sequence[bytes]) -> list[bytes]:
        await sock.send(frames)
        return await sock.recv()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
