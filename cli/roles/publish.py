"""`fieldctl publish PROFILE KIND --data JSON` or `--from FILE`: play the device's publisher."""

from __future__ import annotations

from typing import Annotated

import typer

from fieldctl.cli.framework.bounded import SECONDS
from fieldctl.cli.framework.common import JsonOpt, ProfileOptions, ViaOpt, with_profile
from fieldctl.cli.framework.completers import event_kinds


@with_profile
def publish(
    profile: ProfileOptions,
    kind: Annotated[
        str | None,
        typer.Argument(
            help="event kind name from the profile (omit with --from)", show_default=False, autocompletion=event_kinds
        ),
    ] = None,
    data: Annotated[str | None, typer.Option("--data", metavar="JSON|@FILE|@-", help="The event's payload.")] = None,
    from_: Annotated[
        str | None,
        typer.Option(
            "--from", metavar="FILE", help="NDJSON messages to publish ('-' for stdin), as listen --json writes them."
        ),
    ] = None,
    realtime: Annotated[bool, typer.Option("--realtime", help="Keep the recorded gaps between messages.")] = False,
    wait: Annotated[
        float,
        typer.Option(
            "--wait",
            parser=SECONDS,
            metavar="S",
            help="Seconds to wait for a subscriber (or, with --via, for the simulator).",
        ),
    ] = 10.0,
    via: ViaOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Publish events as the device would; waits for a subscriber so none are lost."""
    import asyncio
    import sys

    from fieldctl.cli.framework import common
    from fieldctl.cli.views.stream import Sink
    from fieldctl.protocols.core.errors import AddressInUse, RemoteFailure, UsageError

    if (kind is None) == (from_ is None):
        raise UsageError("give either KIND (with --data) or --from FILE")
    if from_ is not None and data is not None:
        raise UsageError("--data goes with KIND, not with --from")
    prof = profile.load()
    drv = common.driver(prof)
    options = profile.options("publish", drv)
    if from_ is not None:
        messages = common.read_messages(from_, prof.name)
    else:
        assert kind is not None  # KIND or --from, checked above
        messages = [drv.publication(kind, common.read_data(data))]
    as_json = common.json_mode(json_)

    async def main() -> None:
        sink = Sink(out=sys.stdout if as_json else None)
        if via is None:
            try:
                await drv.publish(drv.context(sink, options), messages, wait_s=wait, realtime=realtime)
            except AddressInUse as exc:
                raise AddressInUse(
                    f"{exc}: if a simulator runs there, publish through it: start it with"
                    f" `fieldctl simulate {prof.name} --control SOCKET` and add --via SOCKET"
                ) from None
            return
        from fieldctl.protocols.runtime.control import request

        for msg in messages:
            outcome = await request(via, "publish", msg, sink, wait)
            if not outcome.ok:
                raise RemoteFailure(outcome.summary)

    asyncio.run(main())
    if not as_json:
        # What was published, each accepted once drv.publish returns: not every frame the driver
        # sent on the way (a login, a subscription), which the sink counts as sent.
        sys.stderr.write(f"published {len(messages)} message(s)\n")
