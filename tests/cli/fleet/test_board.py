"""The fleet board as a person drives it: `listen --fleet` over `simulate autotrainer --devices N`
in a tmux pane at 160, 80 and 60 columns, from an interactive shell. Names and status stay whole,
`/` filters with globs, Enter opens a target's feed and Esc comes back, keys are never echoed and
the shell gets its terminal back; a simulator killed turns its rows red with the reason."""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from fieldctl.profiles.targets import Target
from tests.helpers.autotrainer import Endpoints, start_simulator
from tests.helpers.fleets import RIG_SETS, SimulatedFleet, start_simulated_fleet
from tests.helpers.processes import FIELDCTL, cli_env
from tests.helpers.repository import ROOT
from tests.helpers.terminals import Tmux

WIDTHS = (160, 80, 60)
ROWS = 40
#: A target's row: its whole name, then its whole status.
ROW = re.compile(
    r"^(?P<name>sim-\d{3}|rig-live)\s+(?P<status>ready|connected|connecting|retrying|disconnected|down|stale)\s"
)
RED = re.compile(r"\x1b\[[0-9;]*\b31[;m]")


def target_rows(screen: str) -> list[re.Match[str]]:
    return [m for line in screen.splitlines() if (m := ROW.match(line))]


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatedFleet]:
    """160 devices: enough names for `sim-15*` to pick ten of them."""
    fleet = start_simulated_fleet(tmp_path_factory.mktemp("board"), 160)
    yield fleet
    fleet.proc.stop()


def shell(cols: int) -> Tmux:
    """An operator's interactive shell, `cols` wide."""
    return Tmux(
        "env -i HOME=/tmp PATH=/usr/bin:/bin TERM=xterm-256color PS1='$ ' bash --norc --noprofile -i",
        rows=ROWS,
        cols=cols,
    )


def start_board(tmux: Tmux, path: Path, *extra: str) -> None:
    fieldctl = " ".join(shlex.quote(part) for part in FIELDCTL)
    tmux.type(f"clear; {fieldctl} listen --fleet {shlex.quote(str(path))} {' '.join(extra)}; echo exit=$?")


@contextlib.contextmanager
def every_target_up(many: SimulatedFleet, cols: int, *extra: str) -> Iterator[tuple[Tmux, str]]:
    """The board of `many` in a shell `cols` wide, once every target is up: the shell and that screen."""
    tmux = shell(cols)
    try:
        start_board(tmux, many.path, *extra)
        yield tmux, tmux.wait_until(lambda s: "160 targets  160 up" in s, "every target up", timeout=60)
    finally:
        tmux.close()


def quit_board(tmux: Tmux, key: str = "q", code: int = 0) -> None:
    """`q` (or Ctrl-C) ends it with 0, and leaves the terminal as it found it (echo, line editing)."""
    if key:
        tmux.keys(key)
    tmux.wait_until(lambda s: f"exit={code}" in s, f"exit={code} after {key or 'the end'}")
    tmux.type("stty -a | grep -qE '(^| )-(echo|icanon)( |;|$)' && echo tty-quiet || echo tty-sane")
    screen = tmux.wait_until(lambda s: re.search("^tty-(sane|quiet)$", s, re.MULTILINE) is not None, "stty")
    assert re.search("^tty-sane$", screen, re.MULTILINE), screen


def quiet(tmux: Tmux) -> bool:
    """The pane's terminal has echo and line editing off, as the board sets it."""
    pane = tmux.run("display-message", "-p", "-t", tmux.name, "#{pane_tty}").strip()
    modes = subprocess.run(["stty", "-a", "-F", pane], capture_output=True, text=True, check=True).stdout.split()
    return "-echo" in modes and "-icanon" in modes


@pytest.mark.parametrize("cols", WIDTHS)
def test_filter_open_a_target_and_back_without_echo(many: SimulatedFleet, cols: int) -> None:
    with every_target_up(many, cols) as (tmux, first):
        rows = target_rows(first)
        assert len(rows) >= 10, first
        assert [m["name"] for m in rows[:3]] == ["sim-001", "sim-002", "sim-003"], first
        assert not re.search(r"^sim-\d*…", first, re.MULTILINE), first  # no name cut
        assert re.search(r"q quit", first), first  # the keys, in the footer
        assert quiet(tmux), "the board's terminal echoes what is typed"

        tmux.keys("/sim-15*")
        tmux.wait_until(lambda s: "/sim-15*" in s, "the filter being typed")
        tmux.keys("Enter")
        screen = tmux.wait_until(
            lambda s: "filter sim-15*: 10 of 160" in s and "/sim-15*" not in s, "the filter applied"
        )
        names = [m["name"] for m in target_rows(screen)]
        assert names == [f"sim-15{n}" for n in range(10)], screen

        tmux.keys("x", "y", "z", "Up", "Down", "PPage", "NPage", "Home", "End", "Left", "Right")
        tmux.keys("Home", "Down")
        tmux.keys("Enter")
        screen = tmux.wait_until(lambda s: "› sim-151" in s, "sim-151's own feed")
        assert "xyz" not in screen and "^[" not in screen and "[A" not in screen, screen
        tmux.wait_until(lambda s: re.search(r"←\s+(event|heartbeat)", s) is not None, "sim-151's messages")
        tmux.keys("Escape")
        screen = tmux.wait_until(lambda s: "›" not in s and "filter sim-15*" in s, "the board again")
        assert [m["name"] for m in target_rows(screen)] == [f"sim-15{n}" for n in range(10)], screen
        tmux.keys("Escape")  # clears the filter
        tmux.wait_until(lambda s: "filter sim" not in s and len(target_rows(s)) > 10, "every target again")

        tmux.keys("?")
        shown = tmux.wait_until(lambda s: "any key closes this help" in s, "the help")
        assert "…" not in shown and "sort: status, name, heard, msg/s, errors" in shown, shown  # whole at 60
        tmux.keys("Escape")
        tmux.wait_until(lambda s: "any key closes this help" not in s and "160 targets" in s, "help closed")
        quit_board(tmux)


@pytest.mark.parametrize("cols", WIDTHS)
def test_a_killed_simulator_turns_its_rows_red_with_the_reason_problems_first(tmp_path: Path, cols: int) -> None:
    live = Endpoints()
    rig = start_simulator(live)
    extra = Target(
        "rig-live", "autotrainer", endpoints={"events": live.events, "commands": live.commands}, sets=dict(RIG_SETS)
    )
    fleet = start_simulated_fleet(tmp_path, 20, extra)
    tmux = shell(cols)
    try:
        start_board(tmux, fleet.path)
        screen = tmux.wait_until(lambda s: "21 targets  21 up" in s, "every target up", timeout=60)
        assert target_rows(screen)[0]["name"] == "rig-live"  # all up: in name order
        fleet.proc.stop(signal.SIGKILL)

        def all_down(screen: str) -> bool:
            rows = target_rows(screen)
            return "21 targets  1 up  20 down" in screen and len(rows) == 21 and rows[-1]["name"] == "rig-live"

        screen = tmux.wait_until(all_down, "the killed devices down", timeout=15)
        rows = target_rows(screen)
        assert all(m["status"] in ("retrying", "disconnected") for m in rows[:20]), screen
        assert all("✗ disconnected" in m.string for m in rows[:20]), screen
        errors = re.search(r"errors (\d+)", screen)
        assert errors is not None and int(errors[1]) >= 20, screen
        # The killed ones in red: each line holds a red escape; the live one's does not.
        colored = tmux.run("capture-pane", "-p", "-e", "-t", tmux.name).splitlines()
        lines = {m["name"]: line for line in colored if (m := ROW.match(re.sub(r"\x1b\[[0-9;]*m", "", line)))}
        assert all(RED.search(lines[f"sim-{n:03d}"]) for n in range(1, 21)), lines
        assert not RED.search(lines["rig-live"]), lines["rig-live"]
        quit_board(tmux, "C-c")
    finally:
        tmux.close()
        fleet.proc.stop()
        rig.stop()


def test_a_board_that_times_out_gives_the_terminal_back(many: SimulatedFleet) -> None:
    tmux = shell(60)
    try:
        start_board(tmux, many.path, "--timeout", "4")
        tmux.wait_until(lambda s: "160 targets" in s, "the board", timeout=60)
        quit_board(tmux, "", 4)
    finally:
        tmux.close()


def test_without_a_terminal_on_stdin_the_board_still_draws(many: SimulatedFleet) -> None:
    with every_target_up(many, 80, "< /dev/null") as (tmux, _):
        tmux.keys("C-c")
        tmux.wait_until(lambda s: "exit=0" in s, "exit=0 after Ctrl-C")


README_GLOB = "fieldctl listen --fleet fleet.toml --filter 'target=sim-15*' --json --count 5"


def test_readme_glob_example_follows_only_the_targets_it_matches(many: SimulatedFleet) -> None:
    assert README_GLOB in (ROOT / "README.md").read_text()
    command = README_GLOB.replace("fieldctl", " ".join(shlex.quote(part) for part in FIELDCTL), 1)
    result = subprocess.run(
        ["bash", "-c", command],
        check=False,
        cwd=many.path.parent,
        capture_output=True,
        text=True,
        timeout=60,
        env=cli_env(),
    )
    assert result.returncode == 0, result.stderr
    got = [json.loads(line) for line in result.stdout.splitlines()]
    assert {m["target"] for m in got} <= {f"sim-15{n}" for n in range(10)}
    assert sum(m["channel"] != "link" for m in got) == 5


def feed_lines(screen: str) -> list[str]:
    return [line for line in screen.splitlines() if re.match(r"^\d\d:\d\d:\d\d\.\d{3}\s", line)]


def test_every_target_is_a_page_away_sorts_and_a_paused_feed_holds_still(many: SimulatedFleet) -> None:
    with every_target_up(many, 80) as (tmux, _):
        tmux.keys("End")
        screen = tmux.wait_until(lambda s: target_rows(s)[-1:] and target_rows(s)[-1]["name"] == "sim-160", "the last")
        assert "more" not in screen
        tmux.keys("Home", "PageDown")
        screen = tmux.wait_until(lambda s: target_rows(s)[0]["name"] != "sim-001", "the next page")
        page = [m["name"] for m in target_rows(screen)]
        tmux.keys("PageDown")
        tmux.wait_until(lambda s: [m["name"] for m in target_rows(s)] != page, "another page")
        tmux.keys("n")  # sorted by name, again: reversed
        tmux.wait_until(lambda s: "sort:name" in s, "the sort in the footer")
        tmux.keys("n", "Home")
        tmux.wait_until(lambda s: "sort:name↑" in s and target_rows(s)[0]["name"] == "sim-160", "reversed")
        tmux.keys("Enter")
        tmux.wait_until(lambda s: "› sim-160" in s and len(feed_lines(s)) >= 3, "sim-160's feed")
        tmux.keys("p")
        held = tmux.wait_until(lambda s: "PAUSED" in s, "paused")
        tmux.wait_until(lambda s: "heartbeat 0" not in held or s != held, "a frame after pausing", timeout=5)
        assert feed_lines(tmux.screen()) == feed_lines(held)  # new messages come, the feed holds still
        tmux.keys("p")
        tmux.wait_until(lambda s: "PAUSED" not in s and feed_lines(s) != feed_lines(held), "following again")
        quit_board(tmux)


def test_ctrl_z_and_fg_give_the_board_its_keys_back(many: SimulatedFleet) -> None:
    with every_target_up(many, 80) as (tmux, _):
        tmux.keys("C-z")
        tmux.wait_until(lambda s: "Stopped" in s, "the board stopped")
        tmux.type("fg")
        tmux.wait_until(lambda s: "q quit" in s.splitlines()[-1] if s.strip() else False, "the board again")
        tmux.keys("/sim-15*", "Enter")
        screen = tmux.wait_until(lambda s: "filter sim-15*: 10 of 160" in s, "keys read again")
        assert "/sim-15*" not in screen, screen  # not echoed
        tmux.keys("q")
        tmux.wait_until(lambda s: s.rstrip().endswith("$"), "the prompt")  # a resumed job ends its command line
        tmux.type("echo exit=$?")
        quit_board(tmux, "")
