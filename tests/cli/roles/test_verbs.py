"""The role verbs, declared once for the app and the console: one subcommand per driver role, the
same click commands for a console line, and each verb's --options as the console completes them,
per protocol. In this process: nothing here needs a device."""

from __future__ import annotations

import pytest
import typer

from fieldctl.cli.framework.protocol_options import CONTEXT, ProtocolCommand
from fieldctl.cli.roles.verbs import CONSOLE_VERBS, ROLE_VERBS, commands, flags, register
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


@pytest.mark.parametrize("verb", ROLES)
@pytest.mark.parametrize("protocol", protocol_names())
def test_flags_are_the_verbs_own_then_the_named_protocols(verb: str, protocol: str) -> None:
    own = flags(verb, protocol)[: len(flags(verb, "no-such-protocol"))]
    theirs = [flag for flag in declared_options(protocol).get(verb, {}) if flag != PARAMS]
    assert own == flags(verb, "no-such-protocol") and "--help" in own
    rest = flags(verb, protocol)[len(own) :]
    assert len(rest) == len(set(rest)) and set(rest) == set(theirs) - set(own)


def test_flags_of_no_protocol_are_every_protocols() -> None:
    every = flags("listen", None)
    assert {"--master", "--stream", "--trust-pickle", "--json", "--count"} <= set(every)
    assert len(every) == len(set(every))


def test_flags_per_protocol() -> None:
    assert flags("listen", "tracim")[-2:] == ["--help", "--master"]
    assert "--master" not in flags("listen", "autotrainer") and "--stream" not in flags("listen", "autotrainer")
    assert {"--args", "--kwargs", "--timestamp", "--trust-pickle"} <= set(flags("command", "oneliner"))
    assert "--custom-command" in flags("command", "autotrainer") and "--custom-command" not in flags(
        "command", "oneliner"
    )
