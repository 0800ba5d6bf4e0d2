"""Every outcome of a simulator command carries its round-trip time: the simulator runs in this
process on a real loopback socket, the connector is a websockets client that answers late."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.client import connect

from fieldctl.profiles.loader import load_profile
from fieldctl.protocols.core.message import Message
from fieldctl.protocols.vantiq import simulator
from fieldctl.protocols.vantiq.driver import Driver
from tests.helpers.waiting import until

DELAY_S = 0.2


async def connector(url: str) -> None:
    """Validates, connects demoSource, answers each query DELAY_S late and reconnects on the same
    socket (Java style) when asked."""
    async with connect(url) as ws:
        await ws.send(json.dumps({"op": "validate", "resourceName": "system.credentials", "object": "any"}))
        await ws.recv()
        await ws.send(json.dumps({"op": "connectExtension", "resourceName": "sources", "resourceId": "demoSource"}))
        async for frame in ws:
            data = json.loads(frame)
            if data.get("op") == "query":
                await asyncio.sleep(DELAY_S)
                reply_to = data["messageHeaders"]["REPLY_ADDR_HEADER"]
                await ws.send(json.dumps({"status": 200, "headers": {"X-Reply-Address": reply_to}, "body": [{"a": 1}]}))
            elif data.get("op") == "reconnectRequired":
                await asyncio.sleep(DELAY_S)
                await ws.send(
                    json.dumps({"op": "connectExtension", "resourceName": "sources", "resourceId": "demoSource"})
                )


async def run() -> dict[str, Any]:
    profile = load_profile("vantiq", endpoints=["server=ws://127.0.0.1:0/api/v1/wsock/websocket"])
    seen: list[Message] = []
    driver = Driver(profile, lambda text: None)
    sim = driver.simulator(driver.context(seen.append), scenario=None, timeline=True)
    assert isinstance(sim, simulator.Simulator)
    serving = asyncio.ensure_future(sim.run())
    try:
        await until(lambda: any(m.is_link and m.kind == "bound" for m in seen), 10)
        url = next(m.payload["url"] for m in seen if m.is_link and m.kind == "bound")
        peer = asyncio.ensure_future(connector(url))
        assert await sim.wait_active("demoSource", 10)
        outcomes = {
            name: await asyncio.wait_for(sim.command(name, {"source": "demoSource"}, seen.append), 20)
            for name in ("query", "reconnect", "close")
        }
        peer.cancel()
        return outcomes
    finally:
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)


def test_every_command_outcome_has_its_round_trip_time() -> None:
    outcomes = asyncio.run(run())
    for name, outcome in outcomes.items():
        assert outcome.ok, (name, outcome.summary)
        assert outcome.rtt_s is not None and outcome.rtt_s < 10, name
    assert outcomes["query"].rtt_s >= DELAY_S and outcomes["reconnect"].rtt_s >= DELAY_S
