"""`fieldctl listen PROFILE`: the live table of what a device publishes, or NDJSON for scripts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Optional

import typer

from .common import JsonOpt, ProfileOptions, with_profile

if TYPE_CHECKING:
    from .stream import Sink

FilterOpt = Annotated[
    Optional[list[str]],
    typer.Option("--filter", metavar="KEY=VALUE", help="channel=, kind=, direction= or endpoint= (repeatable; OR within a key, AND across keys)."),
]


@with_profile
def listen(
    profile: ProfileOptions,
    count: Annotated[Optional[int], typer.Option("--count", min=1, help="Exit 0 after N messages.")] = None,
    timeout: Annotated[Optional[float], typer.Option("--timeout", min=0, help="Exit 4 unless --count is reached within S seconds.")] = None,
    idle: Annotated[Optional[float], typer.Option("--idle", min=0, help="Exit 4 after S seconds without a message.")] = None,
    duration: Annotated[Optional[float], typer.Option("--duration", min=0, help="Exit 0 after S seconds.")] = None,
    filter_: FilterOpt = None,
    record: Annotated[Optional[str], typer.Option("--record", metavar="FILE", help="Append every shown message to FILE as NDJSON.")] = None,
    json_: JsonOpt = False,
) -> None:
    """Subscribe and show events, heartbeats and connection state as they arrive."""
    import asyncio

    from fieldctl.protocols.errors import Timeout
    from fieldctl.protocols.heartbeat import HeartbeatWatch

    from . import common
    from .stream import Filters, run_stream, shown

    prof = profile.load()
    drv = common.driver(prof)
    filters = Filters(filter_)

    async def main(sink: Sink) -> str:
        watch = HeartbeatWatch(prof, sink)
        work = asyncio.gather(drv.listen(watch, channels=filters.channels), watch.run())
        return await run_stream(work, sink, timeout=timeout, duration=duration, idle=idle)

    with shown(prof, drv, "listen", as_json=common.json_mode(json_), record=record, filters=filters, count=count) as sink:
        reason = asyncio.run(main(sink))
    if reason == "timeout" and count is not None:
        raise Timeout(f"received {drv.stats.received} of {count} messages within {timeout:g} s")
    if reason == "timeout":
        raise Timeout(f"listened {timeout:g} s")
    if reason == "idle":
        raise Timeout(f"no message for {idle:g} s")
