"""What a new user types first: `fieldctl` alone, and a misspelt option. The usage errors of
protocol options run in this process (invoke): the same main(), exit code and one stderr line as
a real process, which the first tests check end to end."""

from __future__ import annotations

from tests.helpers.processes import invoke, run_cli


def test_no_arguments_prints_a_short_usage_and_the_subcommands() -> None:
    result = run_cli()
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert 2 <= len(lines) <= 4 and lines[0].startswith("usage: fieldctl")
    for name in ("listen", "command", "publish", "simulate", "probe", "console", "profiles"):
        assert name in lines[1]
    assert "Options:" not in result.stderr and "╭" not in result.stderr and "Error" not in result.stderr


def test_help_and_version_are_still_ok() -> None:
    assert run_cli("--help").returncode == 0
    assert run_cli("--version").stdout.startswith("fieldctl ")


def test_an_unknown_option_suggests_the_subcommand_option_it_resembles() -> None:
    result = run_cli("listen", "autotrainer", "--jsn")
    assert result.returncode == 2
    assert result.stderr == "fieldctl: listen autotrainer: no such option --jsn (did you mean --json?)\n"


def test_an_unknown_option_suggests_a_protocol_option_too() -> None:
    result = invoke("command", "oneliner", "call", "--kwarg", "{}")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "no such option --kwarg (did you mean --kwargs?)" in result.stderr


def test_an_option_like_nothing_lists_the_protocol_options() -> None:
    result = invoke("listen", "oneliner", "--zzzzzz")
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "no such option --zzzzzz (protocol options: " in result.stderr and "did you mean" not in result.stderr


def test_probe_suggests_its_own_options_and_stays_nagios() -> None:
    result = run_cli("probe", "autotrainer", "--formt", "json")
    assert result.returncode == 3  # UNKNOWN, as every probe usage error
    assert result.stdout == "AUTOTRAINER UNKNOWN - probe autotrainer: no such option --formt (did you mean --format?)\n"


def test_protocol_options_are_listed_in_help_under_their_protocols() -> None:
    result = invoke("listen", "--help")
    assert result.returncode == 0
    protocol_part = result.stdout.split("Protocol options", 1)[1]
    assert "--master" in protocol_part and "[tracim]" in protocol_part
    assert "--stream" in protocol_part and "[oneliner]" in protocol_part
    assert "--json" not in protocol_part  # the subcommand's own options come before


def test_an_option_of_another_protocol_names_whose_it_is() -> None:
    result = invoke("listen", "autotrainer", "--master", "/tmp/x.sock")
    assert result.returncode == 2
    assert result.stderr == (
        "fieldctl: listen autotrainer: --master is an option of tracim, not of autotrainer "
        "(autotrainer's listen options: none)\n"
    )


def test_a_protocol_option_value_of_the_wrong_type_is_a_usage_error() -> None:
    result = invoke("publish", "vantiq", "src", "--max-retries", "many")
    assert result.returncode == 2
    assert result.stderr == "fieldctl: publish vantiq: --max-retries: expected int, got 'many'\n"
