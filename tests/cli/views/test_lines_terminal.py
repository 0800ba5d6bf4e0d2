"""Lines in a real terminal: `listen --lines` against `simulate` keeps every message in the
scrollback (tmux's history, at 160, 80 and 60 columns), `--format` fills NDJSON fields and payload
paths, a terminal too small for the table gets lines, the table says how to get them, and the
README's example prints what it claims."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator

import pytest

from fieldctl.cli.views.live_view import LINES_HINT
from tests.helpers.autotrainer import Endpoints, start_simulator
from tests.helpers.processes import FIELDCTL, Proc, run_cli
from tests.helpers.terminals import Tmux, assert_nothing_obeyed, last_frame

#: A line of `--lines` for an event: time, direction, channel, kind.
EVENT_LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} ← event [A-Za-z]+\b", re.MULTILINE)


@pytest.fixture
def fast_simulator(endpoints: Endpoints) -> Iterator[Proc]:
    """Events every 10 ms: hundreds of lines in a few seconds."""
    proc = start_simulator(endpoints, "--set", "simulate.event_interval_s=0.01")
    yield proc
    proc.stop()


@pytest.mark.parametrize("cols", [160, 80, 60])
def test_lines_keep_every_message_in_the_scrollback(cols: int, endpoints: Endpoints, fast_simulator: Proc) -> None:
    session = Tmux(
        "env -i HOME=/tmp PATH=/usr/bin:/bin TERM=xterm-256color PS1='$ ' bash --norc --noprofile -i", 30, cols
    )
    try:
        fieldctl = " ".join(shlex.quote(part) for part in FIELDCTL)
        where = " ".join(shlex.quote(arg) for arg in endpoints.args)
        session.type(f"{fieldctl} listen autotrainer {where} --lines --filter channel=event --count 200; echo done-$?")
        session.wait_until(lambda s: re.search(r"^done-0", s, re.MULTILINE) is not None, "listen's exit", 60)
        history = session.run("capture-pane", "-p", "-J", "-S", "-", "-t", session.name)
    finally:
        session.close()
    assert len(EVENT_LINE.findall(history)) == 200, history[-3000:]  # 200 messages in a 30-line pane
    assert "· link ready" in history


def test_format_fills_fields_and_payload_paths_escaped(terminals, endpoints: Endpoints, fast_simulator: Proc) -> None:
    template = (
        "{ts:%H:%M:%S}|{direction}|{channel}|{kind}|kind {payload.kind}|trial {payload.context.trialId}|{payload.nope}"
    )
    term = terminals(
        [
            *FIELDCTL,
            "listen",
            "autotrainer",
            *endpoints.args,
            "--filter",
            "channel=event",
            "--count",
            "20",
            "--format",
            template,
        ],
        cols=80,
    )
    assert term.wait(60) == 0, term.text[-2000:]
    lines = re.findall(r"^\d\d:\d\d:\d\d\|in\|event\|[A-Za-z]+\|kind \d+\|trial (?:\d+|-)\|-\r?$", term.text, re.M)
    assert len(lines) == 20, term.text[-3000:]
    assert "events: ready" in term.text  # the link lines, for the person, apart from the template's
    assert_nothing_obeyed(term.raw)


def test_a_terminal_too_small_for_the_table_gets_lines(terminals, endpoints: Endpoints, fast_simulator: Proc) -> None:
    term = terminals(
        [*FIELDCTL, "listen", "autotrainer", *endpoints.args, "--filter", "channel=event", "--count", "5"],
        rows=8,
        cols=40,
    )
    assert term.wait(60) == 0, term.text[-2000:]
    assert "cannot hold the live table" in term.text
    assert len(EVENT_LINE.findall(term.text.replace("\r", ""))) == 5, term.text
    assert "╭" not in term.text


def test_the_table_says_how_to_get_lines(terminals, endpoints: Endpoints, fast_simulator: Proc) -> None:
    term = terminals([*FIELDCTL, "listen", "autotrainer", *endpoints.args, "--count", "60"], rows=20, cols=60)
    title = "fieldctl listen autotrainer"
    term.wait_for(lambda t: title in t and LINES_HINT in last_frame(t, title), 60)
    assert term.wait(60) == 0
    said = " ".join(term.text.split())  # wrapped at 60 columns
    assert re.search(r"\d+ earlier messages scrolled off the table; `listen autotrainer --lines` prints", said)


def test_readme_format_example_prints_what_it_claims(endpoints: Endpoints, fast_simulator: Proc) -> None:
    """README: `listen autotrainer --filter 'kind=trial*' --count 3 --format '{ts:%H:%M:%S} {kind} trial
    {payload.context.trialId}'` prints three lines, one per trial event."""
    template = "{ts:%H:%M:%S} {kind} trial {payload.context.trialId}"
    result = run_cli(
        "listen", "autotrainer", "--filter", "kind=trial*", "--count", "3", "--format", template, *endpoints.args
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and all(re.fullmatch(r"\d\d:\d\d:\d\d trial[A-Za-z]+ trial \d+", line) for line in lines)


def test_a_simulator_prints_what_it_sends_as_lines(terminals, endpoints: Endpoints) -> None:
    term = terminals(
        [*FIELDCTL, "simulate", "autotrainer", *endpoints.args, "--lines", "--duration", "3"], rows=20, cols=80
    )
    assert term.wait(60) == 0, term.text[-2000:]
    text = term.text.replace("\r", "")
    assert re.search(r"^\d\d:\d\d:\d\d\.\d{3} · link bound  events tcp://127\.0\.0\.1:\d+$", text, re.M), text
    assert re.search(r"^\d\d:\d\d:\d\d\.\d{3} → event [A-Za-z]+", text, re.M), text
    assert "╭" not in text  # no table
