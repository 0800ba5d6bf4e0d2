"""The ZeroMQ transport every ZeroMQ protocol shares, on real loopback sockets in-process: a refused
connection, deadlines under a flood, frame size limits, and a replier that survives any client."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable

import pytest
import zmq

from fieldctl.protocols.core.errors import ConnectFailure, Timeout
from fieldctl.protocols.transport import Throttle, within, zeromq
from tests.helpers.ports import free_port
from tests.helpers.waiting import until


def url() -> str:
    return f"tcp://127.0.0.1:{free_port()}"


def test_a_refused_connection_raises_at_once() -> None:
    async def run() -> None:
        nowhere = url()
        sub = zeromq.subscriber("events", nowhere, [])
        requester = zeromq.Requester("commands", nowhere)
        try:
            with pytest.raises(ConnectFailure, match=f"cannot connect events to {nowhere}: connection refused"):
                await within(sub.recv(), 5)
            with pytest.raises(ConnectFailure, match="cannot connect commands"):
                await requester.request([b"x"], 5)
        finally:
            sub.close()
            requester.close()

    started = time.monotonic()
    asyncio.run(run())
    assert time.monotonic() - started < 3


def test_a_peer_that_binds_within_the_grace_is_connected() -> None:
    async def run() -> list[bytes]:
        address = url()
        sub = zeromq.subscriber("events", address, [], refuse_after_s=10)
        ctx = zmq.Context()
        pub = ctx.socket(zmq.XPUB)
        try:
            await asyncio.sleep(0.3)  # refused attempts meanwhile: still within the grace
            pub.bind(address)
            await until(lambda: pub.poll(0), 10, "the subscription")
            pub.recv()
            pub.send_multipart([b"t", b"hello"])
            return await within(sub.recv(), 5)
        finally:
            sub.close()
            pub.close(linger=0)
            ctx.term()

    assert asyncio.run(run()) == [b"t", b"hello"]


class Flood:
    """A PUB thread that keeps the subscriber's queue full (XPUB_NODROP blocks instead of dropping)."""

    def __init__(self, address: str, frames: list[bytes]) -> None:
        self.ctx = zmq.Context()
        self.pub = self.ctx.socket(zmq.XPUB)
        self.pub.setsockopt(zmq.XPUB_NODROP, 1)
        self.pub.setsockopt(zmq.SNDTIMEO, 100)
        self.pub.bind(address)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(frames,), daemon=True)
        self.thread.start()

    def _run(self, frames: list[bytes]) -> None:
        while not self.stopping.is_set() and not self.pub.poll(50):
            pass
        while not self.stopping.is_set():
            with contextlib.suppress(zmq.Again):
                self.pub.send_multipart(frames, copy=False)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(5)
        self.pub.close(linger=0)
        self.ctx.term()


def test_a_deadline_holds_while_messages_keep_arriving() -> None:
    """Without a turn for the event loop, a timeout never fires under a flood."""
    address = url()
    flood = Flood(address, [b"t", b"x" * 100])

    async def run() -> int:
        sub = zeromq.subscriber("events", address, [])
        received = 0

        async def forever() -> None:
            nonlocal received
            while True:
                await sub.recv()
                received += 1

        try:
            with pytest.raises(asyncio.TimeoutError):
                await within(forever(), 1.0)
        finally:
            sub.close()
        return received

    try:
        started = time.monotonic()
        assert asyncio.run(run()) > 0
        assert time.monotonic() - started < 4
    finally:
        flood.stop()


def test_a_message_over_the_frame_limit_never_arrives() -> None:
    address = url()
    flood = Flood(address, [b"t", b"x" * 2000])

    async def run() -> None:
        sub = zeromq.subscriber("events", address, [], max_frame_bytes=1000)
        try:
            with pytest.raises(asyncio.TimeoutError):
                await within(sub.recv(), 1.0)
            assert sub.sock.getsockopt(zmq.MAXMSGSIZE) == 1000
            assert sub.sock.getsockopt(zmq.RCVHWM) == zeromq.MAX_QUEUED  # small frames: a deep queue
        finally:
            sub.close()

    try:
        asyncio.run(run())
    finally:
        flood.stop()


def test_receive_queue_is_bounded_in_bytes() -> None:
    assert zeromq.receive_hwm(16 << 20) * (16 << 20) <= zeromq.RECEIVE_QUEUE_BYTES
    assert zeromq.receive_hwm(1 << 20) == zeromq.RECEIVE_QUEUE_BYTES // (1 << 20)
    assert zeromq.receive_hwm(1) == zeromq.MAX_QUEUED and zeromq.receive_hwm(1 << 40) >= 1


def test_the_replier_serves_dealers_and_drops_what_has_no_envelope() -> None:
    warnings: list[str] = []

    async def run() -> list[list[bytes]]:
        replier = zeromq.replier("commands", "tcp://127.0.0.1:*", on_drop=warnings.append)
        ctx = zmq.Context()
        rogue, dealer = ctx.socket(zmq.DEALER), ctx.socket(zmq.DEALER)
        try:
            for sock in (rogue, dealer):
                sock.connect(replier.url)
            for n in range(3):
                rogue.send(b"no envelope %d" % n)
            rogue.send_multipart([b"", b"then a request"])  # one connection is FIFO: dropped before this
            assert await within(replier.recv(), 5) == [b"then a request"]
            await replier.send([b"answered"])
            assert rogue.poll(5000) and rogue.recv_multipart() == [b"", b"answered"]
            for n in range(3):  # pipelined, as a DEALER may (spec 6.9)
                dealer.send_multipart([b"", b"request %d" % n])
            for _ in range(3):
                frames = await within(replier.recv(), 5)
                await replier.send([frames[0].replace(b"request", b"reply")])
            replies = []
            while len(replies) < 3 and dealer.poll(5000):
                replies.append(dealer.recv_multipart())
            return replies
        finally:
            replier.close()
            for sock in (rogue, dealer):
                sock.close(linger=0)
            ctx.term()

    assert asyncio.run(run()) == [[b"", b"reply %d" % n] for n in range(3)]
    assert len(warnings) == 1 and "without a request envelope" in warnings[0]  # throttled


def test_throttle_reports_the_rest_later() -> None:
    said: list[str] = []
    throttle = Throttle(said.append, every_s=0.0)
    quiet = Throttle(said.append, every_s=3600)
    throttle("a")
    throttle("b")
    for _ in range(3):
        quiet("c")
    assert said == ["a", "b", "c"] and quiet.count == 3


class Device:
    """A ROUTER thread that answers every request with its own frames, except b"drop" (never answered)."""

    def __init__(self) -> None:
        self.ctx = zmq.Context()
        self.router = self.ctx.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.LINGER, 0)
        self.router.bind("tcp://127.0.0.1:*")
        self.url = self.router.getsockopt_string(zmq.LAST_ENDPOINT)
        self.peers: set[bytes] = set()  # one routing id per REQ socket
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopping.is_set():
            if self.router.poll(50):
                ident, empty, *body = self.router.recv_multipart()
                self.peers.add(ident)
                if body != [b"drop"]:
                    self.router.send_multipart([ident, empty, *body])

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(5)
        self.router.close()
        self.ctx.term()


def against_device(run: Callable[[str], Awaitable[None]]) -> set[bytes]:
    """Runs `run(url)` against a fresh Device; returns the REQ sockets it saw (routing ids)."""
    device = Device()
    try:
        asyncio.run(run(device.url))
        return device.peers
    finally:
        device.stop()


async def connected(url: str) -> zeromq.Requester:
    """A requester whose first round trip is done and whose monitor has seen the connection."""
    requester = zeromq.Requester("commands", url)
    assert await requester.request([b"first"], 5) == [b"first"]
    await until(lambda: requester._socket().connected_once, 5, "the monitor's connected event")
    return requester


def test_a_connected_requester_times_out_and_recovers() -> None:
    """Once connected, a request takes the fast path (no task, no race with a refusal); its
    deadline still holds, and a timed-out request takes only its socket with it (lazy pirate)."""

    async def run(url: str) -> None:
        requester = await connected(url)
        try:
            assert await requester.request([b"a", b"b"], 5) == [b"a", b"b"]
            started = time.monotonic()
            with pytest.raises(Timeout, match="no reply"):
                await requester.request([b"drop"], 0.3)
            assert 0.25 < time.monotonic() - started < 2
            assert await requester.request([b"again"], 5) == [b"again"]
        finally:
            requester.close()

    assert len(against_device(run)) == 2


@pytest.mark.parametrize("when", ["waiting", "at the deadline"])
def test_a_cancelled_request_is_cancelled(when: str) -> None:
    """Ctrl-C during a request is heard as a cancellation, never turned into a Timeout, even when
    it comes in the same turn of the loop as the deadline; the next request uses a new socket."""

    async def run(url: str) -> None:
        loop = asyncio.get_running_loop()
        requester = await connected(url)
        try:
            task = loop.create_task(requester.request([b"drop"], 0.2 if when != "waiting" else 5))
            await asyncio.sleep(0)  # the request is out
            if when == "waiting":
                loop.call_later(0.1, task.cancel)
            else:  # the deadline's timer and then the cancel fall due in one turn of the loop
                loop.call_later(0.25, task.cancel)
                loop.call_soon(time.sleep, 0.4)
            with pytest.raises(asyncio.CancelledError):
                await task
            assert await requester.request([b"next"], 5) == [b"next"]
        finally:
            requester.close()

    assert len(against_device(run)) == 2
