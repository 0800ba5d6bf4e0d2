"""The live views as an operator meets them: a simulator's own panel, and the README's first
session (`simulate autotrainer &`, then `listen autotrainer`) typed into a real interactive shell
in tmux, with what the terminal shows read back."""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Iterator

import pytest

from tests.helpers.autotrainer import Endpoints
from tests.helpers.processes import FIELDCTL
from tests.helpers.terminals import Tmux, last_frame


def test_simulator_panel_shows_the_heartbeats_it_sends(terminals, endpoints: Endpoints) -> None:
    term = terminals(
        [
            *FIELDCTL,
            "simulate",
            "autotrainer",
            *endpoints.args,
            "--set",
            "heartbeat.interval_s=0.3",
            "--set",
            "heartbeat.stale_after_s=0.5",
        ]
    )
    title = "fieldctl simulate autotrainer"
    text = term.wait_for(lambda t: title in t and "sent age" in last_frame(t, title))
    time.sleep(1.5)  # well past stale_after_s: still sending, so never stale
    frame = last_frame(term.text, title)
    assert "fieldctl-sim  0.12.0  sent age" in frame, frame
    assert "no heartbeat yet" not in frame and "STALE" not in frame
    assert "no heartbeat yet" not in last_frame(text, title)
    assert term.stop() == 0


@pytest.fixture
def tmux() -> Iterator[Tmux]:
    """An interactive bash, as an operator's shell."""
    session = Tmux("env -i HOME=/tmp PATH=/usr/bin:/bin TERM=xterm-256color PS1='$ ' bash --norc --noprofile -i")
    yield session
    session.close()


def test_readme_first_session_background_simulator_leaves_the_table_to_listen(tmux: Tmux, endpoints: Endpoints) -> None:
    fieldctl = " ".join(shlex.quote(part) for part in FIELDCTL)
    where = " ".join(shlex.quote(arg) for arg in endpoints.args)
    tmux.type(f"{fieldctl} simulate autotrainer {where} --set heartbeat.interval_s=0.5 &")
    announced = tmux.wait_until(lambda s: "in the background" in s)
    assert f"events {endpoints.events}" in announced and f"commands {endpoints.commands}" in announced
    assert "stop it with: kill " in announced
    tmux.type(f"{fieldctl} listen autotrainer {where}")
    tmux.wait_until(
        lambda s: (
            "fieldctl listen autotrainer" in s
            and "fieldctl-sim  0.12.0" in s
            and re.search(r"received [1-9]", s) is not None
        )
    )
    time.sleep(2)  # several refreshes of both processes
    screen = tmux.screen()
    assert screen.count("╭") == 1, screen  # one panel: listen's
    assert "─ fieldctl simulate" not in screen and "sent age" not in screen
    assert "fieldctl-sim  0.12.0  age" in screen
    tmux.keys("C-c")
    tmux.type("kill %1; wait; echo simulator-gone")
    tmux.wait_until(lambda s: "simulator-gone" in s.replace("echo simulator-gone", ""))
