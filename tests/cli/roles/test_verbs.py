"""The role verbs, declared once for the app and the console: one subcommand per driver role, the
same click commands for a console line, and each verb's --options as the console completes them,
per protocol. In this process: nothing here needs a device."""

from __future__ import annotations

import pytest
import typer

from fieldctl.cli.framework.protocol_options import CONTEXT, ProtocolCommand
from fieldctl.cli.roles.verbs import (
    CONSOLE_VERBS,
    ROLE_VERBS,
    commands,
    console_options,
    console_usage,
    register,
    summary,
)
from fieldctl.protocols.runtime.registry import declared_options, protocol_names
from fieldctl.protocols.sdk.options import PARAMS, ROLES


def test_a_verb_for_every_driver_role_and_the_console_speaks_four() -> None:
    assert tuple(ROLE_VERBS) == ROLES
    assert CONSOLE_VERBS == ("listen", "command", "publish", "probe")
    assert all(ROLE_VERBS[verb].console for verb in CONSOLE_VERBS)


def test_register_adds_each_verb_as_a_protocol_command() -> None:
    app = typer.Typer()
    register(app)
    built = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    assert list(built) == list(ROLES)
    assert all(isinstance(command, ProtocolCommand) for command in built.values())
    assert all(built[verb].context_settings == CONTEXT for verb in ROLES)


def test_the_commands_are_built_once_per_process() -> None:
    assert commands() is commands()
    assert list(commands()) == list(ROLES)


def flags(verb: str, protocol: str | None) -> list[str]:
    return [flag for flag, _, _ in console_options(verb, protocol)]


@pytest.mark.parametrize("verb", CONSOLE_VERBS)
@pytest.mark.parametrize("protocol", protocol_names())
def test_options_are_the_verbs_console_ones_then_the_named_protocols(verb: str, protocol: str) -> None:
    own = list(ROLE_VERBS[verb].options)
    assert flags(verb, protocol)[: len(own)] == own == flags(verb, "no-such-protocol")
    theirs = [flag for flag in declared_options(protocol).get(verb, {}) if flag != PARAMS]
    rest = flags(verb, protocol)[len(own) :]
    assert len(rest) == len(set(rest)) and set(rest) == set(theirs) - set(own)
    assert all(text for _, _, text in console_options(verb, protocol))  # each with its description


def test_options_of_no_protocol_are_every_protocols() -> None:
    every = flags("listen", None)
    assert {"--master", "--stream", "--trust-pickle", "--count", "--filter"} <= set(every)
    assert len(every) == len(set(every))


def test_options_per_protocol_leave_out_what_the_console_fixes() -> None:
    assert flags("listen", "tracim")[-1] == "--master"
    assert "--master" not in flags("listen", "autotrainer") and "--stream" not in flags("listen", "autotrainer")
    assert {"--args", "--kwargs", "--timestamp", "--trust-pickle"} <= set(flags("command", "oneliner"))
    assert "--custom-command" in flags("command", "autotrainer") and "--custom-command" not in flags(
        "command", "oneliner"
    )
    for verb in CONSOLE_VERBS:  # the connection chooses these, and the console prints no NDJSON
        assert not {"--host", "--endpoint", "--set", "--profile-file", "--json", "--help"} & set(flags(verb, None))


def test_a_verbs_console_usage_has_no_profile_and_only_its_protocols_options() -> None:
    usage = console_usage("command", "autotrainer")
    assert usage.startswith("command NAME") and "PROFILE" not in usage
    assert "--custom-command JSON" in usage and "--trust-pickle" not in usage
    assert "  --timeout S  " in usage and "Seconds to wait for the reply" in usage
    assert summary("probe") == "Check the remote side: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN"
