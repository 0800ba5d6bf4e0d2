"""`fieldctl listen PROFILE`: the live table of what a device publishes, or NDJSON for scripts."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from .common import EndpointOpt, HostOpt, JsonOpt, ProfileArg, ProfileFileOpt, ProfileOptions, SetOpt

FilterOpt = Annotated[
    Optional[list[str]],
    typer.Option("--filter", metavar="KEY=VALUE", help="channel=, kind=, direction= or endpoint= (repeatable; OR within a key, AND across keys)."),
]


def listen(
    profile: ProfileArg,
    count: Annotated[Optional[int], typer.Option("--count", min=1, help="Exit 0 after N messages.")] = None,
    timeout: Annotated[Optional[float], typer.Option("--timeout", min=0, help="Exit 4 unless --count is reached within S seconds.")] = None,
    idle: Annotated[Optional[float], typer.Option("--idle", min=0, help="Exit 4 after S seconds without a message.")] = None,
    duration: Annotated[Optional[float], typer.Option("--duration", min=0, help="Exit 0 after S seconds.")] = None,
    filter_: FilterOpt = None,
    record: Annotated[Optional[str], typer.Option("--record", metavar="FILE", help="Append every shown message to FILE as NDJSON.")] = None,
    json_: JsonOpt = False,
    host: HostOpt = None,
    endpoint: EndpointOpt = None,
    set_: SetOpt = None,
    profile_file: ProfileFileOpt = None,
) -> None:
    """Subscribe and show events, heartbeats and connection state as they arrive."""
    import asyncio
    import sys

    from fieldctl.protocols.errors import Timeout

    from . import common
    from .stream import Filters, Sink, open_record, run_stream

    prof = ProfileOptions(profile, host, endpoint, set_, profile_file).load()
    drv = common.driver(prof)
    filters = Filters(filter_)
    as_json = common.json_mode(json_)
    record_file = open_record(record)
    view = None
    if not as_json:
        from .live_view import LiveView

        view = LiveView(prof, drv.stats, drv.summarize, "listen")
    sink = Sink(drv.stats, out=sys.stdout if as_json else None, record=record_file, view=view, filters=filters,
                count=count)

    async def main() -> str:
        from fieldctl.protocols.heartbeat import HeartbeatWatch

        watch = HeartbeatWatch(prof, sink)
        work = asyncio.gather(drv.listen(watch, channels=filters.channels), watch.run())
        return await run_stream(work, sink, timeout=timeout, duration=duration, idle=idle)

    try:
        if view is not None:
            with view.live():
                reason = asyncio.run(main())
        else:
            reason = asyncio.run(main())
    finally:
        if record_file is not None:
            record_file.close()
    if reason == "timeout" and count is not None:
        raise Timeout(f"received {drv.stats.received} of {count} messages within {timeout:g} s")
    if reason == "timeout":
        raise Timeout(f"listened {timeout:g} s")
    if reason == "idle":
        raise Timeout(f"no message for {idle:g} s")
