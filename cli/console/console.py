"""`fieldctl console [PROFILE]`: an interactive prompt with the CLI's verbs, where subscriptions
stay open and events print above the line being typed."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from fieldctl.cli.framework.common import EndpointOpt, HostOpt, ProfileFileOpt, ProfileOptions, SetOpt

if TYPE_CHECKING:
    from fieldctl.cli.console.session import Session


def history_file() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state) / "fieldctl" / "history"


def console(
    profile: Annotated[
        str | None, typer.Argument(help="profile to start with (default: autotrainer)", show_default=False)
    ] = None,
    simulate: Annotated[
        bool, typer.Option("--simulate", help="Run the profile's simulator in the console and drive it by hand.")
    ] = False,
    host: HostOpt = None,
    endpoint: EndpointOpt = None,
    set_: SetOpt = None,
    profile_file: ProfileFileOpt = None,
) -> None:
    """Interactive console: listen, command, publish, probe, simulate, use PROFILE, help."""
    import asyncio
    import sys

    from fieldctl.cli.console.session import Session
    from fieldctl.profiles.loader import DEFAULT_PROFILE

    start = ProfileOptions(profile or DEFAULT_PROFILE, host, endpoint, set_, profile_file)
    if not sys.stdin.isatty():
        session = Session(start, simulate, print, lambda text: print(text, file=sys.stderr))
        raise typer.Exit(asyncio.run(_script(session, sys.stdin)))
    asyncio.run(_interactive(start, simulate))


async def _script(session: Session, lines: Iterable[str]) -> int:
    """Lines from a pipe, one after another, like `sh -e`: the first failure (a line, or a
    subscription that breaks meanwhile) ends the script with its exit code."""
    await session.start()
    try:
        for line in lines:
            if not await session.run_line(line) or session.code:
                break
    finally:
        await session.close()
    return session.code


async def _interactive(start: ProfileOptions, simulate: bool) -> None:
    import asyncio
    import signal

    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import FileHistory
    from prompt_toolkit.patch_stdout import patch_stdout

    from fieldctl.cli.console.completion import ConsoleCompleter
    from fieldctl.cli.console.session import Session

    path = history_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    loop = asyncio.get_running_loop()
    with patch_stdout(raw=True):
        session = Session(start, simulate, print)
        prompt: PromptSession[str] = PromptSession(
            history=FileHistory(str(path)),
            completer=ConsoleCompleter(session),
            complete_while_typing=False,
            bottom_toolbar=session.toolbar,
            refresh_interval=0.5,
        )
        await session.start()
        try:
            while True:
                try:
                    line = await prompt.prompt_async(f"{session.profile_name}> ")
                except KeyboardInterrupt:
                    continue  # Ctrl-C at the prompt clears the line
                except EOFError:
                    break  # Ctrl-D
                work = asyncio.ensure_future(session.run_line(line))
                loop.add_signal_handler(signal.SIGINT, work.cancel)  # Ctrl-C cancels the running command
                try:
                    if not await work:
                        break
                except asyncio.CancelledError:
                    print("cancelled")
                finally:
                    loop.remove_signal_handler(signal.SIGINT)
        finally:
            await session.close()
