"""The console in a real terminal (tmux), at 160, 80 and 60 columns: subscribe, command while
events arrive, Tab completion and its menu, history, a verb's --help, errors and Ctrl-C that leave
the console going, simulate and talk to it, named connections, Ctrl-D out; and the same verbs from
a pipe."""

from __future__ import annotations

import shlex
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq

from tests.helpers.autotrainer import Endpoints, start_simulator
from tests.helpers.processes import FIELDCTL, Proc, cli_env, lines_of, run_cli
from tests.helpers.terminals import Tmux
from tests.helpers.waiting import holds_within


class Terminal(Tmux):
    """The console (or any command) in a tmux pane, with waits for what the console shows."""

    def __init__(self, argv: list[str], env: dict[str, str], cols: int = 160) -> None:
        if shutil.which("tmux") is None:
            pytest.fail("tmux is required for the console test (make test installs it)")
        exports = " ".join(f"{key}={shlex.quote(value)}" for key, value in env.items())
        super().__init__(f"env {exports} {shlex.join(argv)}; echo EXITED $?; sleep 600", rows=40, cols=cols)

    def screen(self) -> str:
        """The pane with lines the terminal wrapped joined again (-J): at 60 columns a line of
        output takes several rows."""
        return self.run("capture-pane", "-p", "-J", "-t", self.name)

    def history(self) -> str:
        """The screen and the scrollback above it, wrapped lines joined."""
        return self.run("capture-pane", "-p", "-J", "-S", "-", "-t", self.name)

    def wait_for(self, text: str, timeout: float = 15) -> str:
        return self.wait_until(lambda screen: text in screen, repr(text), timeout)

    def enter(self, line: str, then: str) -> str:
        """Types `line` and Enter, then waits until the screen shows `then`."""
        self.keys(line, "Enter")
        return self.wait_for(then)

    def wait_for_prompt(self, line: str, timeout: float = 15) -> str:
        """Until the line being edited (the last line with that prompt) reads exactly `line`."""
        prompt = line.split(">", 1)[0] + ">"

        def editing(screen: str) -> bool:
            # Keys typed while the previous line still runs are echoed by the tty before the prompt.
            prompts = [row[row.index(prompt) :].rstrip() for row in screen.splitlines() if prompt in row]
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
    term.keys("clean", "Enter")  # an unknown verb: an error, and the feed stays off
    term.wait_for("unknown verb 'clean' (did you mean clear?)")
    assert "← heartbeat" not in term.screen().split("unknown verb 'clean'")[-1]
    term.keys("listen on", "Enter")  # the filter was kept: heartbeats only, never the simulator's events
    term.wait_until(lambda screen: screen.split("listen on")[-1].count("← heartbeat") >= 3, "three heartbeats")
    assert "← event" not in term.screen().split("listen on")[-1]

    term.keys("use tracim", "Enter")  # a second connection; the first one stays open
    term.wait_for("using tracim")
    term.wait_for_prompt("tracim>")
    term.keys("use autotrainer", "Enter")  # back, with the console's --endpoint still
    term.wait_for("using autotrainer")
    term.keys("status", "Enter")
    term.wait_until(
        lambda screen: "│ events: ready │ heartbeat" in screen.split("using autotrainer")[-1], "the kept subscription"
    )
    assert "STALE" not in term.screen().split("using autotrainer")[-1]
    device.stop()


WIDTHS = [160, 80, 60]


def after(screen: str, marker: str) -> str:
    """What the screen shows below the last `marker`."""
    return screen.rsplit(marker, 1)[-1]


@pytest.mark.parametrize("cols", WIDTHS)
def test_help_errors_and_ctrl_c_leave_the_console_at_its_prompt(
    simulator: Proc, endpoints: Endpoints, terminal_env: dict[str, str], cols: int
) -> None:
    term = Terminal([*FIELDCTL, "console", "autotrainer", *endpoints.args], terminal_env, cols)
    try:
        term.wait_for_prompt("autotrainer>")
        term.keys("command --help", "Enter")  # the verb's console usage, and the console stays
        term.wait_for("--custom-command JSON")
        assert "PROFILE" not in term.screen() and "--trust-pickle" not in term.screen()
        term.wait_for_prompt("autotrainer>")
        term.enter("probe --help", "--crit S")
        term.wait_for_prompt("autotrainer>")

        term.keys("command set-application-mode --data {mode:1}", "Enter")  # a failing line stays
        term.wait_for("""received {mode:1} — quote it: --data '{"mode":1}'""")
        term.enter("command nope", "error: unknown command 'nope'")
        term.wait_for_prompt("autotrainer>")

        term.keys("command get-", "Tab")  # the menu says what each command is
        term.wait_for("ApiSystemStatus")
        term.keys("C-u")
        term.wait_for_prompt("autotrainer>")

        # Ctrl-C on a counted listen: the feed as it was found, off then on.
        for found in ("off", "on"):
            term.keys("listen --count 50 --filter channel=heartbeat", "Enter")
            term.wait_until(lambda screen: "← heartbeat" in after(screen, "--count 50"), "a heartbeat")
            term.keys("C-c")
            term.wait_for("cancelled")
            term.keys("status", "Enter")
            status = term.wait_until(lambda screen: "│ feed" in after(screen, "cancelled"), "the status line")
            assert f"autotrainer │ feed {found}" in after(status, "cancelled")
            term.keys("clear", "Enter")
            term.wait_until(lambda screen: "cancelled" not in screen, "a cleared screen")
            term.keys("listen", "Enter")  # on for the second round
        term.enter("exit", "EXITED 0")
    finally:
        term.close()


@pytest.mark.parametrize("cols", WIDTHS)
def test_simulate_then_talk_to_it_and_hold_named_connections(terminal_env: dict[str, str], cols: int) -> None:
    term = Terminal([*FIELDCTL, "console", "autotrainer"], terminal_env, cols)
    try:
        term.wait_for_prompt("autotrainer>")
        term.enter("simulate", "autotrainer talks to it")
        term.enter("listen --filter channel=event", "← event")
        term.enter("command get-status", "ok: get-status: success")
        screen = term.history()
        assert screen.count("→ command        get-status") == 1 and screen.count("← reply          get-status") == 1
        term.keys("listen --filter kind=emergencyStop", "Enter")  # the client shows it arriving, once
        term.keys('publish emergencyStop --data \'{"reason": "door", "reasonCode": 101, "activeAlarms": []}\'', "Enter")
        term.wait_for("ok: published emergencyStop")
        arrived = "← emergency      emergencyStop"  # events scroll on meanwhile: the whole history
        holds_within(lambda: arrived in term.history(), 30, "the event, through the client", every=0.1)
        assert term.history().count("emergencyStop  reason") == 1  # once: the client's, not the simulator's too

        term.keys("connect dev1", "Enter")
        term.wait_for_prompt("autotrainer@dev1>")
        term.keys("connect dev2 tracim", "Enter")
        term.wait_for_prompt("tracim@dev2>")
        term.keys("clear", "Enter")
        term.wait_until(lambda screen: "emergencyStop  reason" not in screen, "a cleared screen")
        term.keys("ls", "Enter")
        listed = term.wait_for("*  dev2")
        assert "autotrainer  autotrainer  events: ready" in listed and "feed on · simulator" in listed
        assert "dev1         autotrainer  not connected" in listed
        term.keys("use autotrainer", "Enter")
        term.wait_for_prompt("autotrainer>")
        term.keys("command get-status", "Enter")  # on the current connection: its simulator
        term.wait_until(lambda screen: "ok: get-status" in after(screen, "use autotrainer"), "the second command")
        term.enter("disconnect dev1", "disconnected dev1; using autotrainer")
        term.keys("disconnect dev2", "Enter")
        term.keys("ls", "Enter")
        term.wait_until(lambda screen: "*  autotrainer" in after(screen, "disconnect dev2"), "one connection left")
        assert "dev1" not in after(term.screen(), "disconnect dev2")
        term.keys("C-d")
        term.wait_for("EXITED 0")
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
        ("command", 2, "error: command NAME [--data JSON]"),
        ("listen --jsn", 2, "error: listen autotrainer: no such option --jsn (did you mean --json?)"),
        ("listen --master x", 2, "error: listen autotrainer: --master is an option of tracim, not of autotrainer"),
        (
            "listen --count 1 --timeout 0.5 --filter kind=nothing-sends-this",
            4,
            "error: received 0 of 1 messages within 0.5 s",
        ),
        (
            "command set-application-mode --data {mode:1}",
            2,
            "error: --data: not JSON (Expecting property name enclosed in double quotes at line 1 column 2): "
            """received {mode:1} — quote it: --data '{"mode":1}'""",
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


def test_a_verbs_help_in_a_script_is_its_usage_and_the_script_goes_on(simulator: Proc, endpoints: Endpoints) -> None:
    result = run_cli("console", "autotrainer", *endpoints.args, input="command --help\ncommand get-status\n")
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert result.stdout.startswith("command NAME") and "get-status: success" in result.stdout


def test_console_simulate_from_a_script_answers_commands_and_leaves_nothing(tmp_path: Path) -> None:
    env = cli_env(TMPDIR=str(tmp_path))
    result = run_cli("console", "autotrainer", "--simulate", input="command get-status\nls\n", env=env)
    assert result.returncode == 0, result.stderr
    assert "autotrainer talks to it" in result.stdout and "ok: get-status: success" in result.stdout
    assert "*  autotrainer  autotrainer  commands open  feed off · simulator" in result.stdout
    assert list(tmp_path.iterdir()) == []  # its private socket folder is gone


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
        ("listen --filter ", ["channel=", "direction=", "endpoint=", "kind="]),
        ("listen --filter direction=", ["direction=in", "direction=out"]),
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


def test_a_console_line_is_checked_against_the_profile_as_the_command_line_is(
    simulator: Proc, endpoints: Endpoints
) -> None:
    """The same checks as `fieldctl command` (a did-you-mean, undeclared fields unless --force),
    before anything is sent."""
    misspelt = run_cli("console", "autotrainer", *endpoints.args, input="command get-stauts\n")
    assert misspelt.returncode == 2
    assert misspelt.stderr == "error: unknown command 'get-stauts' (did you mean get-status?)\n"
    typo = "command set-application-mode --data '{\"mdoe\": 100}' --no-wait"
    refused = run_cli("console", "autotrainer", *endpoints.args, input=f"{typo}\n")
    assert refused.returncode == 2 and refused.stderr == (
        "error: --data: set-application-mode takes no field 'mdoe' (did you mean mode?); --force sends it anyway\n"
    )
    forced = run_cli("console", "autotrainer", *endpoints.args, input=f"{typo} --force\n")
    assert forced.returncode == 1 and "FAILED: set-application-mode: failed: invalid mode None" in forced.stdout
    assert simulator.stop() == 0
    requests = [m for m in lines_of("\n".join(simulator.output())) if m["channel"] == "command"]
    assert [m["payload"]["data"] for m in requests] == [{"mdoe": 100}]


def test_a_bad_value_on_a_line_is_told_as_on_the_command_line() -> None:
    result = run_cli("console", "autotrainer", input="probe --format xml\n")
    assert result.returncode == 2
    assert (
        result.stderr
        == "error: probe: Invalid value for '--format': expected one of text, json, prometheus, got 'xml'\n"
    )
