"""`fieldctl command PROFILE NAME`: one request, its reply, and for async commands the result."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from .common import JsonOpt, ProfileOptions, ViaOpt, with_profile
from .completers import command_names


@with_profile
def command(
    profile: ProfileOptions,
    name: Annotated[str, typer.Argument(help="command name from the profile (or its number)", show_default=False,
                                        autocompletion=command_names)],
    data: Annotated[Optional[str], typer.Option("--data", metavar="JSON|@FILE|@-", help="Request payload.")] = None,
    timeout: Annotated[Optional[float], typer.Option("--timeout", min=0, help="Seconds to wait for the reply (and the result).")] = None,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Do not wait for the result of an asynchronous command.")] = False,
    via: ViaOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Send a command and print the reply; exit 1 when the device says it failed."""
    import asyncio
    import sys

    from . import common

    payload = common.read_data(data)
    prof = profile.load()
    drv = common.driver(prof)
    options = profile.options("command", drv)
    as_json = common.json_mode(json_)
    wait_s = timeout if timeout is not None else float(prof.setting("timeouts.command_s", 5.0))

    def emit(msg) -> None:  # type: ignore[no-untyped-def]
        if as_json and not msg.is_link:
            sys.stdout.write(msg.to_json() + "\n")
            sys.stdout.flush()

    if via is not None:
        from fieldctl.protocols.control import request
        from fieldctl.protocols.message import Message

        msg = Message(profile=prof.name, endpoint="control", direction="out", channel="command", kind=name,
                      payload=payload, id=None)
        outcome = asyncio.run(request(via, "command", msg, emit, wait_s))
    else:
        outcome = asyncio.run(drv.command(name, payload, options=options, timeout=wait_s, wait=not no_wait, emit=emit))
    if not as_json:
        from .render import print_outcome

        print_outcome(outcome, drv.summarize)
    elif not outcome.ok:
        sys.stderr.write(f"fieldctl: {outcome.summary}\n")
    if not outcome.ok:
        raise typer.Exit(1)
