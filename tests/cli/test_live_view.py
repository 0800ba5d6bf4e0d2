"""The live views as an operator meets them: a simulator's own panel, and the README's first
session (`simulate autotrainer &`, then `listen autotrainer`) typed into a real interactive shell
in tmux, with what the terminal shows read back."""

from __future__ import annotations

import re
import shlex
import subprocess
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from conftest import FIELDCTL, Endpoints
from terminal_helpers import last_frame


def test_simulator_panel_shows_the_heartbeats_it_sends(terminals, endpoints: Endpoints) -> None:
    term = terminals([*FIELDCTL, "simulate", "autotrainer", *endpoints.args, "--set", "heartbeat.interval_s=0.3",
                      "--set", "heartbeat.stale_after_s=0.5"])
    title = "fieldctl simulate autotrainer"
    text = term.wait_for(lambda t: title in t and "sent age" in last_frame(t, title))
    time.sleep(1.5)  # well past stale_after_s: still sending, so never stale
    frame = last_frame(term.text, title)
    assert "fieldctl-sim  0.12.0  sent age" in frame, frame
    assert "no heartbeat yet" not in frame and "STALE" not in frame
    assert "no heartbeat yet" not in last_frame(text, title)
    assert term.stop() == 0


class Tmux:
    """An interactive bash in a private tmux server (its own socket), driven by send-keys."""

    def __init__(self, folder: Path) -> None:
        self.socket = str(folder / "tmux.sock")
        self.run("new-session", "-d", "-x", "160", "-y", "50", "-s", "t",
                 "env -i HOME=/tmp PATH=/usr/bin:/bin TERM=xterm-256color PS1='$ ' bash --norc --noprofile -i")

    def run(self, *args: str) -> str:
        return subprocess.run(["tmux", "-S", self.socket, *args], capture_output=True, text=True, check=True,
                              timeout=10).stdout

    def type(self, line: str) -> None:
        self.run("send-keys", "-t", "t", line, "Enter")

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "t")

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.screen()
            if predicate(screen):
                return screen
            time.sleep(0.1)
        raise AssertionError(f"not on screen within {timeout} s:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True, timeout=10)


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    session = Tmux(tmp_path)
    yield session
    session.close()


def test_readme_first_session_background_simulator_leaves_the_table_to_listen(tmux: Tmux, endpoints: Endpoints) -> None:
    fieldctl = " ".join(shlex.quote(part) for part in FIELDCTL)
    where = " ".join(shlex.quote(arg) for arg in endpoints.args)
    tmux.type(f"{fieldctl} simulate autotrainer {where} --set heartbeat.interval_s=0.5 &")
    announced = tmux.wait_for(lambda s: "in the background" in s)
    assert f"events {endpoints.events}" in announced and f"commands {endpoints.commands}" in announced
    assert "stop it with: kill " in announced
    tmux.type(f"{fieldctl} listen autotrainer {where}")
    tmux.wait_for(lambda s: "fieldctl listen autotrainer" in s and "fieldctl-sim  0.12.0" in s
                  and re.search(r"received [1-9]", s) is not None)
    time.sleep(2)  # several refreshes of both processes
    screen = tmux.screen()
    assert screen.count("╭") == 1, screen  # one panel: listen's
    assert "─ fieldctl simulate" not in screen and "sent age" not in screen
    assert "fieldctl-sim  0.12.0  age" in screen
    tmux.run("send-keys", "-t", "t", "C-c")
    tmux.type("kill %1; wait; echo simulator-gone")
    tmux.wait_for(lambda s: "simulator-gone" in s.replace("echo simulator-gone", ""))
