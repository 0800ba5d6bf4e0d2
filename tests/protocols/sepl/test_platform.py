"""The SEPL platform (`simulate sepl`) in process, on a real loopback socket: the outcome of a
command pushed through the driver's control path reports its round-trip time."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.asyncio.client import connect

from fieldctl.profiles import load_profile
from fieldctl.protocols.core.message import OUT, Message
from fieldctl.protocols.sepl import codec
from fieldctl.protocols.sepl.driver import Driver
from tests.helpers.waiting import until

PASSWORD = "pw-rtt-check-1"


async def connector(url: str, answered: asyncio.Event) -> None:
    """A minimal connector: login, put dev-1, commit, then echo one command."""
    async with connect(url) as ws:
        await ws.send(json.dumps(codec.credentials("sepl-user", PASSWORD, "")))
        assert json.loads(await ws.recv())["status"] == 200
        for handler, payload in (
            ("put", {"uri": "dev-1", "name": "n", "iot_type": "lamp", "tags": []}),
            ("commit", "h"),
        ):
            await ws.send(codec.request_frame(handler, handler, payload))
            assert json.loads(await ws.recv())["status"] == 200
        command = json.loads(await ws.recv())
        assert command["handler"] == "command"
        await ws.send(codec.response_frame(command, "r", "done"))
        assert json.loads(await ws.recv())["status"] == 200
        answered.set()


def test_a_command_outcome_carries_its_round_trip_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEPL_PASSWORD", PASSWORD)
    profile = load_profile("sepl", endpoints=["platform=ws://127.0.0.1:0"])

    async def scenario() -> Any:
        emitted: list[Message] = []
        driver = Driver(profile, lambda text: None)
        platform = driver.simulator(driver.context(emitted.append), scenario=None, timeline=False)
        serving = asyncio.ensure_future(platform.run())
        await until(lambda: any(m.kind == "bound" for m in emitted), 10)
        url = next(m for m in emitted if m.kind == "bound").payload["url"]
        answered = asyncio.Event()
        client = asyncio.ensure_future(connector(url, answered))
        # the commit answered: the connector now waits for commands
        await until(
            lambda: any(m.channel == "reply" and m.kind == "commit" and m.direction == OUT for m in emitted), 10
        )
        outcome = await platform.control(
            "command", Message("sepl", "platform", OUT, "command", "dev-1:sepl_set", 1), emitted.append
        )
        await asyncio.wait_for(answered.wait(), 10)
        await client
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)
        return outcome

    outcome = asyncio.run(asyncio.wait_for(scenario(), 30))
    assert outcome.ok and outcome.rtt_s is not None and 0 < outcome.rtt_s < 10
    assert outcome.messages[0].payload["latency_ms"] == round(outcome.rtt_s * 1000, 3)
    assert outcome.messages[0].payload["data"] == "done"
