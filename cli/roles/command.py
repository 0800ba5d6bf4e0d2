"""`fieldctl command PROFILE NAME`: one request, its reply, and for async commands the result.

The round-trip time (request sent to first reply, measured by the driver) is shown after the
verdict on a terminal, and with --json it is the `rtt_s` field of the first reply's line: every
line stays a Message that reads back. So that line, and what follows it, is written once the
command is done; the request goes out at once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from fieldctl.cli.framework.bounded import SECONDS
from fieldctl.cli.framework.common import JsonOpt, ProfileOptions, ViaOpt, with_profile
from fieldctl.cli.framework.completers import command_names

if TYPE_CHECKING:
    from fieldctl.protocols.sdk.contract import ClientSession, CommandOutcome


@with_profile
def command(
    profile: ProfileOptions,
    name: Annotated[
        str,
        typer.Argument(
            help="command name from the profile (or its number)", show_default=False, autocompletion=command_names
        ),
    ],
    data: Annotated[str | None, typer.Option("--data", metavar="JSON|@FILE|@-", help="Request payload.")] = None,
    timeout: Annotated[
        float | None,
        typer.Option("--timeout", parser=SECONDS, metavar="S", help="Seconds to wait for the reply (and the result)."),
    ] = None,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Do not wait for the result of an asynchronous command.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Send --data fields the profile does not declare for the command.")
    ] = False,
    via: ViaOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Send a command and print the reply and its round-trip time; exit 1 when the device says it failed."""
    import asyncio
    import dataclasses
    import sys

    from fieldctl.cli.framework import common
    from fieldctl.cli.framework.vocabulary import check_command
    from fieldctl.protocols.core.message import IN, Message
    from fieldctl.protocols.core.redact import scrub

    payload = common.read_data(data)
    prof = profile.load()
    check_command(prof, name, payload, force)
    drv = common.driver(prof)
    options = profile.options("command", drv)
    as_json = common.json_mode(json_)
    wait_s = timeout if timeout is not None else float(prof.setting("timeouts.command_s", 5.0))

    held: list[Message] = []

    def emit(msg: Message) -> None:
        """NDJSON, scrubbed; from the first reply on, held until the round-trip time is known."""
        if as_json and not msg.is_link:
            if held or msg.direction == IN:
                held.append(msg)
            else:
                write(msg)

    def write(msg: Message) -> None:
        sys.stdout.write(scrub(msg).to_json() + "\n")
        sys.stdout.flush()

    def release(rtt_s: float | None) -> None:
        if held and rtt_s is not None:
            held[0] = dataclasses.replace(held[0], rtt_s=rtt_s)
        for msg in held:
            write(msg)
        held.clear()

    try:
        if via is not None:
            from fieldctl.protocols.runtime.control import command_message, request

            outcome = asyncio.run(request(via, "command", command_message(prof.name, name, payload), emit, wait_s))
        else:
            outcome = asyncio.run(_once(drv.session(drv.context(emit, options)), name, payload, wait_s, not no_wait))
    except BaseException:
        release(None)  # a failed exchange still shows what it sent and received
        raise
    release(outcome.rtt_s)
    if not as_json:
        from fieldctl.cli.views.render import print_outcome

        print_outcome(outcome, drv.summarize, drv.styles)
    elif not outcome.ok:
        from fieldctl.cli.framework.escape import stderr_line

        sys.stderr.write(f"fieldctl: {stderr_line(outcome.summary)}\n")
    if not outcome.ok:
        raise typer.Exit(1)


async def _once(session: ClientSession, name: str, data: Any, timeout: float, wait: bool) -> CommandOutcome:
    """A client session used for one command: it opens only the sockets that command needs."""
    async with session:
        return await session.command(name, data, timeout=timeout, wait=wait)
