"""`fieldctl demo [PROFILE]`: a simulator in-process and the live table against it, on free
loopback ports and private socket paths (a broker's endpoint stays where the profile points)."""

from __future__ import annotations

from typing import Annotated

import typer

from fieldctl.cli.framework.bounded import RUN_SECONDS
from fieldctl.cli.framework.common import EndpointOpt, HostOpt, ProfileFileOpt, SetOpt
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
    host: HostOpt = None,
    endpoint: EndpointOpt = None,
    set_: SetOpt = None,
    profile_file: ProfileFileOpt = None,
) -> None:
    """See fieldctl work with no device at hand: simulate and listen in one process."""
    import asyncio

    from fieldctl.cli.framework import common
    from fieldctl.cli.framework.common import ProfileOptions
    from fieldctl.cli.framework.private_folder import private_folder
    from fieldctl.cli.roles.private_run import broker_overrides_only, private_simulator
    from fieldctl.cli.views.lines import choose_output
    from fieldctl.cli.views.stream import run_stream, shown
    from fieldctl.profiles.loader import DEFAULT_PROFILE

    given = ProfileOptions(name or DEFAULT_PROFILE, host, endpoint, set_, profile_file)
    base = given.load()
    broker_overrides_only(given, base, "demo")
    output = choose_output(False, False, None)  # NDJSON on a pipe, as every command
    lively = ["heartbeat.interval_s=1", "heartbeat.stale_after_s=3"]
    if base.setting("simulate.event_interval_s") is not None:  # a --set no protocol reads is refused
        lively.append("simulate.event_interval_s=0.4")
    lively += base.setting("demo.set", [])  # a profile's own needs, as data
    sets = [*lively, *given.sets]  # the line's --set wins

    def reaching(endpoints: list[str]) -> ProfileOptions:
        """The demo's profile, its endpoints moved to these (NAME=URL) on top of the line's."""
        return ProfileOptions(given.name, host, [*given.endpoints, *endpoints], sets, given.files)

    async def main(folder: str) -> None:
        async with private_simulator(reaching([]).load(), folder) as bound:
            prof = reaching([f"{k}={v}" for k, v in bound.items()]).load()
            client = common.driver(prof)
            subscribes = "listen" in client.roles
            with shown(prof, client, "demo", as_json=output.mode == "json", output=output) as sink:
                context = client.context(sink, {}, sink.duplicate)
                follow = client.listen(context) if subscribes else client.register(context)
                await run_stream(follow, sink, duration=duration)

    with private_folder("fieldctl-demo-") as folder:
        asyncio.run(main(folder))
