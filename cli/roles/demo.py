"""`fieldctl demo [PROFILE]`: a simulator in-process and the live table against it, on free
loopback ports and private socket paths."""

from __future__ import annotations

from typing import Annotated

import typer

from fieldctl.cli.framework.bounded import RUN_SECONDS
from fieldctl.cli.framework.completers import profile_names


def demo(
    name: Annotated[
        str | None,
        typer.Argument(
            metavar="PROFILE",
            help="profile to demonstrate (default: autotrainer)",
            autocompletion=profile_names,
            show_default=False,
        ),
    ] = None,
    duration: Annotated[
        float | None, typer.Option("--duration", parser=RUN_SECONDS, metavar="S", help="Exit 0 after S seconds.")
    ] = None,
) -> None:
    """See fieldctl work with no device at hand: simulate and listen in one process."""
    import asyncio

    from fieldctl.cli.framework import common
    from fieldctl.cli.framework.private_folder import private_folder
    from fieldctl.cli.roles.private_run import private_simulator
    from fieldctl.cli.views.stream import run_stream, shown
    from fieldctl.profiles import load_profile
    from fieldctl.profiles.loader import DEFAULT_PROFILE

    profile = name or DEFAULT_PROFILE
    base = load_profile(profile)
    lively = ["heartbeat.interval_s=1", "heartbeat.stale_after_s=3"]
    if base.setting("simulate.event_interval_s") is not None:  # a --set no protocol reads is refused
        lively.append("simulate.event_interval_s=0.4")
    lively += base.setting("demo.set", [])  # a profile's own needs, as data

    async def main(folder: str) -> None:
        async with private_simulator(profile, folder, sets=lively) as bound:
            prof = load_profile(profile, sets=lively, endpoints=[f"{k}={v}" for k, v in bound.items()])
            client = common.driver(prof)
            subscribes = "listen" in client.roles
            with shown(prof, client, "demo", as_json=False) as sink:
                follow = client.listen(sink, options={}) if subscribes else client.register(sink, options={})
                await run_stream(follow, sink, duration=duration)

    with private_folder("fieldctl-demo-") as folder:
        asyncio.run(main(folder))
