"""Client sessions, which the console and bench's command rows run on: a session keeps its
sockets across commands, a synchronous command opens no subscription, an asynchronous one still
gets its result, a timed-out request takes only its REQ socket, and the console keeps one session.

The device is a raw ROUTER + XPUB peer on loopback that counts what the client opens: each REQ
socket shows up as a new routing id on the ROUTER, each SUB socket as a subscribe on the XPUB."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import zmq

from fieldctl.profiles.loader import load_profile
from fieldctl.protocols.autotrainer.codec import encode_command_result, encode_reply
from fieldctl.protocols.autotrainer.driver import Driver
from fieldctl.protocols.core.errors import Timeout, Unsupported
from fieldctl.protocols.core.message import Message
from fieldctl.protocols.sdk.contract import BaseDriver, ClientSession, CommandRequest
from tests.helpers.processes import run_cli
from tests.helpers.waiting import until

RESULT_TOPIC = (6001).to_bytes(4, "little")


class Device(threading.Thread):
    """Answers get-status (400) at once; set-application-mode (120) with 201, its COMMAND_RESULT
    published before the reply (it can overtake it), after another client's result; drops any
    request whose data is {"drop": true}, as a device that never answers."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        ctx = zmq.Context.instance()
        self.router, self.xpub = ctx.socket(zmq.ROUTER), ctx.socket(zmq.XPUB)
        self.xpub.setsockopt(zmq.XPUB_VERBOSE, 1)
        for sock in (self.router, self.xpub):
            sock.setsockopt(zmq.LINGER, 0)
            sock.bind("tcp://127.0.0.1:0")
        self.commands = self.router.getsockopt_string(zmq.LAST_ENDPOINT)
        self.events = self.xpub.getsockopt_string(zmq.LAST_ENDPOINT)
        self.requesters: set[bytes] = set()  # routing ids: one per REQ socket that sent something
        self.subscriptions = 0
        self.requests: list[dict[str, Any]] = []
        self._halt = threading.Event()

    @property
    def args(self) -> list[str]:
        return ["--endpoint", f"events={self.events}", "--endpoint", f"commands={self.commands}"]

    def run(self) -> None:
        poller = zmq.Poller()
        poller.register(self.router, zmq.POLLIN)
        poller.register(self.xpub, zmq.POLLIN)
        while not self._halt.is_set():
            ready = dict(poller.poll(50))
            if self.xpub in ready and self.xpub.recv()[:1] == b"\x01":
                self.subscriptions += 1
            if self.router in ready:
                ident, empty, body = self.router.recv_multipart()
                self._answer(ident, empty, json.loads(body))
        self.router.close()
        self.xpub.close()

    def _answer(self, ident: bytes, empty: bytes, request: dict[str, Any]) -> None:
        self.requesters.add(ident)
        self.requests.append(request)
        nonce, code = request.get("nonce"), request["command"]
        if request.get("data") == {"drop": True}:
            return
        if code == 120:
            self.xpub.send_multipart([RESULT_TOPIC, encode_command_result(nonce + 1, code, 400)])  # someone else's
            self.xpub.send_multipart([RESULT_TOPIC, encode_command_result(nonce, code, 100, {"mode": 100})])
            self.router.send_multipart([ident, empty, encode_reply(nonce, code, 201)])
        else:
            self.router.send_multipart([ident, empty, encode_reply(nonce, code, 100, {"status": "ok"})])

    def stop(self) -> None:
        self._halt.set()
        self.join(5)


@pytest.fixture
def device() -> Iterator[Device]:
    peer = Device()
    peer.start()
    yield peer
    peer.stop()


def driver_for(device: Device) -> Driver:
    profile = load_profile("autotrainer", endpoints=[f"events={device.events}", f"commands={device.commands}"])
    return Driver(profile, lambda text: None)


def session_of(device: Device, emit: Any) -> ClientSession:
    driver = driver_for(device)
    return driver.session(driver.context(emit))


def test_a_session_reuses_one_req_socket_and_a_sync_command_subscribes_to_nothing(device: Device) -> None:
    async def run() -> None:
        async with session_of(device, lambda msg: None) as session:
            for _ in range(5):
                outcome = await session.command("get-status", None, timeout=10, wait=True)
                assert outcome.ok and outcome.rtt_s is not None

    asyncio.run(run())
    assert len(device.requests) == 5
    assert len(device.requesters) == 1 and device.subscriptions == 0


def test_async_commands_get_their_results_over_one_kept_subscription(device: Device) -> None:
    seen: list[Message] = []

    async def run() -> None:
        async with session_of(device, seen.append) as session:
            assert (await session.command("get-status", None, timeout=10, wait=True)).ok
            for _ in range(3):
                outcome = await session.command("set-application-mode", {"mode": 100}, timeout=10, wait=True)
                assert outcome.ok, outcome.summary
                assert [m.channel for m in outcome.messages] == ["command", "reply", "command_result"]
                assert outcome.messages[-1].payload["data"] == {"mode": 100}
                assert outcome.messages[-1].id == outcome.messages[0].id  # ours, not the other client's

    asyncio.run(run())
    assert len(device.requesters) == 1 and device.subscriptions == 1
    assert [m.channel for m in seen].count("command_result") == 3


def test_no_wait_returns_after_the_reply_without_subscribing(device: Device) -> None:
    async def run() -> None:
        async with session_of(device, lambda msg: None) as session:
            outcome = await session.command("set-application-mode", {"mode": 100}, timeout=10, wait=False)
            assert outcome.ok and [m.channel for m in outcome.messages] == ["command", "reply"]

    asyncio.run(run())
    assert device.subscriptions == 0


def test_a_timeout_takes_only_its_req_socket_and_the_next_command_works(device: Device) -> None:
    async def run() -> None:
        async with session_of(device, lambda msg: None) as session:
            assert (await session.command("get-status", None, timeout=10, wait=True)).ok
            with pytest.raises(Timeout):
                await session.command("get-status", {"drop": True}, timeout=0.3, wait=True)
            for _ in range(2):
                assert (await session.command("get-status", None, timeout=10, wait=True)).ok

    asyncio.run(run())
    assert len(device.requests) == 4
    assert len(device.requesters) == 2  # the first socket until the timeout, one new one after it


def test_a_cancelled_command_leaves_a_session_that_still_works(device: Device) -> None:
    async def run() -> None:
        async with session_of(device, lambda msg: None) as session:
            task = asyncio.ensure_future(session.command("get-status", {"drop": True}, timeout=10, wait=True))
            await until(lambda: device.requests, 10)  # the request has reached the device
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert (await session.command("get-status", None, timeout=10, wait=True)).ok

    asyncio.run(run())


def test_the_default_session_refuses_commands_and_says_which_side_sends_them() -> None:
    class Plain(BaseDriver):
        pass

    class Platform(BaseDriver):
        commands_from_simulator = True

    async def refusal(driver: BaseDriver) -> str:
        async with driver.session(driver.context(lambda msg: None)) as session:
            assert isinstance(session, ClientSession)
            with pytest.raises(Unsupported) as refused:
                await session.command("x", 1, timeout=1, wait=True)
        return str(refused.value)

    profile = load_profile("autotrainer")
    assert asyncio.run(refusal(Plain(profile, lambda text: None))) == "command is not supported for profile autotrainer"
    assert "add --via SOCKET" in asyncio.run(refusal(Platform(profile, lambda text: None)))


def test_a_session_sends_each_command_with_its_own_options_over_the_sessions() -> None:
    sent: list[CommandRequest] = []

    async def send(request: CommandRequest) -> Any:
        sent.append(request)
        return "outcome"

    driver = BaseDriver(load_profile("autotrainer"), lambda text: None)
    shown, own = (lambda msg: None), (lambda msg: None)

    async def run() -> None:
        async with ClientSession(driver, driver.context(shown, {"a": 1, "b": 1}), send) as session:
            assert await session.command("x", 1, timeout=1, wait=True) == "outcome"
            assert await session.command("y", 2, timeout=2, wait=False, emit=own, options={"b": 2}) == "outcome"

    asyncio.run(run())
    assert sent == [
        CommandRequest("x", 1, 1, True, shown, {"a": 1, "b": 1}),
        CommandRequest("y", 2, 2, False, own, {"a": 1, "b": 2}),
    ]


def test_fieldctl_command_get_status_opens_no_subscription(device: Device) -> None:
    result = run_cli("command", "autotrainer", "get-status", "--json", *device.args)
    assert result.returncode == 0, result.stderr
    assert device.subscriptions == 0 and len(device.requesters) == 1
    result = run_cli(
        "command", "autotrainer", "set-application-mode", "--data", '{"mode": 100}', "--json", *device.args
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1])["channel"] == "command_result"
    assert device.subscriptions == 1


def test_the_console_keeps_one_session_for_its_commands(device: Device) -> None:
    lines = [
        "command get-status",
        "command set-application-mode --data '{\"mode\": 100}'",
        "command get-status",
        "command set-application-mode --data '{\"mode\": 100}'",
        "exit",
    ]
    result = run_cli("console", "autotrainer", *device.args, input="\n".join(lines) + "\n")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("ok: ") == 4, result.stdout
    assert len(device.requests) == 4
    assert len(device.requesters) == 1 and device.subscriptions == 1
