"""What a command shows and how rows look come from the driver: CommandOutcome.result (scrubbed)
and BaseDriver.styles reach the command render, the live view and the control path; the live view
summarizes only the rows it draws."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
from rich.console import Console
from rich.text import Text

from fieldctl.cli.views.live_view import HELD_BYTES, LiveView
from fieldctl.cli.views.render import LOOK_STYLES, print_outcome
from fieldctl.cli.views.stats import Stats
from fieldctl.profiles import load_profile
from fieldctl.protocols.core import redact
from fieldctl.protocols.core.message import Message
from fieldctl.protocols.runtime.control import ControlServer, request
from fieldctl.protocols.runtime.registry import driver_class, protocol_names
from fieldctl.protocols.sdk.contract import LOOKS, BaseDriver, CommandOutcome
from tests.helpers.ports import free_port
from tests.helpers.processes import FIELDCTL, Proc

BOLD_RED = "\x1b[1;31m"  # how "alarm" renders


class Styled(BaseDriver):
    """A driver that gives its own channel an alarm look."""

    styles: ClassVar[dict[str, str]] = {**BaseDriver.styles, "siren": "alarm"}


def _console(height: int = 40) -> Console:
    return Console(force_terminal=True, color_system="standard", width=160, height=height)


def _msg(channel: str, n: int = 0, raw: bytes = b"", **kw: Any) -> Message:
    return Message("test", "ep", "in", channel, f"k{n}", {"n": n}, n, raw=(raw,) if raw else (), **kw)


@pytest.mark.parametrize("protocol", protocol_names())
def test_every_driver_gives_its_channels_neutral_looks_the_cli_knows(protocol: str) -> None:
    styles = driver_class(protocol).styles
    assert set(styles.values()) <= LOOKS, f"{protocol}: {styles}"
    assert set(LOOK_STYLES) == LOOKS


def test_the_command_render_shows_the_drivers_result_scrubbed_and_styles() -> None:
    redact.remember("hunter2-long-secret")
    outcome = CommandOutcome(
        True,
        "done",
        [_msg("siren", 1), _msg("other", 2)],
        rtt_s=0.01,
        result={"rows": [1, 2], "token": "short", "note": "was hunter2-long-secret"},
    )
    console = _console()
    with console.capture() as captured:
        print_outcome(outcome, lambda m: "detail", Styled.styles, console)
    text = captured.get()
    siren_line = next(line for line in text.splitlines() if "siren" in line)
    assert BOLD_RED in siren_line
    other_line = next(line for line in text.splitlines() if "other" in line)
    assert BOLD_RED not in other_line
    assert '"rows"' in text and "short" not in text and "hunter2-long-secret" not in text
    assert text.count(redact.MASK) == 2


def test_the_command_render_shows_no_payload_the_driver_did_not_choose() -> None:
    outcome = CommandOutcome(True, "done", [Message("test", "ep", "in", "reply", "r", {"data": {"not-chosen": 1}})])
    console = _console()
    with console.capture() as captured:
        print_outcome(outcome, lambda m: f"detail of {m.kind}", BaseDriver.styles, console)
    shown = [line.split() for line in Text.from_ansi(captured.get()).plain.splitlines()]
    assert shown == [["channel", "kind", "id", "detail"], ["←", "reply", "r", "detail", "of", "r"], ["OK", "done"]]
    assert "not-chosen" not in captured.get(), "the payload's data is the driver's to pick, not the CLI's"


def test_the_live_view_styles_rows_by_driver_and_summarizes_only_drawn_rows() -> None:
    calls: list[int] = []

    def summarize(msg: Message) -> str:
        calls.append(msg.payload["n"])
        return f"summary {msg.payload['n']}"

    console = _console(height=30)
    view = LiveView(load_profile("autotrainer"), Stats(), summarize, "listen", console, styles=Styled.styles)
    for n in range(1000):
        view.add(_msg("siren" if n == 999 else "plain", n))
    with console.capture() as captured:
        console.print(view)
    text = captured.get()
    assert 999 in calls and len(calls) < 30, f"summarized {len(calls)} rows for a 30-line terminal"
    assert sorted(calls) == list(range(1000 - len(calls), 1000)), "the newest rows, the ones drawn"
    assert BOLD_RED in next(line for line in text.splitlines() if "summary 999" in line)
    with console.capture():
        console.print(view)
    assert len(calls) == len(set(calls)), "a drawn row's summary is computed once"


def test_the_live_view_holds_bounded_bytes_and_shows_the_same() -> None:
    console = _console(height=30)
    profile = load_profile("autotrainer")
    frame = b"x" * (4 << 20)
    view = LiveView(profile, Stats(), lambda m: f"summary {m.payload['n']}", "listen", console)
    for n in range(40):
        view.add(_msg("plain", n, raw=frame))
        assert view.held <= HELD_BYTES
    with console.capture() as captured:
        console.print(view)
    text = captured.get()
    for n in range(25, 40):
        assert f"summary {n}" in text


def test_the_control_path_carries_the_result_scrubbed_by_the_simulator(tmp_path: Path) -> None:
    path = str(tmp_path / "control.sock")

    async def handler(verb: str, msg: Message, emit: Any) -> CommandOutcome:
        redact.remember("simulator-only-secret")  # known to this side only, in a real simulator
        return CommandOutcome(
            True, "answered", result={"rows": [msg.payload], "password": "pw", "echo": "simulator-only-secret"}
        )

    async def main() -> CommandOutcome:
        bound = asyncio.Event()
        server = ControlServer(path, handler, lambda msg: bound.set(), "test")
        task = asyncio.create_task(server.run())
        try:
            await asyncio.wait_for(bound.wait(), 10)
            return await request(
                path, "command", Message("test", "control", "out", "command", "q", {"a": 1}), lambda msg: None, 10
            )
        finally:
            task.cancel()

    outcome = asyncio.run(main())
    assert outcome.result == {"rows": [{"a": 1}], "password": redact.MASK, "echo": redact.MASK}


def test_the_example_plugins_command_result_reaches_the_terminal(terminals) -> None:
    hub = f"hub=tcp://127.0.0.1:{free_port()}"
    sim = Proc([*FIELDCTL, "simulate", "linejson", "--json", "--endpoint", hub])
    try:
        sim.wait_json(lambda m: m["channel"] == "link" and m["kind"] == "bound")
        term = terminals(
            [*FIELDCTL, "command", "linejson", "echo", "--data", json.dumps({"text": "from-hub"}), "--endpoint", hub]
        )
        assert term.wait() == 0, term.text
    finally:
        sim.stop()
    text = term.text
    assert '"text": "from-hub"' in text and "OK echo: ok" in text, text
    reply_row = next(line for line in term.raw.decode("utf-8", "replace").splitlines() if "reply" in line)
    assert "\x1b[1m←\x1b[0m" in reply_row, "a reply's arrow is coloured by its direction (in: bold)"
    assert "\x1b[36m" not in reply_row, "no row of routine traffic is coloured whole"
