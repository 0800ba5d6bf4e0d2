"""`fieldctl check` as a real subprocess: every example against its simulator (--simulate), a
failure with its diff (NDJSON, terminal table, JUnit parsed back with xml.etree), a timeout, an
unreachable target, a bad file, --fail-fast."""

from __future__ import annotations

import json
import socket
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.autotrainer import Endpoints, start_simulator
from tests.helpers.ports import free_port
from tests.helpers.processes import FIELDCTL, Proc, cli_env, one_line, run_cli
from tests.helpers.repository import ROOT
from tests.helpers.terminals import Pty

EXAMPLES = sorted((ROOT / "examples" / "checks").glob("*.toml"))
#: The examples that run a program (vantiq's answers its queries with `cat`): --allow-exec.
RUN_PROGRAMS = {"vantiq"}
STATUS = (
    '[[step]]\nname = "status answers"\ncommand = "get-status"\n'
    "expect = { ok = true, data = { applicationMode = 0 } }\n"
)


def lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def write(tmp: Path, text: str, name: str = "smoke.toml") -> Path:
    path = tmp / name
    path.write_text(text)
    return path


def junit(path: Path) -> ET.Element:
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites"
    return root


def test_the_five_profiles_have_an_example() -> None:
    assert {path.stem for path in EXAMPLES} == {"autotrainer", "tracim", "sepl", "oneliner", "vantiq"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.stem)
def test_every_example_passes_against_its_simulator(path: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.xml"
    allowed = ["--allow-exec"] if path.stem in RUN_PROGRAMS else []
    result = run_cli("check", str(path), "--simulate", "--json", "--junit", str(report), *allowed, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    *steps, done = lines(result.stdout)
    assert all(step["status"] == "passed" for step in steps) and done == {
        "done": True,
        "exit": 0,
        "steps": len(steps),
        "passed": len(steps),
    }
    [suite] = junit(report)
    assert suite.get("name") == path.stem and suite.get("tests") == str(len(steps)) and suite.get("failures") == "0"
    assert [case.get("name") for case in suite] == [f"{step['step']}. {step['name']}" for step in steps]


def test_a_plugin_protocol_is_checked_too(tmp_path: Path) -> None:
    """The linejson example plugin: no handshake, so its listener is ready once connected."""
    check = write(
        tmp_path,
        'target = "linejson"\n'
        '[[step]]\ncommand = "echo"\ndata = { text = "hi" }\nexpect = { data = { text = "hi" } }\n'
        '[[step]]\nevent = { channel = "event", kind = "tick" }\n[[step]]\nprobe = true\n',
    )
    result = run_cli("check", str(check), "--simulate", "--json", timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert [m.get("status") for m in lines(result.stdout)] == ["passed", "passed", "passed", None]
    assert result.stderr == ""


def test_a_failed_expectation_exits_1_with_the_diff_everywhere(tmp_path: Path) -> None:
    check = write(
        tmp_path,
        'target = "autotrainer"\n'
        + STATUS.replace("applicationMode = 0", "applicationMode = 7")
        + "[[step]]\nwait_s = 0\n",
    )
    report = tmp_path / "report.xml"
    result = run_cli("check", str(check), "--simulate", "--json", "--junit", str(report), timeout=60)
    assert result.returncode == 1, result.stderr
    failed, waited, done = lines(result.stdout)
    assert failed["status"] == "failed" and failed["diff"] == ["data.applicationMode: expected 7, got 0"]
    assert failed["observed"]["data"]["applicationMode"] == 0 and waited["status"] == "passed"
    assert done == {"done": True, "exit": 1, "steps": 2, "passed": 1, "failed": 1}
    root = junit(report)
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("2", "1", "0")
    failure = root.find("testsuite/testcase/failure")
    assert failure is not None and failure.get("message") == "data.applicationMode: expected 7, got 0"
    assert failure.text == "data.applicationMode: expected 7, got 0"


def test_on_a_terminal_a_table_shows_marks_and_the_diff(tmp_path: Path, terminals: Callable[..., Pty]) -> None:
    check = write(tmp_path, 'target = "autotrainer"\n' + STATUS + STATUS.replace("= 0 }", "= 9 }"))
    term = terminals([*FIELDCTL, "check", str(check), "--simulate"])
    assert term.wait(60) == 1
    text = term.text
    assert "✓" in text and "✗" in text and "data.applicationMode: expected 9, got 0" in text
    assert "1 passed, 1 failed" in text


def test_at_60_columns_the_detail_wraps_and_the_step_name_stays_whole(
    tmp_path: Path, terminals: Callable[..., Pty]
) -> None:
    typo = "applicationModeCalibrationTypo"
    check = write(tmp_path, 'target = "autotrainer"\n' + STATUS.replace("= 0 }", f'= "{typo}" }}'))
    term = terminals([*FIELDCTL, "check", str(check), "--simulate"], cols=60)
    assert term.wait(60) == 1
    rows = term.text.splitlines()
    assert any("status answers" in row and "ms" in row for row in rows)  # name and time on the step's row
    assert "…" not in term.text and f'"{typo}", got 0' in "".join(row.strip() for row in rows)


def test_an_event_that_never_comes_is_a_timeout(tmp_path: Path) -> None:
    check = write(
        tmp_path,
        'target = "autotrainer"\n[[step]]\nevent = { channel = "event", kind = "calibration3dFailed" }\n'
        "within_s = 0.5\n[[step]]\nwait_s = 0\n",
    )
    result = run_cli("check", str(check), "--simulate", "--json", timeout=60)
    assert result.returncode == 4, result.stderr
    timed_out, _, done = lines(result.stdout)
    assert timed_out["status"] == "error" and timed_out["exit"] == 4
    assert timed_out["detail"] == "no channel=event kind=calibration3dFailed within 0.5 s" and done["exit"] == 4


def test_an_unreachable_target_exits_3(tmp_path: Path) -> None:
    check = write(tmp_path, STATUS + "[[step]]\nprobe = true\n")
    report = tmp_path / "report.xml"
    nowhere = [f"--endpoint=events=tcp://127.0.0.1:{free_port()}", f"--endpoint=commands=tcp://127.0.0.1:{free_port()}"]
    result = run_cli(
        "check", str(check), "--target", "autotrainer", *nowhere, "--json", "--junit", str(report), timeout=60
    )
    assert result.returncode == 3, result.stdout + result.stderr
    command, probe, done = lines(result.stdout)
    assert command["status"] == "error" and command["exit"] == 3 and "connection refused" in command["detail"]
    assert probe["status"] == "failed" and probe["diff"] == ['status: expected "OK", got "CRITICAL"']  # as probe says
    assert done["exit"] == 3
    [error] = junit(report).findall("testsuite/testcase/error")
    assert error.get("type") == "exit 3" and "connection refused" in (error.text or "")


def test_a_listener_that_cannot_connect_stops_the_file_with_exit_3(tmp_path: Path) -> None:
    check = write(tmp_path, '[[step]]\nevent = { channel = "event" }\n' + STATUS)
    nowhere = [f"--endpoint=events=tcp://127.0.0.1:{free_port()}", f"--endpoint=commands=tcp://127.0.0.1:{free_port()}"]
    result = run_cli("check", str(check), "--target", "autotrainer", *nowhere, "--json", timeout=60)
    assert result.returncode == 3, result.stdout + result.stderr
    assert [(m.get("status"), m.get("exit")) for m in lines(result.stdout)] == [("error", 3), ("skipped", 0), (None, 3)]


def test_via_a_simulator_running_elsewhere(tmp_path: Path) -> None:
    """Without --simulate: the sepl example against `simulate sepl --control SOCKET` in another process."""
    env = cli_env(SEPL_PASSWORD="pw-check")
    platform = f"--endpoint=platform=ws://127.0.0.1:{free_port()}"
    control = str(tmp_path / "ctl.sock")
    simulator = Proc([*FIELDCTL, "simulate", "sepl", "--json", platform, "--control", control], env=env)
    try:
        simulator.wait_json(lambda m: m["kind"] == "bound" and m["endpoint"] == "control")
        result = run_cli(
            "check",
            str(ROOT / "examples" / "checks" / "sepl.toml"),
            platform,
            "--via",
            control,
            "--json",
            env=env,
            timeout=60,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert lines(result.stdout)[-1]["passed"] == 4
    finally:
        assert simulator.stop() == 0


def test_a_bad_file_lists_every_problem_and_runs_nothing(tmp_path: Path) -> None:
    good = write(tmp_path, 'target = "autotrainer"\n' + STATUS, "good.toml")
    bad = write(
        tmp_path,
        'target = "autotrainer"\n[options]\ncommand = ["--no-such"]\n'
        '[[step]]\ncommand = "get-status"\nwait_s = 1\n[[step]]\nwait_s = -2\n',
        "bad.toml",
    )
    untargeted = write(tmp_path, STATUS, "untargeted.toml")
    unknown = write(tmp_path, 'target = "no-such-profile"\n' + STATUS, "unknown.toml")
    result = run_cli("check", str(good), str(bad), str(untargeted), str(unknown), "--json", timeout=30)
    assert result.returncode == 2 and result.stdout == ""
    found = result.stderr.splitlines()
    assert found[:3] == [
        f"fieldctl check: {bad}: step 1: action: exactly one of command, event, probe, publish, wait_s"
        " (found command, wait_s)",
        f"fieldctl check: {bad}: step 2: wait_s: expected a number of seconds, at most 86400",
        f'fieldctl check: {untargeted}: target: missing: give target = "PROFILE" in the file or --target',
    ]
    assert found[3].startswith(f"fieldctl check: {unknown}: target: unknown profile or target 'no-such-profile'")
    assert len(found) == 4


def test_a_protocol_option_the_profile_does_not_take_is_a_bad_file(tmp_path: Path) -> None:
    bad = write(tmp_path, 'target = "autotrainer"\n[options]\ncommand = ["--no-such"]\n' + STATUS)
    result = run_cli("check", str(bad), timeout=30)
    assert result.returncode == 2
    assert result.stderr.startswith(
        f"fieldctl check: {bad}: options.command: command autotrainer: no such option --no-such"
    )


def test_fail_fast_stops_at_the_first_step_that_does_not_pass(tmp_path: Path) -> None:
    first = write(
        tmp_path, 'target = "autotrainer"\n' + STATUS.replace("= 0 }", "= 5 }") + "[[step]]\nwait_s = 0\n", "first.toml"
    )
    second = write(tmp_path, 'target = "autotrainer"\n' + STATUS, "second.toml")
    stopped = run_cli("check", str(first), str(second), "--simulate", "--fail-fast", "--json", timeout=60)
    assert stopped.returncode == 1
    assert [(m.get("file"), m.get("status")) for m in lines(stopped.stdout)[:-1]] == [
        (str(first), "failed"),
        (str(first), "skipped"),
        (str(second), "skipped"),
    ]
    ran = run_cli("check", str(first), str(second), "--simulate", "--json", timeout=60)
    assert ran.returncode == 1
    assert [m.get("status") for m in lines(ran.stdout)[:-1]] == ["failed", "passed", "passed"]


def test_a_check_file_may_not_run_a_program_unless_allowed(tmp_path: Path) -> None:
    """A check file is data: options that run a program or unpickle freely are refused before
    anything runs, each with the way to allow them; typed by the user (--allow-exec) they run."""
    ran = tmp_path / "ran"
    check = write(
        tmp_path,
        'target = "sepl"\nvia = true\ntimeout_s = 10\n[options]\n'
        f'register = ["--device", "dev-1:t:Lamp", "--answer", "cmd", "--answer-with", "touch {ran}"]\n'
        '[[step]]\ncommand = "dev-1:sepl_set"\ndata = 1\n',
    )
    pickled = write(
        tmp_path,
        'target = "oneliner"\n[options]\nlisten = ["--trust-pickle"]\n'
        '[[step]]\ncommand = "call"\noptions = ["counter.get", "--trust-pickle"]\n',
        "pickled.toml",
    )
    refused = run_cli("check", str(check), str(pickled), "--simulate", "--json", timeout=60)
    assert (refused.returncode, refused.stdout) == (2, "")
    assert refused.stderr.splitlines() == [
        f"fieldctl check: {check}: options.register: --answer-with runs a program; "
        "pass check --allow-exec to let check files do that",
        f"fieldctl check: {pickled}: options.listen: --trust-pickle unpickles without restriction "
        "(a pickle can run any code); pass check --allow-exec to let check files do that",
        f"fieldctl check: {pickled}: step 1: options: --trust-pickle unpickles without restriction "
        "(a pickle can run any code); pass check --allow-exec to let check files do that",
    ]
    assert not ran.exists()

    allowed = run_cli("check", str(check), "--simulate", "--json", "--allow-exec", timeout=60)
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert ran.exists()


def test_the_readme_check_file_passes_against_the_simulator(tmp_path: Path) -> None:
    """The example under "The check file" in the README, as written there."""
    text = (ROOT / "README.md").read_text()
    example = text[text.index("### The check file") :].split("```toml\n", 1)[1].split("```", 1)[0]
    result = run_cli("check", str(write(tmp_path, example)), "--simulate", "--json", timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert {step.get("status") for step in lines(result.stdout)[:-1]} == {"passed"}


def test_names_the_profile_does_not_know_are_refused_before_the_first_step(tmp_path: Path) -> None:
    """Every misspelt name of every step is listed, and the device never hears from the check:
    not its first (good) step, not even a connection."""
    endpoints = Endpoints()
    bad = write(
        tmp_path,
        'target = "autotrainer"\n'
        + STATUS
        + '[[step]]\ncommand = "get-staus"\n'
        + '[[step]]\nevent = { channel = "evnt" }\n'
        + '[[step]]\ncommand = "set-application-mode"\ndata = { mdoe = 100 }\n',
    )
    simulator = start_simulator(endpoints)
    try:
        result = run_cli("check", str(bad), *endpoints.args, "--json", timeout=30)
    finally:
        assert simulator.stop() == 0
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        f"fieldctl check: {bad}: step 2: command: unknown command 'get-staus' (did you mean get-status?)",
        f"fieldctl check: {bad}: step 3: event.channel: unknown channel 'evnt' (did you mean event?)",
        f"fieldctl check: {bad}: step 4: data.mdoe: set-application-mode takes no field 'mdoe' (did you mean mode?)",
    ]
    seen = lines("\n".join(simulator.output()))
    assert [m for m in seen if m["kind"] == "peer-connected" or m["channel"] == "command"] == []


def test_a_target_for_another_protocol_than_a_files_own_is_refused(tmp_path: Path) -> None:
    """--target stands in for each file's own target: it may not turn a check of one protocol into
    a check of another (the steps name that protocol's commands)."""
    mine = write(tmp_path, 'target = "autotrainer"\n' + STATUS, "mine.toml")
    untargeted = write(tmp_path, STATUS, "untargeted.toml")
    tracim = write(tmp_path, 'target = "tracim"\n[[step]]\ncommand = "ping"\n', "tracim.toml")
    sepl = ROOT / "examples" / "checks" / "sepl.toml"
    result = run_cli("check", str(mine), str(untargeted), str(tracim), str(sepl), "--target", "autotrainer", timeout=30)
    assert (result.returncode, result.stdout) == (2, "")
    assert one_line(result.stderr) == (
        f"fieldctl check: --target autotrainer (autotrainer) does not fit the target of {tracim} (tracim), "
        f"{sepl} (sepl): check those files in a run of their own"
    )
    fits = run_cli("check", str(mine), str(untargeted), "--target", "autotrainer", "--simulate", "--json", timeout=60)
    assert fits.returncode == 0, fits.stdout + fits.stderr


def test_a_step_via_a_simulator_without_one_is_refused_before_anything_runs(tmp_path: Path) -> None:
    """Such a step needs --simulate or --via: found when the file is loaded, not after the steps
    before it have run against the device."""
    check = write(
        tmp_path,
        'target = "autotrainer"\n' + STATUS + '[[step]]\npublish = "trialStarted"\nvia = true\n',
    )
    nowhere = [f"--endpoint=events=tcp://127.0.0.1:{free_port()}", f"--endpoint=commands=tcp://127.0.0.1:{free_port()}"]
    result = run_cli("check", str(check), *nowhere, "--json", timeout=30)
    assert (result.returncode, result.stdout) == (2, "")
    assert one_line(result.stderr) == (
        f"fieldctl check: {check}: step 2: via: acts through a simulator's control path: give --via SOCKET "
        '(or via = "SOCKET" in the file), or run with --simulate'
    )


def test_simulate_keeps_a_brokers_endpoint_where_the_line_points() -> None:
    """autotrainer's events marked a broker's: the private run leaves them at the line's URL (its
    simulator binds whatever it is given, so a port held there is its error), the rest private."""
    example = str(ROOT / "examples" / "checks" / "autotrainer.toml")
    brokered = ["--set", "topology.events=broker", "--simulate", "--json"]
    url = f"tcp://127.0.0.1:{free_port()}"
    passed = run_cli("check", example, *brokered, "--endpoint", f"events={url}", timeout=60)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        held = f"tcp://127.0.0.1:{holder.getsockname()[1]}"
        failed = run_cli("check", example, *brokered, "--endpoint", f"events={held}", timeout=60)
    assert failed.returncode == 3, failed.stdout + failed.stderr
    assert f"cannot bind events on {held}" in lines(failed.stdout)[0]["detail"]
