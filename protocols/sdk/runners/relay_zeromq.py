"""The ZeroMQ relays of `fieldctl proxy`, for any protocol: the protocol gives taps (relay.py),
the sockets, their limits and their link states are here.

- `Publications`: an XPUB bound locally, an XSUB connected upstream. What the publisher sends
  comes in through the XSUB and goes out on the XPUB; what the local subscribers send (their
  subscriptions, every one: XPUB_VERBOSER) goes up through the XSUB unchanged, so the real
  publisher filters as it would for them.
- `Requests`: a ROUTER bound locally, and one DEALER connected upstream per local client (its
  routing id), opened at its first request. The parts after the routing id (an empty delimiter
  first, from REQ) go up unchanged, and each reply's parts come back to that client unchanged:
  REQ, DEALER and ROUTER peers on either side see what they would see directly.

Sends never wait: a frame a full queue cannot take is dropped and said so (throttled), so a slow
or hostile side never stalls the other direction or the other clients. The upstream may be
absent: ZeroMQ connects in the background (`retrying`, then `connected` links), requests wait
in the DEALER's bounded queue meanwhile and time out at their client, as they would directly."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import math
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import zmq

from fieldctl.profiles import Profile
from fieldctl.protocols.core.errors import AddressInUse, UsageError
from fieldctl.protocols.core.message import IN, OUT, Message, link
from fieldctl.protocols.sdk.contract import Context, link_emitter
from fieldctl.protocols.sdk.faults import Faults
from fieldctl.protocols.sdk.machine import Frame
from fieldctl.protocols.transport import Throttle
from fieldctl.protocols.transport.zeromq import YIELD_EVERY_S, Socket, receive_hwm

from .relay import Pipe, Tap, cut_when_due
from .request_reply import parts

#: Local clients with an upstream connection at once; a new client past it closes the one idle
#: longest (its reply, if one was still due, is lost: its client times out as it would directly).
MAX_CLIENTS = 64
#: Open files of one Publications relay (two sockets) and one Requests relay (a ROUTER, and a
#: DEALER and a connection per client), as BaseDriver.open_files counts them (4 a socket).
PUBLICATIONS_OPEN_FILES = 8
REQUESTS_OPEN_FILES = 4 + 5 * MAX_CLIENTS
#: The flags of a part sent at once: one more follows, the last one.
_MORE, _NOW = int(zmq.SNDMORE | zmq.NOBLOCK), int(zmq.NOBLOCK)
#: How long a cut may wait for its local port to be free again (libzmq closes in the background).
REBIND_WITHIN_S = 2.0

#: The channel and kinds of what local subscribers send (`subscription_tap`).
SUBSCRIPTION = "subscription"
SUBSCRIPTION_KINDS = ("subscribe", "unsubscribe", "malformed")
_KIND_OF_FIRST_BYTE = {1: "subscribe", 0: "unsubscribe"}


class ClientTaps(Protocol):
    """The taps of one client's requests (made for each client: they may keep its state, to
    match a reply to its request), each given a request's or reply's content (after_envelope)."""

    def request(self, frame: Frame) -> list[Message]:
        """A request on its way up; never raises."""
        ...

    def reply(self, frame: Frame) -> list[Message]:
        """A reply on its way back; never raises."""
        ...


@dataclass(frozen=True)
class Relayed:
    """One endpoint of a profile a relay serves: bound at `local`, connected to `upstream`."""

    profile: str
    name: str
    local: str
    upstream: str


def topic_text(prefix: bytes) -> str:
    """A subscription prefix as text: UTF-8, any other byte as an escape."""
    return prefix.decode("utf-8", "backslashreplace")


def subscription_tap(profile: str, endpoint: str, describe: Callable[[bytes], str] = topic_text) -> Tap:
    """What local subscribers send, one Message a frame: kind `subscribe` or `unsubscribe`, the
    prefix as `describe` names it (`payload.topic`); anything else (a raw XSUB peer's message) is
    malformed, and is still passed on."""

    def tap(frame: Frame) -> list[Message]:
        message = parts(frame)
        first = message[0] if message else b""
        kind = _KIND_OF_FIRST_BYTE.get(first[0]) if len(message) == 1 and first else None
        if kind is None:
            error = f"not a subscription: {len(message)} parts, first byte {first[:1].hex() or 'none'}"
            return [Message(profile, endpoint, OUT, SUBSCRIPTION, "malformed", None, None, message, error)]
        return [Message(profile, endpoint, OUT, SUBSCRIPTION, kind, {"topic": describe(first[1:])}, None, message)]

    return tap


def after_envelope(tap: Tap) -> Tap:
    """`tap` on a request's or reply's content: its parts after the envelope (up to the first
    empty part, REQ's delimiter), or all of them when there is none (a bare DEALER)."""

    def content(frame: Frame) -> list[Message]:
        message = parts(frame)
        with contextlib.suppress(ValueError):
            message = message[message.index(b"") + 1 :]
        return tap(message)

    return content


class Side:
    """One socket of a relay, read from the event loop's readiness callback: each message goes
    through its Pipe there and then, with no task or future of its own (a relay step never waits:
    its sends never do), so a frame costs one callback on its way through (the fast path). A
    callback takes messages for at most YIELD_EVERY_S, then lets the loop's other work run first."""

    def __init__(self, sock: Socket, warn: Throttle, fail: Callable[[BaseException], None]) -> None:
        self.sock, self.warn, self._fail = sock, warn, fail
        self._loop = asyncio.get_running_loop()
        self._fd = sock.sock.fileno()
        #: The socket without asyncio's bookkeeping: nothing here awaits it.
        self._sync: zmq.Socket[bytes] = zmq.Socket.shadow(sock.sock.underlying)
        self._handle: Callable[[list[bytes]], None] | None = None
        self._woken = False

    def read(self, handle: Callable[[list[bytes]], None]) -> None:
        self._handle = handle
        self._loop.add_reader(self._fd, self._drain)
        self.wake()  # messages queued before now gave the descriptor its wake-up already

    def wake(self) -> None:
        """Reads what is queued soon, whatever the descriptor says."""
        if self._handle is not None and not self._woken:
            self._woken = True
            self._loop.call_soon(self._drain)

    def _drain(self) -> None:
        self._woken = False
        recv, handle = self.sock.recv_nowait, self._handle
        if handle is None:
            return
        until = time.monotonic() + YIELD_EVERY_S
        try:
            while time.monotonic() < until:
                frames = recv()
                if frames is None:
                    return
                handle(frames)
        except Exception as exc:  # noqa: BLE001  a bug, never a peer's frame: the run ends with it
            self.close()
            self._fail(exc)
            return
        self.wake()

    def send_now(self, envelope: tuple[bytes, ...] = ()) -> Callable[[Frame], None]:
        """Sends a frame at once (after `envelope`: a ROUTER's routing id), or drops it, said so,
        when the socket cannot take it now (a full queue); never waits."""
        sock, send_part, warn = self.sock, self._sync.send, self.warn

        def send(frame: Frame) -> None:
            *more, last = (*envelope, *parts(frame))
            try:
                for part in more:  # a message goes whole or not at all: only its first part can fail
                    send_part(part, _MORE)
                send_part(last, _NOW)
            except zmq.Again:
                warn(f"{sock.name}: dropped a message {sock.url} cannot take now (its queue is full)")
            except zmq.ZMQError as exc:
                warn(f"{sock.name}: dropped a message for {sock.url}: {exc}")
            # ZeroMQ's descriptor is edge-triggered: a send may have taken the wake-up of a message
            # that arrived meanwhile. One look after the sends of a turn of the loop (wake) sees it.
            self.wake()

        return send

    def close(self) -> None:
        if self._handle is not None:
            self._handle = None
            self._loop.remove_reader(self._fd)
        self.sock.close()


def relay_now(pipe: Pipe, send_now: Callable[[Frame], None]) -> Callable[[list[bytes]], None]:
    """A Side's handler: each message through `pipe`, to its end before the next (without fault
    rules, through its fast path: no coroutine a message)."""
    fast = pipe.at_once(send_now)
    if fast is not None:
        return lambda frames: fast(tuple(frames))
    relay = pipe.relay

    def handle(frames: list[bytes]) -> None:
        step = relay(tuple(frames))
        try:
            step.send(None)
        except StopIteration:
            return
        step.close()
        raise RuntimeError(f"relaying on {pipe.endpoint} waited: a relay's sends must not")

    return handle


class _Relay:
    """What both relays share: the profile's context, a local endpoint to bind, an upstream one to
    connect to, the tasks of fault rules, and the first failure of any of it (a bug, never a
    peer's frame)."""

    def __init__(self, route: Relayed, context: Context, faults: Faults) -> None:
        self.profile, self.name, self.local_url, self.upstream_url = (
            route.profile,
            route.name,
            route.local,
            route.upstream,
        )
        self.context, self.faults = context, faults
        self.max_frame_bytes = context.limits.max_frame_bytes
        self.link = link_emitter(route.profile, context.emit)
        self.warn = Throttle(context.notify)
        self.failed: asyncio.Future[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._bound_once = False

    def fail(self, error: BaseException) -> None:
        if self.failed is not None and not self.failed.done():
            self.failed.set_exception(error)

    def start(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._ended)
        return task

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            self.fail(error)

    def side(self, sock: Socket) -> Side:
        return Side(sock, self.warn, self.fail)

    def handler(
        self,
        direction: str,
        to: Side,
        tap: Tap,
        envelope: tuple[bytes, ...] = (),
        held_by: list[asyncio.Task[None]] | None = None,
    ) -> Callable[[list[bytes]], None]:
        """What a Side does with each message it reads: through a Pipe of this relay, on to `to`
        (after `envelope`); with fault rules, a task sends what the Pipe holds back (added to
        `held_by` too: the tasks of one client, ended with it)."""
        now = to.send_now(envelope)

        async def send(frame: Frame) -> None:
            now(frame)

        pipe = Pipe(direction, send, tap, self.context, self.faults, endpoint=self.name)
        if self.faults.active:
            task = self.start(pipe.run())
            if held_by is not None:
                held_by.append(task)
        return relay_now(pipe, now)

    async def bind(self, sock: Socket) -> Side:
        """Binds the local endpoint (again, after a cut: libzmq frees the port in the background)
        and announces it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + REBIND_WITHIN_S
        while True:
            try:
                url = sock.bind(self.local_url)
                break
            except AddressInUse:
                if not self._bound_once or loop.time() > deadline:  # at the first bind, the port is someone else's
                    sock.close()
                    raise
                await asyncio.sleep(0.02)
        self.local_url, self._bound_once = url, True
        self.context.emit(link(self.profile, self.name, "bound", {"url": url}))
        return self.side(sock)

    def upstream(self, kind: int) -> Side:
        """A socket connected upstream, in the background: never refused, retried until there."""
        sock = Socket(kind, self.name, self._upstream_link, self.max_frame_bytes)
        try:
            sock.connect(self.upstream_url, refuse_after_s=math.inf)
        except BaseException:
            sock.close()
            raise
        return self.side(sock)

    def _upstream_link(self, endpoint: str, state: str, detail: Any) -> None:
        self.link(endpoint, state, detail)
        if state == "retrying":
            self.warn(f"{endpoint}: upstream {self.upstream_url} does not answer; retrying, and relaying meanwhile")

    async def open(self) -> None:
        raise NotImplementedError

    def close_sides(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        """Ends the tasks, then closes the sockets."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        self.close_sides()

    async def reopen(self) -> None:
        """A cut: every connection dropped, the sockets opened again; clients reconnect by themselves."""
        await self.close()
        await self.open()


class Publications(_Relay):
    """Publish/subscribe: an XPUB bound locally, an XSUB connected upstream. `tap_in` decodes a
    publication, `tap_out` what a subscriber sends (subscription_tap)."""

    def __init__(self, route: Relayed, context: Context, faults: Faults, *, tap_in: Tap, tap_out: Tap) -> None:
        super().__init__(route, context, faults)
        self.tap_in, self.tap_out = tap_in, tap_out
        self._sides: list[Side] = []

    async def open(self) -> None:
        hwm = receive_hwm(self.max_frame_bytes)
        local = await self.bind(
            Socket(zmq.XPUB, self.name, self.link, self.max_frame_bytes, XPUB_VERBOSER=1, SNDHWM=hwm)
        )
        self._sides = [local]
        upstream = self.upstream(zmq.XSUB)
        self._sides.append(upstream)
        upstream.read(self.handler(IN, local, self.tap_in))
        local.read(self.handler(OUT, upstream, self.tap_out))

    def close_sides(self) -> None:
        for side in self._sides:
            side.close()
        self._sides = []


class Requests(_Relay):
    """Request/reply: a ROUTER bound locally, a DEALER upstream for each client. `exchanges()`
    makes a new client's taps."""

    def __init__(
        self,
        route: Relayed,
        context: Context,
        faults: Faults,
        *,
        exchanges: Callable[[], ClientTaps],
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        super().__init__(route, context, faults)
        self.exchanges, self.max_clients = exchanges, max_clients
        self._router: Side | None = None
        self.clients: collections.OrderedDict[bytes, _Client] = collections.OrderedDict()

    async def open(self) -> None:
        self.upstream(zmq.DEALER).close()  # an upstream URL ZeroMQ refuses fails now, not at a client's first request
        router = self._router = await self.bind(Socket(zmq.ROUTER, self.name, self.link, self.max_frame_bytes))
        router.read(functools.partial(self._request, router))

    def _request(self, router: Side, message: list[bytes]) -> None:
        """A request to its client's upstream, the client's connection opened at its first."""
        ident = message[0]
        client = self.clients.get(ident)
        if client is None:
            client = self._client(router, ident)
        else:
            self.clients.move_to_end(ident)
        client.send(message[1:])

    def _client(self, router: Side, ident: bytes) -> _Client:
        if len(self.clients) >= self.max_clients:
            _, idle = self.clients.popitem(last=False)
            idle.close()
            self.warn(f"{self.name}: {self.max_clients} clients at once: closed the upstream connection idle longest")
        client = self.clients[ident] = _Client(self, router, ident)
        return client

    def close_sides(self) -> None:
        while self.clients:
            self.clients.popitem()[1].close()
        if self._router is not None:
            self._router.close()
            self._router = None


class _Client:
    """One local client of a Requests relay: its DEALER upstream and its two Pipes."""

    def __init__(self, relay: Requests, router: Side, ident: bytes) -> None:
        taps = relay.exchanges()
        self.upstream = relay.upstream(zmq.DEALER)
        self.tasks: list[asyncio.Task[None]] = []
        self.send = relay.handler(OUT, self.upstream, after_envelope(taps.request), held_by=self.tasks)
        self.upstream.read(relay.handler(IN, router, after_envelope(taps.reply), (ident,), self.tasks))

    def close(self) -> None:
        """Its connection upstream closed, and what its pipes held back dropped with it."""
        for task in self.tasks:
            task.cancel()
        self.upstream.close()


async def relay_zeromq(
    profile: Profile,
    context: Context,
    upstream: dict[str, str],
    faults: Faults,
    *,
    publications: Mapping[str, tuple[Tap, Tap]],
    requests: Mapping[str, Callable[[], ClientTaps]],
) -> None:
    """A protocol's proxy role: a relay for each of the profile's endpoints `upstream` names,
    Publications for those in `publications` (their taps in and out), Requests for those in
    `requests` (what makes a client's taps), served until cancelled (serve)."""
    if unknown := sorted(set(upstream) - set(profile.endpoints)):
        names = ", ".join(profile.endpoints)
        raise UsageError(f"no endpoint {unknown[0]!r} in profile {profile.name} (endpoints: {names})")
    relays: list[_Relay] = []
    for name, local in profile.endpoints.items():
        if name not in upstream:
            continue
        route = Relayed(profile.name, name, local, upstream[name])
        if name in publications:
            tap_in, tap_out = publications[name]
            relays.append(Publications(route, context, faults, tap_in=tap_in, tap_out=tap_out))
        elif name in requests:
            relays.append(Requests(route, context, faults, exchanges=requests[name]))
    if not relays:
        raise UsageError(f"proxy {profile.name}: no endpoint to relay")
    await serve(relays, context, faults, profile.name)


async def serve(relays: Sequence[_Relay], context: Context, faults: Faults, profile: str) -> None:
    """The proxy role on `relays`, until cancelled: binds and connects each, starts the fault
    rules' clock, cuts every connection when a disconnect rule says so. Raises what a relay's
    own failure was (the local port taken at the start: AddressInUse)."""
    loop = asyncio.get_running_loop()
    failed: asyncio.Future[None] = loop.create_future()
    try:
        for relay in relays:
            relay.failed = failed
            await relay.open()
        faults.start(loop.time())

        async def cut() -> None:
            for relay in relays:
                await relay.reopen()

        cutter = loop.create_task(cut_when_due(faults, cut, context, profile))
        cutter.add_done_callback(functools.partial(_fail, failed))
        try:
            await failed
        finally:
            cutter.cancel()
            await asyncio.wait([cutter])
    finally:
        for relay in relays:
            await relay.close()


def _fail(failed: asyncio.Future[None], task: asyncio.Task[None]) -> None:
    """A failed task's error, as the failure of the whole run."""
    if not task.cancelled() and (error := task.exception()) is not None and not failed.done():
        failed.set_exception(error)
