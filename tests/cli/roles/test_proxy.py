"""`fieldctl proxy` and `simulate --fault` on the command line: what is refused before anything
binds or connects (exit 2, one line), in real subprocesses. The rules themselves are refused in
test_fault_options.py, the relays tested per system (tests/protocols/*/test_proxy.py)."""

from __future__ import annotations

import pytest

from tests.helpers.autotrainer import Endpoints, start_simulator
from tests.helpers.processes import FIELDCTL, Proc, one_line, run_cli
from tests.helpers.terminals import last_frame


def test_a_proxy_that_would_relay_to_itself_is_refused() -> None:
    result = run_cli("proxy", "autotrainer", "--duration", "1")
    assert result.returncode == 2
    assert one_line(result.stderr) == (
        "fieldctl: proxy: events would relay tcp://127.0.0.1:5556 to itself: give the real one with "
        "--upstream HOST or --upstream-endpoint events=URL (and move the proxy's own with --host or "
        "--endpoint events=URL)"
    )


def test_an_upstream_endpoint_the_profile_lacks_is_refused_with_a_did_you_mean() -> None:
    result = run_cli("proxy", "autotrainer", "--upstream-endpoint", "event=tcp://127.0.0.1:9", "--duration", "1")
    assert result.returncode == 2
    assert "did you mean events?" in one_line(result.stderr)


def test_a_fleet_of_simulated_devices_takes_no_fault() -> None:
    result = run_cli("simulate", "autotrainer", "--devices", "2", "--fault", "drop rate=1", "--duration", "1")
    assert result.returncode == 2
    assert one_line(result.stderr) == "fieldctl: --fault serves one device; not with --devices"


def test_a_filter_no_message_can_pass_is_refused() -> None:
    result = run_cli(
        "proxy",
        "autotrainer",
        "--upstream",
        "127.0.0.1",
        "--endpoint",
        "events=tcp://127.0.0.1:9",
        "--endpoint",
        "commands=tcp://127.0.0.1:10",
        "--filter",
        "channel=hearbeat",
    )
    assert result.returncode == 2
    assert "did you mean heartbeat?" in one_line(result.stderr)


@pytest.mark.parametrize("cols", [160, 80, 60])
def test_the_proxys_screen_shows_both_directions_and_what_its_rules_did(terminals, cols: int) -> None:
    """The proxy on a terminal, between a simulator and a listener: the heartbeat panel fed by
    what it relays, rows of both directions, each frame a rule touched marked, and the faults
    counted; at 60 columns, where the table does not fit, the same as lines."""
    device, front = Endpoints(), Endpoints()
    simulator = start_simulator(device)
    term = terminals(
        [
            *FIELDCTL,
            "proxy",
            "autotrainer",
            *(
                f"--upstream-endpoint={name}={url}"
                for name, url in (("events", device.events), ("commands", device.commands))
            ),
            *front.args,
            "--fault",
            "duplicate channel=heartbeat",
        ],
        cols=cols,
    )
    listener = Proc([*FIELDCTL, "listen", "autotrainer", *front.args, "--json"])
    try:
        text = term.wait_for(lambda t: "duplicated" in t and "faults" in t)
        assert "heartbeat" in text and "event" in text
        if cols >= 80:
            assert "fieldctl-sim" in last_frame(text, "fieldctl proxy autotrainer"), "the panel's heartbeat"
        assert term.stop() == 0
    finally:
        listener.stop()
        simulator.stop()
