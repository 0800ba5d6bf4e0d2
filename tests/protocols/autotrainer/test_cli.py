"""The subcommands against `simulate autotrainer`, as real subprocesses on loopback ports."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq

from tests.helpers.autotrainer import Endpoints
from tests.helpers.processes import FIELDCTL, Proc, run_cli


@pytest.fixture
def silent_device(endpoints: Endpoints) -> Iterator[Endpoints]:
    """A device that accepts connections and never says anything: what timeouts are for."""
    ctx = zmq.Context()
    sockets = [ctx.socket(zmq.PUB), ctx.socket(zmq.ROUTER)]
    sockets[0].bind(endpoints.events)
    sockets[1].bind(endpoints.commands)
    yield endpoints
    for sock in sockets:
        sock.close(linger=0)
    ctx.term()


def messages(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def data_lines(stdout: str) -> list[dict]:
    return [m for m in messages(stdout) if m["channel"] != "link"]


def assert_one_line_error(stderr: str) -> None:
    assert "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1, stderr


# --- listen -------------------------------------------------------------------------------


def test_listen_counts_heartbeats_and_events(simulator: Proc, endpoints: Endpoints) -> None:
    result = run_cli("listen", "autotrainer", "--json", "--count", "6", "--timeout", "15", *endpoints.args)
    assert result.returncode == 0, result.stderr
    lines = data_lines(result.stdout)
    assert len(lines) == 6
    assert {"heartbeat", "event"} <= {m["channel"] for m in lines}
    beat = next(m for m in lines if m["channel"] == "heartbeat")
    assert beat["payload"]["identifier"] == "fieldctl-sim" and beat["direction"] == "in" and len(beat["raw"]) == 2
    assert any(m["channel"] == "link" and m["kind"] == "ready" for m in messages(result.stdout))


def test_listen_filters_or_within_a_key_and_across_keys(simulator: Proc, endpoints: Endpoints) -> None:
    result = run_cli(
        "listen",
        "autotrainer",
        "--json",
        "--count",
        "3",
        "--timeout",
        "20",
        *endpoints.args,
        "--filter",
        "channel=event",
        "--filter",
        "kind=trialStarted",
        "--filter",
        "kind=trialEnded",
    )
    assert result.returncode == 0, result.stderr
    assert {m["kind"] for m in data_lines(result.stdout)} <= {"trialStarted", "trialEnded"}


def test_listen_timeout_and_idle_exit_4(silent_device: Endpoints) -> None:
    endpoints = silent_device
    started = time.monotonic()
    result = run_cli("listen", "autotrainer", "--json", "--count", "1", "--timeout", "1", *endpoints.args)
    assert result.returncode == 4 and "received 0 of 1 messages within 1 s" in result.stderr
    assert_one_line_error(result.stderr)
    idle = run_cli("listen", "autotrainer", "--json", "--idle", "0.5", *endpoints.args)
    assert idle.returncode == 4 and "no message for 0.5 s" in idle.stderr
    assert time.monotonic() - started < 10


@pytest.mark.parametrize(
    "argv",
    [
        ["listen", "autotrainer", "--json"],
        ["listen", "autotrainer"],
        ["command", "autotrainer", "get-status"],
        ["command", "autotrainer", "get-status", "--no-wait"],
    ],
)
def test_a_refused_connection_exits_3_promptly(argv: list[str], endpoints: Endpoints) -> None:
    """ZeroMQ connects asynchronously and retries for ever; nothing listening is still exit 3: at
    once for a command, after a grace of LISTEN_REFUSED_AFTER_S (5 s) for listen."""
    started = time.monotonic()
    result = run_cli(*argv, "--timeout", "30", *endpoints.args)
    assert result.returncode == 3, result.stderr
    assert "connection refused" in result.stderr and "tcp://127.0.0.1:" in result.stderr
    assert_one_line_error(result.stderr)
    assert time.monotonic() - started < (5 if argv[0] == "listen" else 0) + 8


def test_a_refused_command_port_alone_exits_3(simulator: Proc, endpoints: Endpoints) -> None:
    result = run_cli(
        "command",
        "autotrainer",
        "get-status",
        "--endpoint",
        f"events={endpoints.events}",
        "--endpoint",
        "commands=tcp://127.0.0.1:1",
        "--timeout",
        "20",
    )
    assert result.returncode == 3 and "cannot connect commands to tcp://127.0.0.1:1" in result.stderr, result.stderr
    assert_one_line_error(result.stderr)


def test_probe_is_critical_at_once_when_refused(endpoints: Endpoints) -> None:
    started = time.monotonic()
    result = run_cli("probe", "autotrainer", "--crit", "20", *endpoints.args)
    assert (
        result.returncode == 2
        and result.stdout.startswith("AUTOTRAINER CRITICAL")
        and "connection refused" in result.stdout
    )
    assert time.monotonic() - started < 8


def test_listen_duration_exits_0(silent_device: Endpoints) -> None:
    endpoints = silent_device
    assert run_cli("listen", "autotrainer", "--json", "--duration", "0.5", *endpoints.args).returncode == 0


def test_record_then_replay_through_simulate_and_publish(simulator: Proc, endpoints: Endpoints, tmp_path: Path) -> None:
    record = tmp_path / "rec.ndjson"
    result = run_cli(
        "listen",
        "autotrainer",
        "--json",
        "--count",
        "8",
        "--timeout",
        "20",
        "--filter",
        "channel=event",
        "--record",
        str(record),
        *endpoints.args,
    )
    assert result.returncode == 0, result.stderr
    recorded = [m for m in messages(record.read_text()) if m["channel"] != "link"]
    assert len(recorded) == 8
    simulator.stop()

    # What listen wrote, publish reads back: the same bodies arrive again, byte for byte.
    replay = Endpoints()
    listener = Proc(
        [
            *FIELDCTL,
            "listen",
            "autotrainer",
            "--json",
            "--count",
            "8",
            "--timeout",
            "20",
            "--filter",
            "channel=event",
            *replay.args,
        ]
    )
    published = run_cli("publish", "autotrainer", "--from", str(record), "--wait", "10", "--json", *replay.args)
    assert published.returncode == 0, published.stderr
    assert listener.wait(20) == 0
    again = [json.loads(line) for line in listener.output()]
    got = [m["raw"] for m in again if m["channel"] == "event"]
    assert got == [m["raw"] for m in recorded]


def test_publish_kind_with_data_reaches_listen(endpoints: Endpoints) -> None:
    listener = Proc([*FIELDCTL, "listen", "autotrainer", "--json", "--count", "1", "--timeout", "20", *endpoints.args])
    result = run_cli(
        "publish", "autotrainer", "trialStarted", "--data", '{"sessionId": "s-1", "trialId": 7}', *endpoints.args
    )
    assert result.returncode == 0, result.stderr
    msg = listener.wait_json(lambda m: m["channel"] == "event")
    assert msg["kind"] == "trialStarted" and msg["payload"]["context"] == {"sessionId": "s-1", "trialId": 7}
    assert listener.wait() == 0


def test_publish_without_subscriber_times_out(endpoints: Endpoints) -> None:
    result = run_cli("publish", "autotrainer", "tunnelEnter", "--wait", "0.5", *endpoints.args)
    assert result.returncode == 4 and "no subscriber" in result.stderr
    assert_one_line_error(result.stderr)


def test_scenario_file_drives_the_simulator(endpoints: Endpoints, tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.ndjson"
    scenario.write_text(
        '{"channel": "event", "kind": "tunnelEnter", "ts": 0}\n'
        '{"channel": "event", "kind": "emergencyStop", "ts": 0.1,'
        ' "payload": {"reason": "door", "reasonCode": 101, "activeAlarms": [101]}}\n'
        '{"channel": "event", "kind": "tunnelExit", "ts": 0.2}\n'
    )
    listener = Proc(
        [
            *FIELDCTL,
            "listen",
            "autotrainer",
            "--json",
            "--count",
            "3",
            "--timeout",
            "20",
            "--filter",
            "channel=event",
            "--filter",
            "channel=emergency",
            *endpoints.args,
        ]
    )
    sim = Proc([*FIELDCTL, "simulate", "autotrainer", "--json", "--scenario", str(scenario), *endpoints.args])
    try:
        assert listener.wait(20) == 0
        kinds = [m["kind"] for m in data_lines("\n".join(listener.output()))]
        # The device sends the emergency twice (EMERGENCY, EVENT); listen shows it once.
        assert kinds == ["tunnelEnter", "emergencyStop", "tunnelExit"]
    finally:
        sim.stop()


# --- command ------------------------------------------------------------------------------


def test_command_sync_async_and_failure(simulator: Proc, endpoints: Endpoints) -> None:
    sync = run_cli("command", "autotrainer", "get-configuration", "--json", *endpoints.args)
    assert sync.returncode == 0, sync.stderr
    request, reply = messages(sync.stdout)
    assert (request["channel"], request["direction"], reply["channel"]) == ("command", "out", "reply")
    assert reply["id"] == request["id"] and reply["payload"]["data"]["deviceId"] == "sim-0001"

    pending = run_cli(
        "command", "autotrainer", "set-application-mode", "--data", '{"mode": 100}', "--json", *endpoints.args
    )
    assert pending.returncode == 0, pending.stderr
    _, reply, result = messages(pending.stdout)
    assert reply["payload"]["result"] == 201 and result["channel"] == "command_result"
    assert result["id"] == reply["id"] and result["payload"]["data"] == {"mode": 100}

    no_wait = run_cli(
        "command",
        "autotrainer",
        "set-application-mode",
        "--data",
        '{"mode": 0}',
        "--no-wait",
        "--json",
        *endpoints.args,
    )
    assert no_wait.returncode == 0 and len(messages(no_wait.stdout)) == 2

    failed = run_cli("command", "autotrainer", "emergency-resume", "--json", *endpoints.args)
    assert failed.returncode == 1 and "not in emergency stop" in failed.stderr
    assert_one_line_error(failed.stderr)


def test_command_data_from_file_and_stdin(simulator: Proc, endpoints: Endpoints, tmp_path: Path) -> None:
    payload = tmp_path / "mode.json"
    payload.write_text('{"mode": 300}')
    from_file = run_cli(
        "command", "autotrainer", "set-training-mode", "--data", f"@{payload}", "--json", *endpoints.args
    )
    assert messages(from_file.stdout)[1]["payload"]["data"] == {"mode": 300}
    from_stdin = run_cli(
        "command",
        "autotrainer",
        "set-live-analysis-enabled",
        "--data",
        "@-",
        "--json",
        *endpoints.args,
        input='{"enabled": true}',
    )
    assert messages(from_stdin.stdout)[1]["payload"]["data"] == {"enabled": True}


def test_command_warns_before_sending_values_the_device_mangles(simulator: Proc, endpoints: Endpoints) -> None:
    result = run_cli(
        "command",
        "autotrainer",
        "user-defined",
        "--custom-command",
        "7",
        "--data",
        '{"animal": "Mouse A"}',
        "--json",
        *endpoints.args,
    )
    assert (
        "warning: the device lower-cases and strips whitespace in request strings:"
        ' data.animal "Mouse A" will arrive as "_mouse_a"' in result.stderr
    )
    request = messages(result.stdout)[0]
    assert request["payload"] == {
        "command": 99999,
        "customCommand": 7,
        "nonce": request["id"],
        "data": {"animal": "Mouse A"},
    }


def test_command_timeout_is_bounded(silent_device: Endpoints) -> None:
    endpoints = silent_device
    started = time.monotonic()
    result = run_cli("command", "autotrainer", "get-status", "--timeout", "1", *endpoints.args)
    assert result.returncode == 4 and "no reply from" in result.stderr
    assert_one_line_error(result.stderr)
    assert time.monotonic() - started < 8


@pytest.mark.parametrize(
    "args, message",
    [
        (["--data", "{bad"], "--data: not JSON"),
        (["--data", "@/nonexistent/file.json"], "--data @/nonexistent/file.json: cannot read"),
        (["--custom-command"], "Option '--custom-command' requires an argument"),  # as for any option: click parses it
        (["--bogus", "1"], "command autotrainer: no such option --bogus (protocol options: --custom-command)"),
    ],
)
def test_bad_data_exits_2_with_one_line(args: list[str], message: str) -> None:
    result = run_cli("command", "autotrainer", "get-status", *args)
    assert result.returncode == 2 and message in result.stderr
    assert_one_line_error(result.stderr)


def test_unknown_command_suggests_names() -> None:
    result = run_cli("command", "autotrainer", "status")
    assert result.returncode == 2 and "unknown command 'status' (did you mean get-status" in result.stderr


# --- exit codes shared by every subcommand ------------------------------------------------


@pytest.mark.parametrize(
    "argv, code",
    [
        (["listen", "nope"], 2),
        (["command", "nope", "x"], 2),
        (["publish", "nope", "x"], 2),
        (["simulate", "nope"], 2),
        (["probe", "nope"], 3),
        (["listen", "autotrainer", "--no-such-option"], 2),
        (["probe", "autotrainer", "--no-such-option"], 3),
        (["listen", "autotrainer", "--filter", "colour=red"], 2),
        (["publish", "autotrainer"], 2),
        (["publish", "autotrainer", "noSuchEvent"], 2),
    ],
)
def test_usage_errors_are_one_line(argv: list[str], code: int) -> None:
    result = run_cli(*argv)
    assert result.returncode == code, result.stderr
    if argv[0] == "probe":
        assert result.stdout.startswith("NOPE UNKNOWN") or "UNKNOWN" in result.stdout or result.stderr
    else:
        assert_one_line_error(result.stderr)


def test_simulate_on_a_busy_port_exits_3(simulator: Proc, endpoints: Endpoints) -> None:
    result = run_cli("simulate", "autotrainer", "--json", "--duration", "1", *endpoints.args)
    assert result.returncode == 3 and "address already in use" in result.stderr
    assert_one_line_error(result.stderr)


# --- probe --------------------------------------------------------------------------------


def test_probe_ok_in_every_format(simulator: Proc, endpoints: Endpoints) -> None:
    text = run_cli("probe", "autotrainer", *endpoints.args)
    assert text.returncode == 0 and text.stdout.startswith("AUTOTRAINER OK - heartbeat from fieldctl-sim 0.12.0")
    assert "| heartbeat_wait_seconds=" in text.stdout
    as_json = json.loads(run_cli("probe", "autotrainer", "--format", "json", *endpoints.args).stdout)
    assert as_json["status"] == "OK" and as_json["code"] == 0 and "command_rtt_seconds" in as_json["metrics"]
    prom = run_cli("probe", "autotrainer", "--format", "prometheus", *endpoints.args).stdout
    assert 'fieldctl_probe_status{profile="autotrainer"} 0' in prom


def test_probe_warning_when_slower_than_warn(simulator: Proc, endpoints: Endpoints) -> None:
    result = run_cli("probe", "autotrainer", "--warn", "0", "--crit", "5", *endpoints.args)
    assert result.returncode == 1 and "WARNING" in result.stdout


def test_probe_critical_without_device_within_threshold(silent_device: Endpoints) -> None:
    endpoints = silent_device
    started = time.monotonic()
    result = run_cli("probe", "autotrainer", "--crit", "1", "--warn", "0.5", *endpoints.args)
    assert result.returncode == 2 and result.stdout.startswith("AUTOTRAINER CRITICAL - no heartbeat within 1 s")
    assert time.monotonic() - started < 6


def test_probe_rejects_warn_above_crit() -> None:
    result = run_cli("probe", "autotrainer", "--warn", "9", "--crit", "1")
    assert result.returncode == 3 and "UNKNOWN" in result.stdout
