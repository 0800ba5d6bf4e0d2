"""--fault and --faults are checked before anything binds or connects: a rule that does not parse
is one line naming it (and a faults file's line), exit 2, on proxy and simulate alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.processes import invoke, one_line

#: Local endpoints apart from the upstream ones, so only the rules can be wrong.
LOCAL = ["--endpoint", "events=tcp://127.0.0.1:6556", "--endpoint", "commands=tcp://127.0.0.1:6557"]
PROXY = ["proxy", "autotrainer", "--upstream", "127.0.0.1", *LOCAL]
SIMULATE = ["simulate", "autotrainer"]


@pytest.mark.parametrize("role", [PROXY, SIMULATE], ids=["proxy", "simulate"])
def test_a_misspelt_rule_is_refused_with_a_did_you_mean(role: list[str]) -> None:
    done = invoke(*role, "--fault", "delay 50-400ms", "--fault", "drop rat=0.1")
    assert done.returncode == 2
    assert one_line(done.stderr) == "fieldctl: --fault 'drop rat=0.1': unknown key rat (did you mean rate?)"


def test_a_faults_file_names_its_line(tmp_path: Path) -> None:
    rules = tmp_path / "faults.txt"
    rules.write_text("# a flaky link\ndelay 20-50ms\nstall channel=heartbeat after=10s\n")
    done = invoke(*PROXY, "--faults", str(rules))
    assert done.returncode == 2
    assert one_line(done.stderr) == (
        f"fieldctl: --faults {rules}:3: 'stall channel=heartbeat after=10s': stall needs how long: for=20s"
    )


@pytest.mark.parametrize("role", [PROXY, SIMULATE], ids=["proxy", "simulate"])
def test_a_seed_needs_a_rule_and_a_faults_file_must_be_there(role: list[str], tmp_path: Path) -> None:
    seeded = invoke(*role, "--seed", "3")
    assert seeded.returncode == 2
    assert one_line(seeded.stderr) == (
        "fieldctl: --seed: there is no fault rule to seed (give --fault RULE or --faults FILE)"
    )
    missing = invoke(*role, "--faults", str(tmp_path / "none.txt"))
    assert missing.returncode == 2
    assert (
        one_line(missing.stderr)
        == f"fieldctl: --faults {tmp_path / 'none.txt'}: cannot read: No such file or directory"
    )
