"""The subcommands against `simulate tracim`, as real subprocesses on Unix sockets in short temp
dirs: both sides, exit codes, and the faults (a killed and restarted daemon, a silent client,
malformed and oversized documents, signals) — never a socket file left behind."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers.processes import FIELDCTL, Proc, cli_env, run_cli
from tests.helpers.terminals import Pty
from tests.helpers.tracim import FAST, is_msg, raw_of, send_raw, start_client, start_daemon

EVENT = "content.created.html-document"


def messages(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def assert_one_line_error(stderr: str) -> None:
    assert "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1, stderr


def leftover_sockets(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if stat.S_ISSOCK(p.lstat().st_mode)]


# --- client side: register/listen, command, probe, publish --------------------------------------------


def test_listen_shows_registration_pings_and_timeline_events(sockdir: Path) -> None:
    master, client = sockdir / "m.sock", sockdir / "c.sock"
    daemon = start_daemon(master, "--set", "simulate.event_interval_s=0.2")
    assert stat.S_IMODE(master.stat().st_mode) == 0o600
    result = run_cli(
        "listen",
        "tracim",
        "--json",
        "--master",
        str(master),
        "--endpoint",
        f"client=unix://{client}",
        *FAST,
        "--count",
        "12",
        "--timeout",
        "15",
        "--filter",
        "direction=in",
    )
    assert result.returncode == 0, result.stderr
    lines = messages(result.stdout)
    kinds = [m["kind"] for m in lines if m["channel"] != "link"]
    assert kinds[0] == "daemon_account_info" and "daemon_client_added" in kinds and "daemon_ping" in kinds
    links = [m["kind"] for m in lines if m["channel"] == "link"]
    assert links[:2] == ["bound", "registering"] and "registered" in links
    event = next(m for m in lines if m["channel"] == "tracim")
    assert "." in event["kind"] and event["payload"]["event_type"] == event["kind"]
    assert stat.S_IMODE(os.stat(master).st_mode) == 0o600 and not client.exists()
    # The simulator saw the pongs and the unregistration on exit.
    daemon.wait_json(lambda m: is_msg(m, "in", "daemon_pong", client))
    daemon.wait_json(lambda m: is_msg(m, "in", "daemon_client_delete", client))
    assert daemon.stop(signal.SIGINT) == 0
    assert leftover_sockets(sockdir) == []


def test_listen_goes_stale_when_pings_stop(sockdir: Path) -> None:
    master, client = sockdir / "m.sock", sockdir / "c.sock"
    daemon = start_daemon(master, "--no-timeline", "--set", "keepalive.interval_s=0.3")
    plugin = start_client(master, client, "listen", "--set", "heartbeat.stale_after_s=1")
    plugin.wait_json(lambda m: is_msg(m, "in", "daemon_ping"))
    daemon.popen.send_signal(signal.SIGSTOP)  # a wedged daemon: the socket exists, nothing answers
    try:
        stale = plugin.wait_json(lambda m: m["channel"] == "link" and m["kind"] == "stale", timeout=8)
        assert stale["endpoint"] == "heartbeat"
    finally:
        daemon.popen.send_signal(signal.SIGCONT)
    plugin.wait_json(lambda m: m["channel"] == "link" and m["kind"] == "alive", timeout=8)
    assert plugin.stop() == 0 and daemon.stop() == 0
    assert leftover_sockets(sockdir) == []


def test_commands_and_their_replies(sockdir: Path) -> None:
    master = sockdir / "m.sock"
    daemon = start_daemon(master, "--no-timeline")
    plugin = start_client(master, sockdir / "c.sock")
    clients = run_cli("command", "tracim", "get-clients", "--master", str(master), "--json")
    assert clients.returncode == 0, clients.stderr
    reply = messages(clients.stdout)[-1]
    assert reply["kind"] == "daemon_clients" and reply["payload"] == [
        {"path": str(sockdir / "c.sock"), "pid": str(plugin.popen.pid)}
    ]
    account = run_cli("command", "tracim", "get-account-info", "--master", str(master), "--json")
    assert account.returncode == 0 and messages(account.stdout)[-1]["payload"] == {"user_id": "42"}
    ping = run_cli("command", "tracim", "ping", "--master", str(master), "--json")
    assert ping.returncode == 0 and messages(ping.stdout)[-1]["kind"] == "daemon_pong"
    request = run_cli(
        "command", "tracim", "do-request", "--master", str(master), "--json", "--data", '{"Method": "GET"}'
    )
    assert request.returncode == 0 and "ignores every field" in request.stderr
    assert messages(request.stdout)[-1]["payload"]["Status"] == "200 OK"
    bad = run_cli("command", "tracim", "do-request", "--master", str(master), "--data", "[1]")
    assert bad.returncode == 2
    assert_one_line_error(bad.stderr)
    unknown = run_cli("command", "tracim", "get-everything", "--master", str(master))
    assert unknown.returncode == 2 and "get-clients" in unknown.stderr
    assert plugin.stop() == 0 and daemon.stop() == 0
    assert leftover_sockets(sockdir) == []


def test_on_a_terminal_a_reply_without_detail_has_no_dangling_colon(
    sockdir: Path, terminals: Callable[..., Pty]
) -> None:
    master = sockdir / "m.sock"
    daemon = start_daemon(master, "--no-timeline")
    term = terminals([*FIELDCTL, "command", "tracim", "ping", "--master", str(master)])
    assert term.wait(30) == 0, term.text
    verdict = next(line for line in term.text.splitlines() if line.startswith("OK"))
    assert re.fullmatch(r"OK daemon_pong in \d+\.\d ms\s*", verdict), verdict
    probe = run_cli("probe", "tracim", "--master", str(master))
    assert re.match(r"\S+ OK - pong from \S+ in \d+\.\d ms", probe.stdout), probe.stdout
    assert daemon.stop() == 0


def test_command_exit_codes_without_a_daemon(sockdir: Path) -> None:
    missing = run_cli("command", "tracim", "ping", "--master", str(sockdir / "none.sock"))
    assert missing.returncode == 3
    assert_one_line_error(missing.stderr)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as mute:  # accepts, never answers
        mute.bind(str(sockdir / "mute.sock"))
        mute.listen(16)
        silent = run_cli("command", "tracim", "ping", "--master", str(sockdir / "mute.sock"), "--timeout", "0.5")
        assert silent.returncode == 4 and "no daemon_pong" in silent.stderr
        assert_one_line_error(silent.stderr)
        probe = run_cli("probe", "tracim", "--master", str(sockdir / "mute.sock"), "--crit", "0.5", "--warn", "0.2")
        assert probe.returncode == 2 and "no pong" in probe.stdout
    gone = run_cli("probe", "tracim", "--master", str(sockdir / "none.sock"), "--crit", "1")
    assert gone.returncode == 2 and "CRITICAL" in gone.stdout
    assert leftover_sockets(sockdir) == ["mute.sock"]


def test_probe_ok_and_master_from_the_daemons_config(sockdir: Path) -> None:
    master = sockdir / "m.sock"
    daemon = start_daemon(master, "--no-timeline")
    ok = run_cli("probe", "tracim", "--endpoint", f"master=unix://{master}", "--crit", "2", "--format", "json")
    assert ok.returncode == 0, ok.stdout
    assert json.loads(ok.stdout)["metrics"]["pong_rtt_seconds"] < 2
    # Without --master the daemon's own rule applies: socket_path in $XDG_CONFIG_HOME/TracimDaemon/config.json.
    (sockdir / "TracimDaemon").mkdir()
    (sockdir / "TracimDaemon" / "config.json").write_text(json.dumps({"Socket_Path": str(master)}))
    configured = run_cli("command", "tracim", "ping", "--json", env=cli_env(XDG_CONFIG_HOME=str(sockdir)))
    assert configured.returncode == 0, configured.stderr
    assert daemon.stop() == 0


def test_publish_to_a_client_socket_and_via_the_simulator(sockdir: Path) -> None:
    master, client, control = sockdir / "m.sock", sockdir / "c.sock", sockdir / "ctl.sock"
    daemon = start_daemon(master, "--no-timeline", "--control", str(control))
    plugin = start_client(master, client)
    direct = run_cli(
        "publish",
        "tracim",
        "user.modified",
        "--data",
        '{"user": {"public_name": "Ann"}}',
        "--master",
        str(master),
        "--to",
        str(client),
        "--json",
    )
    assert direct.returncode == 0, direct.stderr
    got = plugin.wait_json(lambda m: is_msg(m, "in", "user.modified"))
    assert got["id"] == str(master) and got["payload"]["fields"]["user"]["public_name"] == "Ann"
    via = run_cli(
        "publish",
        "tracim",
        "daemon_tracim_event",
        "--data",
        json.dumps({"event_id": 5, "event_type": "mention.created", "fields": {}}),
        "--via",
        str(control),
    )
    assert via.returncode == 0, via.stderr
    assert plugin.wait_json(lambda m: is_msg(m, "in", "mention.created"))["payload"]["event_id"] == 5
    assert plugin.stop() == 0 and daemon.stop() == 0
    assert leftover_sockets(sockdir) == []


def test_scenario_replays_a_recording_byte_exact(sockdir: Path) -> None:
    master, client, record = sockdir / "m.sock", sockdir / "c.sock", sockdir / "rec.ndjson"
    daemon = start_daemon(master, "--set", "simulate.event_interval_s=0.1")
    result = run_cli(
        "listen",
        "tracim",
        "--json",
        "--master",
        str(master),
        "--endpoint",
        f"client=unix://{client}",
        *FAST,
        "--filter",
        "channel=tracim",
        "--count",
        "3",
        "--timeout",
        "10",
        "--record",
        str(record),
    )
    assert result.returncode == 0, result.stderr
    daemon.stop()
    recorded = [m for m in messages(record.read_text()) if m["channel"] == "tracim"]
    replay = start_daemon(master, "--scenario", str(record))
    plugin = start_client(master, client)
    again = [plugin.wait_json(lambda m: m["channel"] == "tracim") for _ in recorded]
    assert [raw_of(m) for m in again] == [raw_of(m) for m in recorded]
    assert plugin.stop() == 0 and replay.stop() == 0


# --- faults ------------------------------------------------------------------------------------------


def test_killed_and_restarted_daemon_is_noticed_and_registered_again(sockdir: Path) -> None:
    master, client = sockdir / "m.sock", sockdir / "c.sock"
    daemon = start_daemon(master, "--no-timeline")
    plugin = start_client(master, client)
    daemon.popen.kill()  # SIGKILL: its socket file stays behind, stale
    daemon.wait()
    plugin.wait_json(lambda m: m["channel"] == "link" and m["kind"] == "retrying", timeout=8)
    restarted = start_daemon(master, "--no-timeline")  # replaces the stale file
    restarted.wait_json(lambda m: is_msg(m, "in", "daemon_client_add", client), timeout=8)
    plugin.wait_json(lambda m: m["channel"] == "link" and m["kind"] == "registered", timeout=8)
    restarted.wait_json(lambda m: is_msg(m, "in", "daemon_pong", client), timeout=8)
    assert plugin.stop() == 0 and restarted.stop() == 0
    assert leftover_sockets(sockdir) == []


def test_live_master_socket_is_never_stolen(sockdir: Path) -> None:
    master = sockdir / "m.sock"
    daemon = start_daemon(master, "--no-timeline")
    second = run_cli("simulate", "tracim", "--json", "--master", str(master), "--duration", "1")
    assert second.returncode == 3 and "in use" in second.stderr
    assert_one_line_error(second.stderr)
    assert run_cli("command", "tracim", "ping", "--master", str(master)).returncode == 0
    assert daemon.stop() == 0


def test_silent_client_is_dropped(sockdir: Path) -> None:
    master, quiet = sockdir / "m.sock", sockdir / "quiet.sock"
    daemon = start_daemon(master, "--no-timeline")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:  # takes pings, never pongs
        listener.bind(str(quiet))
        listener.listen(64)
        send_raw(
            master,
            json.dumps(
                {"path": str(quiet), "type": "daemon_client_add", "data": {"path": str(quiet), "pid": "1"}}
            ).encode(),
        )
        dropped = daemon.wait_json(lambda m: m["channel"] == "link" and m["kind"] == "dropped", timeout=8)
        assert dropped["payload"]["url"] == str(quiet)
    clients = run_cli("command", "tracim", "get-clients", "--master", str(master), "--json")
    assert messages(clients.stdout)[-1]["payload"] == []
    assert daemon.stop() == 0


def test_malformed_and_oversized_documents_never_crash_the_daemon(sockdir: Path) -> None:
    master = sockdir / "m.sock"
    daemon = start_daemon(master, "--no-timeline")
    send_raw(master, b"this is not json")
    assert daemon.wait_json(lambda m: m["error"] is not None and m["kind"] == "invalid")["raw"]
    send_raw(master, json.dumps({"path": "/x", "type": "daemon_client_add", "data": None}).encode())
    fatal = daemon.wait_json(lambda m: m["error"] is not None and m["kind"] == "daemon_client_add")
    assert "panics" in fatal["error"]
    huge = json.dumps({"path": "/x", "type": "daemon_ping", "data": "x" * 5000}).encode()
    send_raw(master, huge)
    cut = daemon.wait_json(lambda m: m["error"] is not None and "4096-byte single read" in m["error"])
    assert len(raw_of(cut)) == 4096
    publish = run_cli("publish", "tracim", "daemon_ping", "--data", json.dumps("y" * 5000), "--master", str(master))
    assert publish.returncode == 0 and "over the daemon's 4096-byte single read" in publish.stderr
    assert run_cli("command", "tracim", "ping", "--master", str(master)).returncode == 0
    assert daemon.stop() == 0
    assert "panics and exits 2" in daemon.stderr_now()  # reported loudly, and the simulator went on


def test_malformed_and_huge_documents_never_crash_the_client(sockdir: Path) -> None:
    master, client = sockdir / "m.sock", sockdir / "c.sock"
    daemon = start_daemon(master, "--no-timeline")
    plugin = start_client(master, client)
    send_raw(client, b"{broken")
    assert plugin.wait_json(lambda m: m["error"] is not None)["kind"] == "invalid"
    send_raw(
        client, json.dumps({"path": str(master), "type": "daemon_tracim_event", "data": {"not": "a string"}}).encode()
    )
    assert "JSON string" in plugin.wait_json(lambda m: m["error"] is not None)["error"]
    tlm = {
        "event_id": 9,
        "event_type": "content.modified.file",
        "read": None,
        "created": "2023-07-26T12:00:00Z",
        "fields": {"content": {"label": "big", "raw_content": "z" * 100_000}},
    }
    send_raw(client, json.dumps({"path": str(master), "type": "daemon_tracim_event", "data": json.dumps(tlm)}).encode())
    big = plugin.wait_json(lambda m: is_msg(m, "in", "content.modified.file"))
    assert big["error"] is None and len(big["payload"]["fields"]["content"]["raw_content"]) == 100_000
    plugin.wait_json(lambda m: is_msg(m, "in", "daemon_ping"))  # still registered and answering
    assert plugin.stop() == 0 and daemon.stop() == 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_no_socket_left_after_a_signal(sockdir: Path, sig: int) -> None:
    master, client, control = sockdir / "m.sock", sockdir / "c.sock", sockdir / "ctl.sock"
    daemon = start_daemon(master, "--control", str(control))
    plugin = start_client(master, client)
    assert plugin.stop(sig) == 0
    daemon.wait_json(lambda m: is_msg(m, "in", "daemon_client_delete", client))
    assert daemon.stop(sig) == 0
    assert leftover_sockets(sockdir) == []


def test_stale_socket_file_is_replaced(sockdir: Path) -> None:
    master = sockdir / "m.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(master))  # a socket file nobody listens on, as a killed daemon leaves it
    dead.close()
    result = run_cli("simulate", "tracim", "--json", "--master", str(master), "--duration", "0.3")
    assert result.returncode == 0, result.stderr
    assert not master.exists()


def test_a_tracim_event_to_the_master_socket_says_it_reaches_no_client(sockdir: Path) -> None:
    master = sockdir / "m.sock"
    daemon = start_daemon(master, "--no-timeline")
    result = run_cli("publish", "tracim", "user.modified", "--data", '{"user": {}}', "--master", str(master))
    assert result.returncode == 0, result.stderr
    assert "acknowledges them and relays nothing" in result.stderr and "--via SOCKET" in result.stderr
    asked = run_cli("command", "tracim", "get-clients", "--master", str(master))
    assert asked.returncode == 0 and "relays nothing" not in asked.stderr  # a request is no such mistake
    assert daemon.stop() == 0


def test_publish_via_waits_for_a_client_started_with_it(sockdir: Path) -> None:
    master, client, control = sockdir / "m.sock", sockdir / "c.sock", sockdir / "ctl.sock"
    daemon = start_daemon(master, "--no-timeline", "--control", str(control))
    nobody = run_cli("publish", "tracim", "user.modified", "--data", "{}", "--via", str(control))
    assert nobody.returncode == 4 and "no client registered" in nobody.stderr
    asking = Proc([*FIELDCTL, "publish", "tracim", "user.modified", "--data", "{}", "--via", str(control)])
    plugin = start_client(master, client)
    try:
        assert asking.wait(20) == 0
        plugin.wait_json(lambda m: is_msg(m, "in", "user.modified"))
    finally:
        asking.stop()
        assert plugin.stop() == 0 and daemon.stop() == 0
