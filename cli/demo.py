"""`fieldctl demo`: a simulator in-process and the live table against it, on free loopback ports."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from .completers import profile_names


def demo(
    profile: Annotated[str, typer.Argument(help="profile to demonstrate", autocompletion=profile_names)] = "autotrainer",
    duration: Annotated[Optional[float], typer.Option("--duration", min=0, help="Exit 0 after S seconds.")] = None,
) -> None:
    """See fieldctl work with no device at hand: simulate and listen in one process."""
    import asyncio

    from fieldctl.profiles import load_profile
    from fieldctl.protocols.message import Message

    from . import common
    from .stream import run_stream, shown

    lively = ["heartbeat.interval_s=1", "heartbeat.stale_after_s=3", "simulate.event_interval_s=0.4"]
    base = load_profile(profile, sets=lively)
    free = [f"{name}={url.rsplit(':', 1)[0]}:*" for name, url in base.endpoints.items()]
    device = common.driver(load_profile(profile, sets=lively, endpoints=free))
    bound: dict[str, str] = {}
    everything_bound = asyncio.Event()

    def device_sink(msg: Message) -> None:
        if msg.is_link and msg.kind == "bound":
            bound[msg.endpoint] = msg.payload["url"]
            if len(bound) == len(base.endpoints):
                everything_bound.set()

    async def main() -> None:
        simulator = asyncio.ensure_future(device.simulate(device_sink, scenario=None, timeline=True, options={}))
        waiting = asyncio.ensure_future(everything_bound.wait())
        await asyncio.wait([simulator, waiting], return_when=asyncio.FIRST_COMPLETED)
        if simulator.done():
            simulator.result()
        prof = load_profile(profile, sets=lively, endpoints=[f"{k}={v}" for k, v in bound.items()])
        client = common.driver(prof)
        try:
            with shown(prof, client, "demo", as_json=False) as sink:
                await run_stream(client.listen(sink, options={}), sink, duration=duration)
        finally:
            simulator.cancel()
            await asyncio.gather(simulator, return_exceptions=True)

    asyncio.run(main())
