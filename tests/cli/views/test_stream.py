"""The streaming path's stop conditions against real peers: what --count counts (well-formed
messages that pass the filters; never link lines or malformed frames), --idle as seconds of
silence (not a deadline taken before a burst), and command's round-trip time in NDJSON."""

from __future__ import annotations

import json
import subprocess
import time

import zmq

from tests.helpers.autotrainer import EVENT, HEARTBEAT, Device, Endpoints, event
from tests.helpers.ports import free_port
from tests.helpers.processes import FIELDCTL, Proc, lines_of, one_line, run_cli


def test_malformed_frames_never_satisfy_count_or_a_channel_filter(device: Device) -> None:
    listener = Proc(
        [
            *FIELDCTL,
            "listen",
            "autotrainer",
            "--json",
            "--filter",
            "channel=event",
            "--count",
            "3",
            "--timeout",
            "3",
            *device.args,
        ]
    )
    device.wait_subscriber()
    for garbage in (b"\xff\xfe", b"not json", b"[1, 2"):
        device.send(EVENT, garbage)
    assert listener.wait(20) == 4  # three garbage frames are not three events
    lines = listener.output()
    shown = [json.loads(line) for line in lines]
    malformed = [m for m in shown if m["error"]]
    assert len(malformed) == 3, lines  # shown, all of them
    assert "received 0 of 3 messages" in listener.stderr_now()


def test_count_counts_well_formed_matches_links_shown_not_counted(device: Device) -> None:
    listener = Proc([*FIELDCTL, "listen", "autotrainer", "--json", "--count", "2", "--timeout", "20", *device.args])
    device.wait_subscriber()
    device.send(EVENT, b"garbage")
    device.send(EVENT, event(1, 1))
    device.send(HEARTBEAT, {"identifier": "rig", "version": "0.12.0", "timestamp": time.time()})
    device.send(EVENT, event(1, 2))  # after --count: not shown
    assert listener.wait(20) == 0, listener.stderr_now()
    shown = [json.loads(line) for line in listener.output()]
    data = [m for m in shown if m["channel"] != "link"]
    assert [(m["channel"], bool(m["error"])) for m in data] == [("event", True), ("event", False), ("heartbeat", False)]
    assert any(m["channel"] == "link" for m in shown)  # connection state is part of the stream


def test_readme_count_example_prints_what_it_claims(simulator: Proc, endpoints: Endpoints) -> None:
    """README: `listen autotrainer --json --count 5 | jq 'select(.channel != "link") | .kind'` prints 5 kinds."""
    result = run_cli("listen", "autotrainer", "--json", "--count", "5", "--timeout", "20", *endpoints.args)
    assert result.returncode == 0, result.stderr
    kinds = [m["kind"] for m in lines_of(result.stdout) if m["channel"] != "link"]
    assert len(kinds) == 5


def test_idle_is_silence_not_a_deadline_against_a_steady_device(endpoints: Endpoints) -> None:
    """Three events a second never leave 2 s of silence: --idle 2 keeps following."""
    sim = Proc(
        [*FIELDCTL, "simulate", "autotrainer", "--json", *endpoints.args, "--set", "simulate.event_interval_s=0.3"]
    )
    sim.wait_json(lambda m: m["kind"] == "bound" and m["endpoint"] == "events")
    listener = Proc([*FIELDCTL, "listen", "autotrainer", "--json", "--idle", "2", "--duration", "7", *endpoints.args])
    assert listener.wait(30) == 0, listener.stderr_now()  # --duration ended it, not --idle
    events = [m for m in map(json.loads, listener.output()) if m["channel"] == "event"]
    assert len(events) >= 8
    sim.stop()


def test_idle_ends_a_silent_stream(device: Device) -> None:
    started = time.monotonic()
    silent = run_cli("listen", "autotrainer", "--json", "--idle", "1", *device.args)
    assert silent.returncode == 4 and "no message for 1 s" in silent.stderr
    assert time.monotonic() - started < 15


def test_idle_loses_nothing_from_a_burst_longer_than_idle(device: Device) -> None:
    """The idle deadline was taken before the burst: a burst longer than --idle was cut short."""
    total = 100_000
    listener = Proc([*FIELDCTL, "listen", "autotrainer", "--json", "--idle", "2", *device.args])
    device.wait_subscriber()
    time.sleep(1)  # half the idle budget spent before the burst starts
    body = json.dumps(event(1, 0)).encode()
    for _ in range(total):
        device.send(EVENT, body)
    assert listener.wait(120) == 4  # silence after the burst ends it
    events = sum(1 for line in listener.output(60) if '"channel":"event"' in line)
    assert events == total
    assert "no message for 2 s" in listener.stderr_now()


def test_command_json_carries_the_round_trip_time_on_the_first_reply(simulator: Proc, endpoints: Endpoints) -> None:
    sync = run_cli("command", "autotrainer", "get-configuration", "--json", *endpoints.args)
    assert sync.returncode == 0, sync.stderr
    request, reply = lines_of(sync.stdout)
    assert "rtt_s" not in request and 0 < reply["rtt_s"] < 5
    pending = run_cli(
        "command", "autotrainer", "set-application-mode", "--data", '{"mode": 100}', "--json", *endpoints.args
    )
    _, reply, result = lines_of(pending.stdout)
    assert reply["rtt_s"] > 0 and "rtt_s" not in result  # the first reply, not the result


def test_command_rtt_survives_the_ndjson_round_trip(simulator: Proc, endpoints: Endpoints) -> None:
    """What command --json writes reads back as Messages and writes out the same, rtt_s included."""
    from fieldctl.protocols.core.message import read_ndjson

    out = run_cli("command", "autotrainer", "get-status", "--json", *endpoints.args)

    again = [m.to_json() for m in read_ndjson(out.stdout.splitlines(), source="out")]
    assert [json.loads(line) for line in again] == lines_of(out.stdout)


def test_stderr_from_a_device_is_one_escaped_line() -> None:
    """A device's errorMessage with escape sequences and markup reaches stderr escaped, one line."""
    rep = zmq.Context.instance().socket(zmq.REP)
    rep.setsockopt(zmq.LINGER, 0)
    port = free_port()
    rep.bind(f"tcp://127.0.0.1:{port}")
    try:
        command = Proc(
            [
                *FIELDCTL,
                "command",
                "autotrainer",
                "get-status",
                "--json",
                "--no-wait",
                "--endpoint",
                f"commands=tcp://127.0.0.1:{port}",
                "--endpoint",
                "events=tcp://127.0.0.1:1",
            ]
        )
        assert rep.poll(20_000)
        request = json.loads(rep.recv())
        hostile = "bad\x1b]0;PWNED\x07\x1b[2J\nfieldctl: forged line [/oops]\x9b31m"
        rep.send(
            json.dumps(
                {
                    "command": request["command"],
                    "nonce": request["nonce"],
                    "result": 500,
                    "errorCode": 7,
                    "errorMessage": hostile,
                }
            ).encode()
        )
        assert command.wait(20) == 1
        command.output()
        err = command.stderr_now()
    finally:
        rep.close(0)
    assert err.count("\n") == 1 and err.startswith("fieldctl: ")
    assert "\x1b" not in err and "\x07" not in err and "\x9b" not in err
    assert "bad\\x1b]0;PWNED\\x07\\x1b[2J\\x0afieldctl: forged line [/oops]\\x9b31m" in err


def test_warnings_and_refusals_are_one_escaped_line() -> None:
    def command(*extra: str) -> subprocess.CompletedProcess[str]:
        return run_cli(
            "command",
            "autotrainer",
            "set-application-mode",
            "--data",
            '{"Mo\\u001bde]0;T\\u0007\\n": "X Y"}',
            "--timeout",
            "1",
            "--endpoint",
            f"commands=tcp://127.0.0.1:{free_port()}",
            "--endpoint",
            f"events=tcp://127.0.0.1:{free_port()}",
            *extra,
        )

    refused = command()  # a field the command does not declare
    assert refused.returncode == 2 and "takes no field 'Mo\\x1bde]0;T\\x07\\n'" in one_line(refused.stderr)
    sent = command("--force")
    warning = next(line for line in sent.stderr.splitlines() if line.startswith("warning: "))
    assert "data.Mo\\x1bde]0;T\\x07\\x0a" in warning
    for result in (refused, sent):
        assert "\x1b" not in result.stderr and "\x07" not in result.stderr


def test_stderr_lines_mask_known_secrets_then_escape() -> None:
    from fieldctl.cli.framework.escape import stderr_line
    from fieldctl.protocols.core import redact

    redact.remember("hunter2-secret")
    assert stderr_line("login refused for hunter2-secret\x1b]0;x\x07\n") == "login refused for ***\\x1b]0;x\\x07\\x0a"
    assert stderr_line("txt\u202egnp.exe\u2028é") == "txt\\u202egnp.exe\\u2028é"


def test_a_channel_filter_hides_heartbeats_but_does_not_make_the_device_stale(
    simulator: Proc, endpoints: Endpoints
) -> None:
    result = run_cli(
        "listen",
        "autotrainer",
        "--json",
        "--filter",
        "channel=event",
        "--duration",
        "3",
        "--set",
        "heartbeat.stale_after_s=1",
        *endpoints.args,
    )
    assert result.returncode == 0, result.stderr
    shown = lines_of(result.stdout)
    assert {m["channel"] for m in shown} == {"event", "link"}
    assert not [m for m in shown if m["kind"] == "stale"]
