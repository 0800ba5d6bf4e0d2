"""`fieldctl proxy` and `simulate --fault` on the command line: what is refused before anything
binds or connects (exit 2, one line), in real subprocesses. The rules themselves are refused in
test_fault_options.py, the relays tested per system (tests/protocols/*/test_proxy.py)."""

from __future__ import annotations

from tests.helpers.processes import one_line, run_cli


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
