"""`fieldctl command` refuses what the profile says is a mistake before anything is sent: a
misspelt command, a --data field the command does not declare (unless --force). Real
subprocesses against `simulate autotrainer`, whose own output shows every connection and request."""

from __future__ import annotations

from tests.helpers.autotrainer import Endpoints
from tests.helpers.processes import Proc, lines_of, one_line, run_cli


def requests_seen(simulator: Proc) -> list[dict]:
    """What the simulator was sent (and every peer that connected), once it has ended."""
    assert simulator.stop() == 0
    seen = lines_of("\n".join(simulator.output()))
    return [m for m in seen if m["channel"] == "command" or m["kind"] == "peer-connected"]


def test_a_misspelt_command_gets_a_did_you_mean_and_nothing_is_sent(simulator: Proc, endpoints: Endpoints) -> None:
    result = run_cli("command", "autotrainer", "get-stauts", *endpoints.args)
    assert result.returncode == 2 and result.stdout == ""
    assert one_line(result.stderr) == "fieldctl: unknown command 'get-stauts' (did you mean get-status?)"
    assert requests_seen(simulator) == []


def test_an_undeclared_field_is_refused_unless_forced(simulator: Proc, endpoints: Endpoints) -> None:
    typo = ["command", "autotrainer", "set-application-mode", "--data", '{"mdoe": 100}', "--json", *endpoints.args]
    refused = run_cli(*typo)
    assert refused.returncode == 2 and refused.stdout == ""
    assert one_line(refused.stderr) == (
        "fieldctl: --data: set-application-mode takes no field 'mdoe' (did you mean mode?); --force sends it anyway"
    )
    forced = run_cli(*typo, "--force")  # the user's word: sent, and the device says what it makes of it
    assert forced.returncode == 1 and "invalid mode None" in forced.stderr
    [connected, request] = [m for m in requests_seen(simulator) if m["endpoint"] == "commands"]
    assert connected["kind"] == "peer-connected" and request["payload"]["data"] == {"mdoe": 100}


def test_declared_fields_and_commands_without_declared_fields_pass(simulator: Proc, endpoints: Endpoints) -> None:
    declared = run_cli("command", "autotrainer", "set-application-mode", "--data", '{"mode": 0}', *endpoints.args)
    assert declared.returncode == 0, declared.stderr
    undeclared = run_cli("command", "autotrainer", "get-status", "--data", '{"anything": 1}', *endpoints.args)
    assert undeclared.returncode == 0, undeclared.stderr  # the profile declares no fields for it: passed through
    assert len([m for m in requests_seen(simulator) if m["channel"] == "command"]) == 2
