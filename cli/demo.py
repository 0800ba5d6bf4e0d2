"""`fieldctl demo [PROFILE]`: a simulator in-process and the live table against it, on free
loopback ports and private socket paths."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from .completers import profile_names

BOUND_WITHIN_S = 10.0


def demo(
    name: Annotated[Optional[str], typer.Argument(metavar="PROFILE", help="profile to demonstrate (default: autotrainer)",
                                                  autocompletion=profile_names, show_default=False)] = None,
    duration: Annotated[Optional[float], typer.Option("--duration", min=0, help="Exit 0 after S seconds.")] = None,
) -> None:
    """See fieldctl work with no device at hand: simulate and listen in one process."""
    import asyncio
    import os
    import tempfile

    from fieldctl.profiles import load_profile
    from fieldctl.profiles.loader import DEFAULT_PROFILE
    from fieldctl.protocols.driver import BaseDriver
    from fieldctl.protocols.endpoints import is_wildcard, private_endpoints
    from fieldctl.protocols.errors import Timeout
    from fieldctl.protocols.message import Message

    from . import common
    from .stream import run_stream, shown

    profile = name or DEFAULT_PROFILE
    lively = ["heartbeat.interval_s=1", "heartbeat.stale_after_s=3", "simulate.event_interval_s=0.4"]
    lively += load_profile(profile).setting("demo.set", [])  # a profile's own needs, as data
    base = load_profile(profile, sets=lively)
    for ref in base.auth.values():
        if ref.env and ref.env not in os.environ:
            os.environ[ref.env] = "fieldctl-demo"  # throwaway credentials, for this process only

    async def main(folder: str) -> None:
        private = private_endpoints(base, folder)
        device = common.driver(load_profile(profile, sets=lively, endpoints=[f"{k}={v}" for k, v in private.items()]))
        announced = asyncio.Event()

        def device_sink(msg: Message) -> None:
            if msg.is_link and msg.kind == "bound" and msg.endpoint in private:
                private[msg.endpoint] = msg.payload["url"]
            if not any(is_wildcard(url) for url in private.values()):
                announced.set()

        simulator = asyncio.ensure_future(device.simulate(device_sink, scenario=None, timeline=True, options={}))
        waiting = asyncio.ensure_future(announced.wait())
        await asyncio.wait([simulator, waiting], timeout=BOUND_WITHIN_S, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        if simulator.done():
            simulator.result()
        if not announced.is_set():
            simulator.cancel()
            raise Timeout(f"the {profile} simulator did not announce its endpoints within {BOUND_WITHIN_S:g} s")
        prof = load_profile(profile, sets=lively, endpoints=[f"{k}={v}" for k, v in private.items()])
        client = common.driver(prof)
        subscribes = type(client).listen is not BaseDriver.listen
        try:
            with shown(prof, client, "demo", as_json=False) as sink:
                follow = client.listen(sink, options={}) if subscribes else client.register(sink, options={})
                await run_stream(follow, sink, duration=duration)
        finally:
            simulator.cancel()
            await asyncio.gather(simulator, return_exceptions=True)

    with tempfile.TemporaryDirectory(prefix="fieldctl-demo-") as folder:
        asyncio.run(main(folder))
