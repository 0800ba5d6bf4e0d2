"""`fieldctl simulate PROFILE`: play the other side (the device, daemon or platform)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from .common import EndpointOpt, HostOpt, JsonOpt, ProfileArg, ProfileFileOpt, ProfileOptions, SetOpt


def simulate(
    profile: ProfileArg,
    scenario: Annotated[Optional[str], typer.Option("--scenario", metavar="FILE", help="NDJSON timeline to play instead of the built-in one ('-' for stdin); ts gives the pacing.")] = None,
    no_timeline: Annotated[bool, typer.Option("--no-timeline", help="Only heartbeats and answers, no built-in events.")] = False,
    duration: Annotated[Optional[float], typer.Option("--duration", min=0, help="Exit 0 after S seconds.")] = None,
    record: Annotated[Optional[str], typer.Option("--record", metavar="FILE", help="Append all traffic to FILE as NDJSON.")] = None,
    json_: JsonOpt = False,
    host: HostOpt = None,
    endpoint: EndpointOpt = None,
    set_: SetOpt = None,
    profile_file: ProfileFileOpt = None,
) -> None:
    """Run a simulator on the profile's endpoints (127.0.0.1 unless --host says otherwise)."""
    import asyncio
    import sys

    from . import common
    from .stream import Sink, open_record, run_stream

    prof = ProfileOptions(profile, host, endpoint, set_, profile_file).load()
    drv = common.driver(prof)
    messages = common.read_messages(scenario, prof.name) if scenario is not None else None
    as_json = common.json_mode(json_)
    record_file = open_record(record)
    view = None
    if not as_json:
        from .live_view import LiveView

        view = LiveView(prof, drv.stats, drv.summarize, "simulate")
    sink = Sink(drv.stats, out=sys.stdout if as_json else None, record=record_file, view=view)

    async def main() -> str:
        return await run_stream(drv.simulate(sink, scenario=messages, timeline=not no_timeline), sink, duration=duration)

    try:
        if view is not None:
            with view.live():
                asyncio.run(main())
        else:
            asyncio.run(main())
    finally:
        if record_file is not None:
            record_file.close()
