"""A value a typed option cannot take is told in fieldctl's words, naming what the option expects
and what it got: never the validation text of the library that converted it."""

from __future__ import annotations

import pytest

from tests.helpers.processes import one_line, run_cli

CASES = {
    "not a number": (
        ("bench", "autotrainer", "listen", "--clients", "abc"),
        2,
        "fieldctl bench: Invalid value for '--clients': expected an integer from 1 to 1000, got 'abc'",
    ),
    "below the range": (
        ("simulate", "autotrainer", "--devices", "0"),
        2,
        "fieldctl simulate: Invalid value for '--devices': expected an integer of at least 1, got '0'",
    ),
    "above the range": (
        ("simulate", "autotrainer", "--base-port", "70000"),
        2,
        "fieldctl simulate: Invalid value for '--base-port': expected an integer from 1 to 65535, got '70000'",
    ),
    "not a choice": (
        ("probe", "autotrainer", "--format", "xml"),
        3,  # probe: Nagios UNKNOWN
        "fieldctl probe: Invalid value for '--format': expected one of text, json, prometheus, got 'xml'",
    ),
    "not a choice of an argument": (
        ("completion", "show", "xsh"),
        2,
        "fieldctl completion show: Invalid value for 'SHELL': expected one of bash, zsh, fish, got 'xsh'",
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_a_bad_value_names_what_was_expected(case: str) -> None:
    args, code, line = CASES[case]
    result = run_cli(*args)
    assert result.returncode == code and one_line(result.stderr) == line, result.stderr
    assert "Input should be" not in result.stderr and "Value error" not in result.stderr
