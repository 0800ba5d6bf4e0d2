"""The protocols' declared options as real options of the role subcommands, in this process on the
real click commands: listed in --help under the protocols that have them, completed for the named
profile's protocol only, and, once the profile is known, checked (another protocol's option names
its owners) and converted as declared. tests/cli/test_usage.py has the usage errors as a user
meets them (a typo's did-you-mean among them)."""

from __future__ import annotations

from typing import Any

import pytest

from fieldctl.cli.framework.protocol_options import GIVEN, declarations, role_options
from fieldctl.cli.roles.verbs import commands
from fieldctl.profiles import load_profile
from fieldctl.protocols.core.errors import UsageError
from fieldctl.protocols.sdk.options import PARAMS
from tests.helpers.processes import invoke


def options(role: str, profile: str, *args: str) -> dict[str, Any]:
    """What `fieldctl ROLE PROFILE ARGS` hands the role as its protocol options."""
    ctx = commands()[role].make_context(role, [profile, *args])
    return ctx.meta[GIVEN].options(role, load_profile(profile))


def refusal(role: str, profile: str, *args: str) -> str:
    with pytest.raises(UsageError) as refused:
        options(role, profile, *args)
    return str(refused.value)


def protocol_section(help_text: str) -> str:
    return help_text.split("Protocol options (for a profile of the protocol named):\n", 1)[1]


# --- --help ------------------------------------------------------------------------------------------


def test_help_lists_each_option_once_under_the_protocols_that_have_it() -> None:
    shown = invoke("publish", "--help")
    assert shown.returncode == 0 and shown.stderr == ""
    own, theirs = shown.stdout.split("Protocol options (for a profile of the protocol named):\n", 1)
    rows = {line.split()[0]: line for line in theirs.splitlines() if line.startswith("  -")}
    assert rows["--master"].split()[2] == "[tracim]"
    assert rows["--max-retries"].split()[1:4] == ["N", "[sepl,", "vantiq]"]  # one label for one help text
    assert rows["--metadata"].split()[1:3] == ["JSON", "[sepl]"]  # the metavar says the declared kind
    assert "[ARGS]...             [sepl] SERVICE" in theirs  # extra arguments, where a protocol takes them
    assert "--json" in own and "--json" not in theirs  # the subcommand's own options come first


def test_help_of_a_role_lists_every_option_declared_for_it_and_no_other() -> None:
    theirs = protocol_section(invoke("listen", "--help").stdout)
    listed = {line.split()[0] for line in theirs.splitlines() if line.startswith("  -")}
    assert listed == {flag for flag in declarations("listen") if flag != PARAMS}
    assert {"--master", "--stream", "--trust-pickle"} <= listed and "--custom-command" not in listed


def test_usage_shows_args_only_for_roles_that_take_them() -> None:
    assert invoke("command", "--help").stdout.startswith("Usage: fieldctl command [OPTIONS] [PROFILE] [NAME] [ARGS]...")
    assert "[ARGS]" not in invoke("listen", "--help").stdout.splitlines()[0]


# --- completion ----------------------------------------------------------------------------------------


def test_completion_offers_the_named_profiles_protocol_options_only() -> None:
    command = commands()["listen"]
    offered = {item.value for item in command.shell_complete(command.make_context("listen", ["tracim"]), "--")}
    assert "--master" in offered and "--json" in offered
    assert not offered & {"--stream", "--trust-pickle"}  # oneliner's
    unnamed = {item.value for item in command.shell_complete(command.make_context("listen", []), "--")}
    assert {"--master", "--stream"} <= unnamed  # no profile yet: every protocol's


# --- checked once the profile is known -------------------------------------------------------------------


def test_another_protocols_option_is_refused_naming_its_owners() -> None:
    assert refusal("publish", "tracim", "--max-retries", "3") == (
        "publish tracim: --max-retries is an option of sepl and vantiq, not of tracim"
        " (tracim's publish options: --master, --to, --path)"
    )


def test_extra_arguments_are_refused_where_the_protocol_takes_none() -> None:
    assert refusal("publish", "tracim", "kind", "surplus") == "publish tracim: unexpected argument 'surplus'"


# --- converted as declared ---------------------------------------------------------------------------------


def test_each_declared_kind_is_converted() -> None:
    assert options("command", "oneliner", "version", "--timestamp") == {"timestamp": True}  # flag
    assert options("listen", "tracim", "--master", "/run/m.sock") == {"master": "/run/m.sock"}  # str
    assert options("publish", "vantiq", "src", "--max-retries", "5") == {"max_retries": 5}  # int
    assert options("simulate", "vantiq", "--reconnect-after", "1.5") == {"reconnect_after": 1.5}  # float
    assert options("command", "oneliner", "call", "x.y", "--args", '[1, "a", {"b": null}]') == {  # json
        "params": ["x.y"],
        "args": [1, "a", {"b": None}],
    }


def test_a_repeatable_option_collects_a_list_and_any_other_keeps_the_last() -> None:
    assert options("listen", "oneliner", "--stream", "frame", "--stream", "counter") == {
        "streams": ["frame", "counter"]
    }
    assert options("listen", "tracim", "--master", "/a.sock", "--master", "/b.sock") == {"master": "/b.sock"}


def test_arguments_after_the_command_name_go_to_a_protocol_that_declares_them_in_order() -> None:
    assert options("command", "oneliner", "named", "add_defaults", "now") == {PARAMS: ["add_defaults", "now"]}


@pytest.mark.parametrize(
    ("role", "profile", "args", "problem"),
    [
        (
            "publish",
            "vantiq",
            ("src", "--max-retries", "many"),
            "publish vantiq: --max-retries: expected int, got 'many'",
        ),
        (
            "simulate",
            "vantiq",
            ("--reconnect-after", "soon"),
            "simulate vantiq: --reconnect-after: expected a number of seconds from 0 to 86400, got 'soon'",
        ),
        ("command", "oneliner", ("call", "--args", "[1,"), "command oneliner: --args: not JSON within limits: "),
        ("command", "oneliner", ("call", "--args", "[" * 100 + "]" * 100), "command oneliner: --args: not JSON within"),
    ],
)
def test_a_value_that_does_not_convert_is_a_usage_error(
    role: str, profile: str, args: tuple[str, ...], problem: str
) -> None:
    assert refusal(role, profile, *args).startswith(problem)


def test_options_written_in_a_file_are_parsed_and_checked_as_on_a_command_line() -> None:
    oneliner = load_profile("oneliner")
    assert role_options("command", ["call", "--kwargs", '{"k": 1}'], oneliner) == {
        "params": ["call"],
        "kwargs": {"k": 1},
    }
    with pytest.raises(UsageError, match="Option '--timestamp' does not take a value"):
        role_options("command", ["call", "--timestamp=yes"], oneliner)
    with pytest.raises(UsageError, match="--master is an option of tracim, not of oneliner"):
        role_options("command", ["--master", "/x.sock"], oneliner)
