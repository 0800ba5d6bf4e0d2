"""`fieldctl listen PROFILE` and `fieldctl register PROFILE`: follow what the other side sends,
as a live table or NDJSON. listen subscribes; register first signs on as a client (connector,
plugin) and answers what the other side asks."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated

import typer

from fieldctl.cli.framework.bounded import COUNT, RUN_SECONDS, SECONDS
from fieldctl.cli.framework.common import FormatOpt, JsonOpt, LinesOpt, ProfileOptions, with_profile
from fieldctl.cli.framework.completers import filter_specs
from fieldctl.cli.framework.protocol_options import sign

if TYPE_CHECKING:
    from fieldctl.cli.views.lines import Output
    from fieldctl.cli.views.stream import Filters, Sink
    from fieldctl.protocols.sdk.contract import BaseDriver, Context

FilterOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--filter",
        metavar="KEY=VALUE",
        help="channel=, kind=, direction= or endpoint=, each a name or a glob such as kind='trial*' "
        "(with --fleet also target= and group=; repeatable; OR within a key, AND across keys).",
        autocompletion=filter_specs,
    ),
]


#: What a following role runs: the driver, the Context of the run and the --filter filters in;
#: it emits until cancelled.
Start = Callable[["BaseDriver", "Context", "Filters"], Awaitable[None]]


async def _listened(role: str, drv: BaseDriver, context: Context, filters: Filters) -> None:
    if role == "register":
        await drv.register(context)
        return
    # Heartbeats are subscribed to even when the filters hide them, so the watch does not report a
    # live device as stale.
    channels = filters.channels
    heartbeat = drv.profile.heartbeat.channel
    if channels and heartbeat is not None:
        channels = channels | {heartbeat}
    await drv.listen(context, channels)


def follow(
    role: str,
    profile: ProfileOptions,
    count: int | None,
    timeout: float | None,
    idle: float | None,
    duration: float | None,
    filters_spec: list[str] | None,
    record: str | None,
    output: Output,
    start: Start | None = None,
) -> None:
    """Runs a role that follows the other side (listen, register, proxy: `start`) into the live
    table, lines or NDJSON, with the heartbeat watch, until --count, --timeout, --idle,
    --duration or a signal ends it."""
    import asyncio
    import functools

    from fieldctl.cli.framework import common
    from fieldctl.cli.views.stream import Filters, run_stream, shown, stream_ended
    from fieldctl.protocols.runtime.heartbeat import HeartbeatWatch
    from fieldctl.protocols.transport import together

    prof = profile.load()
    drv = common.driver(prof)
    options = profile.options(role, drv)
    filters = Filters(filters_spec)
    filters.check(drv.vocabulary, prof.name)
    run = start or functools.partial(_listened, role)

    async def main(sink: Sink) -> str:
        watch = HeartbeatWatch(prof, sink)
        context = drv.context(watch, options, sink.duplicate)
        return await run_stream(
            together(run(drv, context, filters), watch.run()), sink, timeout=timeout, duration=duration, idle=idle
        )

    as_json = output.mode == "json"
    with shown(prof, drv, role, as_json=as_json, record=record, filters=filters, count=count, output=output) as sink:
        reason = asyncio.run(main(sink))
    stream_ended(role, reason, sink, count, timeout, idle)


FleetOpt = Annotated[
    str | None,
    typer.Option(
        "--fleet",
        metavar="FILE",
        help="Follow every target of this fleet file at once (instead of PROFILE): "
        "a board, or NDJSON with a target field.",
    ),
]
GroupOpt = Annotated[
    str | None, typer.Option("--group", metavar="LABEL", help="With --fleet: only the targets labelled LABEL.")
]


CountOpt = Annotated[
    int | None,
    typer.Option(
        "--count",
        parser=COUNT,
        metavar="N",
        help="Exit 0 after N well-formed messages that pass the filters "
        "(link lines and malformed frames do not count).",
    ),
]
TimeoutOpt = Annotated[
    float | None,
    typer.Option("--timeout", parser=SECONDS, metavar="S", help="Exit 4 unless --count is reached within S seconds."),
]
IdleOpt = Annotated[
    float | None,
    typer.Option(
        "--idle",
        parser=SECONDS,
        metavar="S",
        help="Exit 4 after S seconds in which no message (other than a link line) arrived.",
    ),
]
DurationOpt = Annotated[
    float | None, typer.Option("--duration", parser=RUN_SECONDS, metavar="S", help="Exit 0 after S seconds.")
]
RecordOpt = Annotated[
    str | None, typer.Option("--record", metavar="FILE", help="Append every shown message to FILE as NDJSON.")
]


def _following(role: str, doc: str) -> Callable[..., None]:
    def command(
        profile: ProfileOptions,
        count: CountOpt = None,
        timeout: TimeoutOpt = None,
        idle: IdleOpt = None,
        duration: DurationOpt = None,
        filter_: FilterOpt = None,
        record: RecordOpt = None,
        json_: JsonOpt = False,
        lines: LinesOpt = False,
        format_: FormatOpt = None,
        fleet: FleetOpt = None,
        group: GroupOpt = None,
    ) -> None:
        from fieldctl.cli.views.lines import choose_output
        from fieldctl.protocols.core.errors import UsageError

        output = choose_output(json_, lines, format_)  # a template is checked before anything else
        if fleet is None:
            if group is not None:
                raise UsageError(f"{role}: --group needs --fleet FILE")
            if profile.name is None:
                fleet_too = ", or --fleet FILE" if role == "listen" else ""
                raise UsageError(f"{role}: missing PROFILE (a profile or target name{fleet_too})")
            follow(role, profile, count, timeout, idle, duration, filter_, record, output)
            return
        from fieldctl.cli.fleet.listen import listen_fleet

        if output.mode == "lines" and not output.note:
            raise UsageError(f"{role} --fleet: --lines and --format TEMPLATE are not for a fleet yet (--json is)")
        if profile.typed:
            raise UsageError(f"{role}: give PROFILE or --fleet FILE, not both")
        given = [
            flag
            for value, flag in ((profile.host, "--host"), (profile.endpoints, "--endpoint"), (record, "--record"))
            if value
        ] + [*profile.given.values, *profile.given.extras][:1]
        if given:
            raise UsageError(f"{role} --fleet: {given[0]} does not apply to a fleet (its targets name their own)")
        listen_fleet(
            fleet,
            group,
            sets=profile.sets,
            files=profile.files,
            count=count,
            timeout=timeout,
            idle=idle,
            duration=duration,
            filters_spec=filter_,
            as_json=output.mode == "json",
        )

    command.__name__, command.__doc__ = role, doc
    wrapped = with_profile(command)  # PROFILE is optional there already: --fleet may stand in for it
    if role == "listen":
        return wrapped
    signature = inspect.signature(wrapped)
    parameters = [p for p in signature.parameters.values() if p.name not in ("fleet", "group")]
    sign(wrapped, signature.replace(parameters=parameters))
    return wrapped


listen = _following(
    "listen",
    "Subscribe and show events, heartbeats and connection state as they arrive; "
    "--fleet FILE: every target of a fleet on one board.",
)
register = _following("register", "Sign on as a client of the other side, answer what it asks, show what arrives.")
