"""The check file's loader and validator: a good file's model, and every problem of a bad one."""

from __future__ import annotations

from pathlib import Path

import pytest

from fieldctl.cli.check.checkfile import load, parse, vocabulary_problems
from fieldctl.profiles import load_profile
from fieldctl.protocols.core.errors import UsageError
from fieldctl.protocols.runtime.registry import driver_for
from tests.helpers.repository import ROOT

EXAMPLES = sorted((ROOT / "examples" / "checks").glob("*.toml"))


def problems(text: str) -> list[str]:
    with pytest.raises(UsageError) as caught:
        parse(text, "c.toml")
    return str(caught.value).splitlines()


def test_a_file_becomes_steps_with_defaults() -> None:
    check = parse(
        'target = "autotrainer"\ntimeout_s = 2\n'
        '[[step]]\ncommand = "get-status"\nexpect = { ok = true }\n'
        '[[step]]\nname = "e"\nevent = { channel = "event" }\nwithin_s = 3\n'
        "[[step]]\nprobe = { warn = 1, crit = 3 }\n"
        '[[step]]\npublish = "event"\ndata = { kind = 1301 }\n'
        "[[step]]\nwait_s = 0.5\n",
        "c.toml",
    )
    assert check.target == "autotrainer" and check.name == "c" and check.listens
    command, event, probe, publish, wait = check.steps
    assert (command.action, command.value, command.timeout_s, command.name) == (
        "command",
        "get-status",
        2.0,
        "command get-status",
    )
    assert (event.name, event.value, event.timeout_s) == ("e", {"channel": "event"}, 3.0)
    assert probe.value == {"warn": 1, "crit": 3} and publish.data == {"kind": 1301}
    assert (wait.action, wait.value, wait.name) == ("wait", 0.5, "wait 0.5 s")


def test_every_problem_is_listed_with_file_step_and_field() -> None:
    found = problems(
        'targte = "x"\ntimeout_s = -1\n[options]\nlisten = "--x"\n'
        '[[step]]\ncommand = "a"\nevent = { channel = "e" }\n'
        '[[step]]\nwait_s = "soon"\n'
        '[[step]]\ncommand = "a"\nwithin_s = 3\nexpect = { data = { "$contains" = 1 } }\n'
        '[[step]]\nevent = { chanel = "e" }\n'
        "[[step]]\nprobe = { warn = 5, crit = 1 }\n"
    )
    assert found == [
        "c.toml: targte: unknown key (known: listener, name, options, step, target, timeout_s, via)",
        "c.toml: timeout_s: expected a number of seconds above 0, at most 86400",
        "c.toml: options.listen: expected a list of strings, as on the command line",
        "c.toml: step 1: action: exactly one of command, event, probe, publish, wait_s (found command, event)",
        "c.toml: step 2: wait_s: expected a number of seconds, at most 86400",
        "c.toml: step 3: within_s: not for a command step (only event)",
        "c.toml: step 3: expect.data: $contains stands alone and takes a list",
        "c.toml: step 4: event.chanel: unknown key (known: channel, kind, endpoint, direction)",
        "c.toml: step 5: probe: warn 5 is above crit 1",
    ]


def test_no_steps_and_not_toml_are_problems_too(tmp_path: Path) -> None:
    assert problems('target = "x"\n') == ["c.toml: step: no [[step]] tables: a check needs at least one step"]
    assert problems("[[step]\n")[0].startswith("c.toml: not valid TOML: ")
    with pytest.raises(UsageError, match="cannot read"):
        load(tmp_path / "missing.toml")


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.stem)
def test_the_examples_are_valid(path: Path) -> None:
    assert load(path).steps


def test_every_name_the_profile_does_not_know_is_a_problem_of_its_step() -> None:
    check = parse(
        'target = "autotrainer"\n'
        '[[step]]\ncommand = "get-status"\n'
        '[[step]]\ncommand = "get-staus"\n'
        '[[step]]\nevent = { channel = "evnt", kind = "trialStared" }\n'
        '[[step]]\ncommand = "set-application-mode"\ndata = { mdoe = 100 }\n'
        '[[step]]\npublish = "event"\ndata = { kind = 1301 }\n'
        '[[step]]\ncommand = "set-application-mode"\ndata = { mdoe = 100 }\nforce = true\n'
        '[[step]]\nevent = { channel = "event", kind = "trialStarted" }\n',
        "c.toml",
    )
    assert check.steps[5].force
    assert vocabulary_problems(check, driver_for(load_profile("autotrainer"), lambda text: None)) == [
        "c.toml: step 2: command: unknown command 'get-staus' (did you mean get-status?)",
        "c.toml: step 3: event.channel: unknown channel 'evnt' (did you mean event?)",
        "c.toml: step 3: event.kind: unknown kind 'trialStared' (did you mean trialStarted?)",
        "c.toml: step 4: data.mdoe: set-application-mode takes no field 'mdoe' (did you mean mode?)",
        "c.toml: step 5: publish: unknown event kind 'event' (see: fieldctl profiles show autotrainer)",
    ]


def test_force_is_for_command_steps_and_a_flag() -> None:
    assert problems('target = "x"\n[[step]]\npublish = "k"\nforce = true\n[[step]]\ncommand = "c"\nforce = 1\n') == [
        "c.toml: step 1: force: not for a publish step (only command)",
        "c.toml: step 2: force: expected true or false",
    ]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.stem)
def test_the_examples_name_only_what_their_profiles_know(path: Path) -> None:
    check = load(path)
    assert check.target is not None
    assert vocabulary_problems(check, driver_for(load_profile(check.target), lambda text: None)) == []
