"""The console's lines in this process, where no device is needed: a verb's --help and `help
VERB`, errors that leave the console going, named connections (connect, use, ls, disconnect,
the prompt), and the completion menu's descriptions."""

from __future__ import annotations

import asyncio

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

from fieldctl.cli.console.completion import ConsoleCompleter
from fieldctl.cli.console.session import Session
from fieldctl.cli.framework.common import ProfileOptions


class Lines:
    """A session and what it printed, a list per call of run()."""

    def __init__(self, name: str = "autotrainer") -> None:
        self.shown: list[str] = []
        self.session = Session(ProfileOptions(name, None, None, None, None), False, self.shown.append)

    def run(self, *lines: str) -> list[str]:
        """Runs the lines in order; what they showed. Every line must keep the console going."""

        async def main() -> None:
            try:
                for line in lines:
                    assert await self.session.run_line(line), line
            finally:
                await self.session.close()

        self.shown.clear()
        asyncio.run(main())
        return self.shown


@pytest.mark.parametrize("line", ["command --help", "command get-status -h", "help command", "probe --help"])
def test_a_verbs_help_is_its_console_usage_and_the_console_goes_on(line: str) -> None:
    shown = Lines().run(line, "status")
    verb = "probe" if "probe" in line else "command"
    assert shown[0].startswith(verb) and "PROFILE" not in shown[0] and "--endpoint" not in shown[0]
    assert ("--crit S" if verb == "probe" else "--custom-command JSON") in shown[0]
    assert "--trust-pickle" not in shown[0]  # another protocol's option
    assert shown[1].startswith("autotrainer │ feed off")


def test_help_names_every_verb_and_refuses_an_unknown_one() -> None:
    lines = Lines()
    shown = lines.run("help", "help connect", "help comand")
    for verb in ("listen", "command", "connect NAME [PROFILE]", "use NAME", "ls", "disconnect", "clear", "exit"):
        assert verb in shown[0]
    assert max(len(line) for line in shown[0].splitlines()) <= 80  # a line each at 80 columns
    assert shown[1].startswith("connect NAME [PROFILE]")
    assert shown[2] == "error: help: no verb 'comand' (did you mean command?)" and lines.session.code == 2


def test_named_connections_connect_use_ls_and_disconnect() -> None:
    lines = Lines()
    session = lines.session

    async def main() -> list[str]:
        assert session.prompt == "autotrainer> "
        for line in ("connect dev1", "connect dev2 tracim"):
            await session.run_line(line)
        assert session.prompt == "tracim@dev2> " and list(session.connections) == ["autotrainer", "dev1", "dev2"]
        await session.run_line("use dev1")
        assert session.prompt == "autotrainer@dev1> "
        lines.shown.clear()
        await session.run_line("ls")
        listed = list(lines.shown)
        await session.run_line("connect dev1")  # taken: an error, nothing changes
        await session.run_line("use dve1")
        await session.run_line("disconnect dev1")
        assert list(session.connections) == ["autotrainer", "dev2"] and session.prompt == "autotrainer> "
        await session.run_line("disconnect")
        await session.run_line("disconnect dev2")
        assert session.prompt == "fieldctl> " and session.toolbar().startswith(" no connection")
        await session.run_line("command get-status")
        await session.close()
        return listed

    listed = asyncio.run(main())
    assert [row.split()[:3] for row in listed] == [
        ["autotrainer", "autotrainer", "not"],
        ["*", "dev1", "autotrainer"],
        ["dev2", "tracim", "not"],
    ]
    assert "error: connection 'dev1' is open (use dev1, or disconnect dev1 first)" in lines.shown
    assert "error: no connection 'dve1' (did you mean dev1?)" in lines.shown
    assert "disconnected dev1; using autotrainer" in lines.shown
    assert lines.shown[-1] == "error: no connection: connect NAME PROFILE"


def test_use_of_a_profile_not_connected_connects_it_under_its_name() -> None:
    lines = Lines()
    shown = lines.run("use tracim", "ls")
    assert shown[0].startswith("using tracim (")
    assert [row.split()[:2] for row in shown[1:]] == [["autotrainer", "autotrainer"], ["*", "tracim"]]


@pytest.mark.parametrize(
    "typed, offered, meta",
    [
        ("", "command", "Send a command and print the reply and its round-trip time"),
        ("", "connect", "open a named connection and use it"),
        ("command get-st", "get-status", "ApiSystemStatus"),
        ("publish emergencyS", "emergencyStop", "event 101"),
        ("command get-status --ti", "--timeout", "Seconds to wait for the reply (and the result)."),
        ("listen --filter kind=tunnelE", "kind=tunnelEnter", "event"),
        ("connect dev1 tra", "tracim", "profile"),
        ("use auto", "autotrainer", "autotrainer connection"),
        ("help li", "listen", "Subscribe and show events, heartbeats and connection state as they arrive"),
    ],
)
def test_the_completion_menu_says_what_each_offer_is(typed: str, offered: str, meta: str) -> None:
    session = Lines().session
    completions = ConsoleCompleter(session).get_completions(Document(typed), CompleteEvent(completion_requested=True))
    metas = {c.text: c.display_meta_text for c in completions}
    assert metas[offered].startswith(meta), metas
