"""The console in a real terminal (tmux): subscribe, command while events arrive, Tab completion,
history, Ctrl-C on a waiting command, Ctrl-D out; and the same verbs from a pipe."""

from __future__ import annotations

import shlex
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq

from tests.helpers.autotrainer import Endpoints, start_simulator
from tests.helpers.processes import FIELDCTL, Proc, cli_env, run_cli
from tests.helpers.terminals import Tmux


class Terminal(Tmux):
    """The console (or any command) in a tmux pane, with waits for what the console shows."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        if shutil.which("tmux") is None:
            pytest.fail("tmux is required for the console test (make test installs it)")
        exports = " ".join(f"{key}={shlex.quote(value)}" for key, value in env.items())
        super().__init__(f"env {exports} {shlex.join(argv)}; echo EXITED $?; sleep 600", rows=40)

    def wait_for(self, text: str, timeout: float = 15) -> str:
        return self.wait_until(lambda screen: text in screen, repr(text), timeout)

    def wait_for_prompt(self, line: str, timeout: float = 15) -> str:
        """Until the line being edited (the last prompt line) reads exactly `line`."""

        def editing(screen: str) -> bool:
            # Keys typed while the previous line still runs are echoed by the tty before the prompt.
            prompts = [
                row[row.index("autotrainer>") :].rstrip() for row in screen.splitlines() if "autotrainer>" in row
            ]
            return bool(prompts) and prompts[-1] == line

        return self.wait_until(editing, f"prompt line {line!r}", timeout)


@pytest.fixture
def terminal_env(tmp_path: Path) -> dict[str, str]:
    env = {key: value for key, value in cli_env().items() if key in ("PATH", "HOME", "LANG", "PYTHONPATH")}
    env.update(XDG_STATE_HOME=str(tmp_path / "state"), XDG_CONFIG_HOME=str(tmp_path / "config"), TERM="xterm-256color")
    return env


@pytest.fixture
def console_terminal(endpoints: Endpoints, terminal_env: dict[str, str]) -> Iterator[Terminal]:
    term = Terminal([*FIELDCTL, "console", "autotrainer", *endpoints.args], terminal_env)
    yield term
    term.close()


def test_console_session_in_a_terminal(
    endpoints: Endpoints, console_terminal: Terminal, terminal_env: dict[str, str]
) -> None:
    device = start_simulator(endpoints)
    term = console_terminal
    term.wait_for_prompt("autotrainer>")
    term.keys("listen --filter channel=event", "Enter")
    term.wait_for("← event")
    term.wait_for("events: ready")  # the bottom toolbar follows the connection

    term.keys("command get-conf", "Tab")
    term.wait_for_prompt("autotrainer> command get-configuration")
    term.keys("Enter")
    screen = term.wait_for("ok: get-configuration: success")
    assert '"deviceId": "sim-0001"' in screen
    # Events keep arriving after the command: one shows below its result.
    term.wait_until(
        lambda screen: "← event" in screen.split("ok: get-configuration: success")[-1], "an event after the result"
    )

    term.keys("listen off", "Enter")
    term.wait_for("feed off")  # the line has run (the screen may still show the old, empty prompt)
    term.wait_for_prompt("autotrainer>")
    term.keys("Up", "Up")
    term.wait_for_prompt("autotrainer> command get-configuration")
    term.keys("C-u")
    term.wait_for_prompt("autotrainer>")
    history = Path(terminal_env["XDG_STATE_HOME"]) / "fieldctl" / "history"
    assert "command get-configuration" in history.read_text()
    assert stat.S_IMODE(history.stat().st_mode) == 0o600  # typed lines may name hosts and URLs

    device.stop()
    silent = zmq.Context()
    quiet = [silent.socket(zmq.ROUTER), silent.socket(zmq.PUB)]  # a device that takes the command, never answers
    quiet[0].bind(endpoints.commands)
    quiet[1].bind(endpoints.events)
    try:
        term.keys("command get-status --timeout 60", "Enter")
        term.wait_for("→ command        get-status")
        term.keys("C-c")
        term.wait_for("cancelled", timeout=5)
    finally:
        silent.destroy(linger=0)
    term.keys("command nope", "Enter")
    term.wait_for("error: unknown command 'nope'")  # shown inline; the console goes on
    term.keys("C-d")
    term.wait_for("EXITED 0")


def test_console_keeps_its_state_through_errors_and_profile_switches(
    endpoints: Endpoints, console_terminal: Terminal
) -> None:
    device = start_simulator(endpoints)
    term = console_terminal
    term.wait_for_prompt("autotrainer>")
    term.keys("listen --filter channel=heartbeat", "Enter")
    term.wait_for("← heartbeat")
    term.keys("listen off", "Enter")
    term.wait_for("feed off")
    term.keys("listen --bogus", "Enter")
    term.wait_for("error: listen autotrainer: no such option --bogus")
    term.keys("status", "Enter")  # the toolbar's text, as a line
    status = term.wait_until(
        lambda screen: screen.count("feed off") >= 2 and "│ events: ready" in screen.split("--bogus")[-1],
        "status after the error",
    )
    assert "feed on" not in status.split("--bogus")[-1]
    term.keys("clear", "Enter")  # an unknown verb: an error, and the feed stays off
    term.wait_for("unknown verb 'clear'")
    assert "← heartbeat" not in term.screen().split("unknown verb 'clear'")[-1]
    term.keys("listen on", "Enter")  # the filter was kept: heartbeats only, never the simulator's events
    term.wait_until(lambda screen: screen.split("listen on")[-1].count("← heartbeat") >= 3, "three heartbeats")
    assert "← event" not in term.screen().split("listen on")[-1]

    term.keys("use tracim", "Enter")
    term.wait_for("using tracim")
    term.keys("use autotrainer", "Enter")  # back, with the console's --endpoint again
    term.wait_for("using autotrainer")
    term.keys("status", "Enter")
    back = term.wait_until(lambda screen: "not connected" in screen.split("using autotrainer")[-1], "status after use")
    assert "STALE" not in back.split("using autotrainer")[-1]
    term.keys("listen", "Enter")
    term.wait_until(lambda screen: "← heartbeat" in screen.split("using autotrainer")[-1], "heartbeats after use")
    term.keys("status", "Enter")
    term.wait_until(
        lambda screen: (
            "│ events: ready │ heartbeat" in screen.split("using autotrainer")[-1].split("← heartbeat", 1)[-1]
        ),
        "connected status",
    )
    assert "STALE" not in term.screen().split("using autotrainer")[-1]
    device.stop()


def test_console_simulate_drives_the_simulated_side(endpoints: Endpoints, console_terminal: Terminal) -> None:
    console_terminal.close()
    env = {key: value for key, value in cli_env().items() if key in ("PATH", "HOME", "LANG")}
    term = Terminal([*FIELDCTL, "console", "autotrainer", "--simulate", *endpoints.args], {**env, "TERM": "xterm"})
    try:
        term.wait_for("simulating autotrainer")
        listener = Proc(
            [
                *FIELDCTL,
                "listen",
                "autotrainer",
                "--json",
                "--filter",
                "kind=emergencyStop",
                "--count",
                "1",
                "--timeout",
                "20",
                *endpoints.args,
            ]
        )
        listener.wait_json(lambda m: m["kind"] == "ready")
        term.keys('publish emergencyStop --data \'{"reason": "door", "reasonCode": 101, "activeAlarms": []}\'', "Enter")
        term.wait_for("ok: published emergencyStop")
        assert listener.wait(20) == 0
    finally:
        term.close()


def test_console_reads_verbs_from_a_pipe(simulator: Proc, endpoints: Endpoints) -> None:
    result = run_cli(
        "console",
        "autotrainer",
        *endpoints.args,
        input="command get-configuration\nprobe --crit 5\nexit\ncommand never-run\n",
    )
    assert result.returncode == 0, result.stderr
    assert "ok: get-configuration: success" in result.stdout
    assert "AUTOTRAINER OK" in result.stdout and "never-run" not in result.stdout


@pytest.mark.parametrize(
    "line, code, error",
    [
        ("bogus", 2, "error: unknown verb 'bogus' (try: help)"),
        ("comand get-status", 2, "error: unknown verb 'comand' (did you mean command?)"),
        ("command bogus", 2, "error: unknown command 'bogus'"),
        ("listen --jsn", 2, "error: listen autotrainer: no such option --jsn (did you mean --json?)"),
        ("listen --master x", 2, "error: listen autotrainer: --master is an option of tracim, not of autotrainer"),
        (
            "listen --count 1 --timeout 0.5 --filter kind=nothing-sends-this",
            4,
            "error: received 0 of 1 messages within 0.5 s",
        ),
        ("command emergency-resume", 1, None),  # FAILED: not stopped
    ],
)
def test_a_failing_line_ends_a_script_with_its_exit_code(
    simulator: Proc, endpoints: Endpoints, line: str, code: int, error: str | None
) -> None:
    result = run_cli("console", "autotrainer", *endpoints.args, input=f"status\n{line}\ncommand get-status\n")
    assert result.returncode == code, result.stdout + result.stderr
    assert "get-status: success" not in result.stdout  # like `sh -e`: nothing after the failure runs
    assert "Traceback" not in result.stderr
    if error is not None:
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(error), result.stderr


def test_a_profile_without_listen_says_so_and_the_feed_stays_off() -> None:
    result = run_cli("console", "vantiq", input="listen\nstatus\n")
    assert result.returncode == 2 and result.stderr == "error: listen is not supported for profile vantiq\n"
    assert "feed on" not in result.stdout


def test_listen_count_in_a_script_waits_for_its_messages(simulator: Proc, endpoints: Endpoints) -> None:
    result = run_cli(
        "console",
        "autotrainer",
        *endpoints.args,
        input="listen --count 3 --filter channel=heartbeat --timeout 20\nstatus\n",
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len([line for line in lines if "← heartbeat" in line]) == 3  # exactly N, then the feed pauses
    assert "feed off" in lines[-1] and "events: ready" in lines[-1]


@pytest.mark.parametrize(
    "typed, offered",
    [
        ("com", ["command"]),
        ("command set-app", ["set-application-mode"]),
        ("publish trialSta", ["trialStarted"]),
        ("use auto", ["autotrainer"]),
        ("listen --filter channel=he", ["channel=heartbeat"]),
        ("command set-application-mode --data '{\"mo", ['mode": ']),
        ("command get-status --ti", ["--timeout"]),
        ("command user-defined --cus", ["--custom-command"]),  # the profile's protocol options
        ("listen --ma", []),  # not another protocol's
    ],
)
def test_console_completes_names_options_and_payload_fields(typed: str, offered: list[str]) -> None:
    from prompt_toolkit.completion import CompleteEvent
    from prompt_toolkit.document import Document

    from fieldctl.cli.console.completion import ConsoleCompleter
    from fieldctl.cli.console.session import Session
    from fieldctl.cli.framework.common import ProfileOptions

    session = Session(ProfileOptions("autotrainer", None, None, None, None), False, print)
    completions = ConsoleCompleter(session).get_completions(Document(typed), CompleteEvent(completion_requested=True))
    assert [c.text for c in completions] == offered


def test_a_bad_value_on_a_line_is_told_as_on_the_command_line() -> None:
    result = run_cli("console", "autotrainer", input="probe --format xml\n")
    assert result.returncode == 2
    assert (
        result.stderr
        == "error: probe: Invalid value for '--format': expected one of text, json, prometheus, got 'xml'\n"
    )
