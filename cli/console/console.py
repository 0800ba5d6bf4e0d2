"""`fieldctl console [PROFILE]`: an interactive prompt with the CLI's verbs, where subscriptions
stay open and events print above the line being typed."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from fieldctl.cli.framework.common import EndpointOpt, HostOpt, ProfileFileOpt, ProfileOptions, SetOpt
from fieldctl.cli.framework.completers import profile_names

if TYPE_CHECKING:
    from fieldctl.cli.console.session import Session


def history_file() -> Path:
    from fieldctl.profiles.files import state_dir

    return state_dir() / "history"


def private_history(path: Path) -> bool:
    """Makes the history file its owner's alone (typed lines may name hosts, URLs, secret
    references): created 0600, an existing one set to 0600, never through a link. Whether it can
    be used."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    except OSError:
        return False
    try:
        os.fchmod(handle, 0o600)
    finally:
        os.close(handle)
    return True


def console(
    profile: Annotated[
        str | None,
        typer.Argument(
            metavar="PROFILE",
            help="profile or saved target to start with (default: $FIELDCTL_TARGET, else the current target, "
            "else autotrainer)",
            show_default=False,
            autocompletion=profile_names,
        ),
    ] = None,
    simulate: Annotated[
        bool,
        typer.Option(
            "--simulate",
            help="Start with `simulate`: the profile's simulator on private endpoints, and the console talking to it.",
        ),
    ] = False,
    host: HostOpt = None,
    endpoint: EndpointOpt = None,
    set_: SetOpt = None,
    profile_file: ProfileFileOpt = None,
) -> None:
    """Interactive console: listen, command, publish, probe, simulate; named connections; help."""
    import asyncio
    import sys

    from fieldctl.cli.console.session import Session
    from fieldctl.profiles.loader import DEFAULT_PROFILE
    from fieldctl.profiles.targets import default_target

    start = ProfileOptions(profile or default_target() or DEFAULT_PROFILE, host, endpoint, set_, profile_file)
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
    from prompt_toolkit.history import FileHistory, InMemoryHistory
    from prompt_toolkit.patch_stdout import patch_stdout
    from prompt_toolkit.shortcuts import clear

    from fieldctl.cli.console.completion import ConsoleCompleter
    from fieldctl.cli.console.session import Session
    from fieldctl.cli.framework.common import warn

    path = history_file()
    kept = private_history(path)
    if not kept:
        warn(
            f"{path}: cannot be opened as a private file (a link, or not writable): this session's history is not kept"
        )
    loop = asyncio.get_running_loop()
    with patch_stdout(raw=True):
        session = Session(start, simulate, print, clear=clear)
        prompt: PromptSession[str] = PromptSession(
            history=FileHistory(str(path)) if kept else InMemoryHistory(),
            completer=ConsoleCompleter(session),
            complete_while_typing=False,
            bottom_toolbar=session.toolbar,
            refresh_interval=0.5,
        )
        await session.start()
        try:
            while True:
                try:
                    line = await prompt.prompt_async(session.prompt)
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
