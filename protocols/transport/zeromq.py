"""ZeroMQ sockets over zmq.asyncio, with connection state from socket monitors."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Sequence

import zmq
import zmq.asyncio
from zmq.utils.monitor import parse_monitor_message

from fieldctl.protocols.errors import ConnectFailure, Timeout, UsageError

from . import LinkCallback, within


_STATES = {
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


def context() -> zmq.asyncio.Context:
    return zmq.asyncio.Context.instance()


class Socket:
    """One ZeroMQ socket, its monitor, and a 'handshake done' condition to wait on."""

    def __init__(self, kind: int, name: str, on_link: LinkCallback | None = None, **options: int) -> None:
        self.name = name
        self.url = ""
        self.sock = context().socket(kind)
        self.sock.setsockopt(zmq.LINGER, 0)
        for option, value in options.items():
            self.sock.setsockopt(getattr(zmq, option), value)
        self._sync = zmq.Socket.shadow(self.sock.underlying)
        self.ready = asyncio.Event()
        self._on_link = on_link
        self._last_state: str | None = None
        self._monitor: asyncio.Task[None] | None = None

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
                if state == "ready":
                    self.ready.set()
                elif state == "disconnected":
                    self.ready.clear()
                if state and state != self._last_state and self._on_link is not None:
                    self._last_state = state
                    try:
                        self._on_link(self.name, state, {"url": self.url})
                    except Exception:  # e.g. a closed stdout: the command's own path reports it
                        self._on_link = None
        except (asyncio.CancelledError, zmq.ZMQError):
            pass
        finally:
            monitor.close(linger=0)

    def connect(self, url: str) -> None:
        self.url = url
        self._start_monitor()
        try:
            self.sock.connect(url)
        except zmq.ZMQError as exc:
            raise ConnectFailure(f"cannot connect {self.name} to {url}: {exc}") from None

    def bind(self, url: str) -> str:
        try:
            self.sock.bind(url)
        except zmq.ZMQError as exc:
            if exc.errno == zmq.EADDRINUSE:
                raise ConnectFailure(f"cannot bind {self.name} on {url}: address already in use") from None
            raise UsageError(f"cannot bind {self.name} on {url}: {exc}") from None
        self.url = self.sock.getsockopt_string(zmq.LAST_ENDPOINT)
        if self._on_link is not None:
            # Attached after bind: a monitor present during a failed bind clobbers its errno.
            self._start_monitor()
        return self.url

    async def recv(self) -> list[bytes]:
        return await self.sock.recv_multipart()

    def recv_nowait(self) -> list[bytes] | None:
        """Drains without a trip through the event loop; the fast path of a busy stream."""
        try:
            return self._sync.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return None

    async def send(self, frames: Sequence[bytes]) -> None:
        await self.sock.send_multipart(frames)

    def send_nowait(self, frames: Sequence[bytes]) -> None:
        self._sync.send_multipart(frames, zmq.NOBLOCK)

    async def wait_ready(self, timeout: float) -> bool:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.ready.wait(), timeout)
        return self.ready.is_set()

    def close(self, linger_ms: int = 0) -> None:
        if self._monitor is not None:
            if not self._monitor.done():  # its reader is still open: the stop event can be delivered
                with contextlib.suppress(zmq.ZMQError):
                    self.sock.disable_monitor()
            self._monitor.cancel()
        self.sock.close(linger=linger_ms)


def subscriber(name: str, url: str, prefixes: Sequence[bytes], on_link: LinkCallback | None = None) -> Socket:
    sock = Socket(zmq.SUB, name, on_link, RCVHWM=100_000)
    for prefix in prefixes or (b"",):
        sock.sock.setsockopt(zmq.SUBSCRIBE, prefix)
    sock.connect(url)
    return sock


class Publisher(Socket):
    """XPUB: wire-compatible with PUB, and it hears subscriptions, so a publisher can wait for its
    first subscriber instead of losing messages to ZeroMQ's slow-joiner effect."""

    def __init__(self, name: str, url: str, on_link: LinkCallback | None = None) -> None:
        super().__init__(zmq.XPUB, name, on_link, XPUB_VERBOSE=1, SNDHWM=100_000)
        self.bind(url)
        self.subscribed = asyncio.Event()
        self._listener = asyncio.get_running_loop().create_task(self._hear_subscriptions())

    async def _hear_subscriptions(self) -> None:
        with contextlib.suppress(asyncio.CancelledError, zmq.ZMQError):
            while True:
                frames = await self.sock.recv_multipart()
                if frames and frames[0][:1] == b"\x01":
                    self.subscribed.set()

    async def wait_subscriber(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self.subscribed.wait(), timeout)
        except asyncio.TimeoutError:
            raise Timeout(f"no subscriber on {self.url} within {timeout:g} s") from None

    def close(self, linger_ms: int = 2000) -> None:
        """Lingers by default: what was published should still reach the subscribers."""
        self._listener.cancel()
        super().close(linger_ms)


def replier(name: str, url: str, on_link: LinkCallback | None = None) -> Socket:
    sock = Socket(zmq.REP, name, on_link)
    sock.bind(url)
    return sock


class Requester:
    """REQ with the 'lazy pirate' recovery: a request that times out takes its socket with it,
    because a REQ socket cannot send again before it has received (spec §6.8)."""

    def __init__(self, name: str, url: str, on_link: LinkCallback | None = None) -> None:
        self.name, self.url, self._on_link = name, url, on_link
        self._sock: Socket | None = None
        self._lock = asyncio.Lock()

    def _socket(self) -> Socket:
        if self._sock is None:
            self._sock = Socket(zmq.REQ, self.name, self._on_link)
            self._sock.connect(self.url)
        return self._sock

    async def wait_ready(self, timeout: float) -> bool:
        return await self._socket().wait_ready(timeout)

    async def request(self, frames: Sequence[bytes], timeout: float) -> list[bytes]:
        async with self._lock:
            sock = self._socket()
            try:
                return await within(self._round_trip(sock, frames), timeout)
            except asyncio.TimeoutError:
                self.close()
                raise Timeout(f"no reply from {self.url} within {timeout:.3g} s") from None

    @staticmethod
    async def _round_trip(sock: Socket, frames: Sequence[bytes]) -> list[bytes]:
        await sock.send(frames)
        return await sock.recv()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
