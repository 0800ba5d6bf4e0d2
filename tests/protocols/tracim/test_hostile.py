"""Hostile peers against both sides of tracim, as real subprocesses on Unix sockets: a bad client
never stops `simulate tracim` from serving the others, an oversized document costs bounded memory,
a restarted daemon is noticed within 2 s, and `probe --crit` is a deadline whatever arrives."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import pytest

from tests.helpers.processes import FIELDCTL, Proc, peak_rss_kib, run_cli
from tests.helpers.tracim import FAST, is_msg, send_hostile, start_client, start_daemon

EVENT = "content.created.html-document"


def registration(path: str) -> bytes:
    return json.dumps({"path": path, "type": "daemon_client_add", "data": {"path": path, "pid": "1"}}).encode()


def warnings(proc: Proc) -> list[str]:
    return [line for line in proc.stderr_now().splitlines() if line.strip()]


# --- the simulated daemon and a hostile client ---------------------------------------------------------


def test_hostile_client_gets_warnings_and_the_others_are_still_served(sockdir: Path) -> None:
    master, good, control, busy = sockdir / "m.sock", sockdir / "good.sock", sockdir / "c.sock", sockdir / "busy.sock"
    daemon = start_daemon(master, "--no-timeline", "--control", str(control))
    hostile = [
        b"[" * 200_000,  # RecursionError before
        b'{"path":"/x","type":"daemon_ping","data":' + b'{"a":' * 3000,  # deep inside data, cut at 4096
        b'{"path":' + b"[" * 100 + b"]" * 100 + b',"type":"daemon_ping"}',
        b'{"path":{"a":1},"type":"daemon_ping"}',
        b'{"path":"/x","type":["daemon_ping"]}',
        b'{"path":"/x","type":"daemon_client_delete","data":{"n":' + b"9" * 4000 + b"}}",
        b'{"path":"/x","type":"daemon_client_delete","data":[1e400, NaN]}',
        b'{"path":"\\ud800","type":"daemon_ping"}',  # lone surrogate: an unusable path
        registration("a\x00b"),
        registration("\udcff"),
        registration("x" * 300),
        b'{"path":"/x","type":"daemon_client_add","data":"1"}',  # fatal to the real daemon
        b"\xff\xfe\x00garbage",
        b"",
    ]
    for data in hostile:
        send_hostile(master, data)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as never_accepts:  # a client with a full backlog
        never_accepts.bind(str(busy))
        never_accepts.listen(1)
        send_hostile(master, registration(str(busy)))
        stuck = send_hostile(master, b'{"path":', finish=False)  # never finishes its document
        plugin = start_client(master, good)
        daemon.wait_json(lambda m: m["kind"] == "unreachable" and m["payload"]["url"] == str(busy), timeout=20)
        result = run_cli("publish", "tracim", EVENT, "--data", "{}", "--via", str(control), "--json")
        assert result.returncode == 0, result.stderr
        assert plugin.wait_json(lambda m: is_msg(m, "in", EVENT))["error"] is None
        plugin.wait_json(lambda m: is_msg(m, "in", "daemon_ping"))
        assert stuck is not None
        stuck.close()
    assert plugin.stop() == 0
    assert daemon.popen.poll() is None
    assert daemon.stop() == 0
    lines = warnings(daemon)
    assert not any("Traceback" in line or "internal error" in line for line in lines), lines
    assert any("exceeded max depth" in line for line in lines)
    assert any("cannot unmarshal number" in line for line in lines)
    assert any("cannot unmarshal object into Go struct field DaemonEvent.path" in line for line in lines)
    assert any("panics and exits 2" in line for line in lines)
    assert any("pid " in line for line in lines)  # names the sender


def test_oversized_document_in_read_to_eof_mode_is_refused(sockdir: Path) -> None:
    master = sockdir / "m.sock"
    daemon = start_daemon(
        master, "--no-timeline", "--set", "simulate.single_read_bytes=0", "--set", "limits.max_frame_bytes=1048576"
    )
    send_hostile(master, b'{"path":"/x","type":"daemon_ping","data":"' + b"x" * (8 << 20) + b'"}')
    refused = daemon.wait_json(lambda m: m["error"] is not None and "1048576-byte limit" in m["error"])
    assert refused["kind"] == "invalid"
    assert run_cli("command", "tracim", "ping", "--master", str(master)).returncode == 0
    assert daemon.stop() == 0
    assert "dropped the connection of pid" in daemon.stderr_now()


# --- a ping that names another socket ----------------------------------------------------------------


def test_a_ping_naming_another_socket_gets_no_pong(sockdir: Path) -> None:
    """Whoever can write to the client's socket could name any socket in a ping, and the real SDKs
    would write a pong there. fieldctl answers only pings that name the daemon's socket, under
    whatever spelling, and says so once."""
    master, client, bystander = sockdir / "m.sock", sockdir / "c.sock", sockdir / "bystander.sock"
    respelled = f"{sockdir}/./m.sock"
    daemon = start_daemon(master, "--no-timeline")
    plugin = start_client(master, client)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(bystander))
        listener.listen(8)
        listener.setblocking(False)
        for named in (str(bystander), str(client), f"{sockdir}/../{sockdir.name}/bystander.sock"):
            send_hostile(client, json.dumps({"path": named, "type": "daemon_ping"}).encode())
            plugin.wait_json(lambda m, named=named: is_msg(m, "in", "daemon_ping", named))
        send_hostile(client, json.dumps({"path": respelled, "type": "daemon_ping"}).encode())
        plugin.wait_json(lambda m: is_msg(m, "out", "daemon_pong", respelled))
        plugin.wait_json(lambda m: is_msg(m, "out", "daemon_pong", master))  # its own pings are still answered
        with pytest.raises(BlockingIOError):
            listener.accept()
    assert plugin.stop() == 0 and daemon.stop() == 0
    pongs = {m["id"] for m in map(json.loads, plugin.output()) if is_msg(m, "out", "daemon_pong")}
    assert pongs <= {str(master)}
    [warning] = warnings(plugin)
    assert f"a ping named {bystander}, not the daemon's socket {master}: not answered" in warning


# --- memory: a 64 MiB document against the default 16 MiB cap -------------------------------------------


def test_64_mib_documents_cost_the_client_bounded_memory(sockdir: Path) -> None:
    """One 64 MiB document, then six 32 MiB ones at once: each is refused at the 16 MiB cap, and
    only two big documents are read at a time, so the peak stays far below what was sent."""
    master, client = sockdir / "m.sock", sockdir / "c.sock"
    daemon = start_daemon(master, "--no-timeline", "--control", str(sockdir / "ctl.sock"))
    plugin = start_client(master, client)
    before = peak_rss_kib(plugin.popen.pid)

    def big(size: int) -> bytes:
        tlm = json.dumps({"event_id": 1, "event_type": EVENT, "fields": {"x": "y" * size}})
        return json.dumps({"path": str(master), "type": "daemon_tracim_event", "data": tlm}).encode()

    send_hostile(client, big(64 << 20))
    assert "16777216-byte limit" in plugin.wait_json(lambda m: m["error"] is not None, timeout=30)["error"]
    document = big(32 << 20)
    senders = [threading.Thread(target=send_hostile, args=(client, document), daemon=True) for _ in range(6)]
    for thread in senders:
        thread.start()
    for _ in senders:
        assert "16777216-byte limit" in plugin.wait_json(lambda m: m["error"] is not None, timeout=60)["error"]
    growth_mib = (peak_rss_kib(plugin.popen.pid) - before) / 1024
    assert growth_mib < 48, f"VmHWM grew by {growth_mib:.0f} MiB for 64 + 6 x 32 MiB of documents"
    # Still registered and served: the next event arrives.
    result = run_cli("publish", "tracim", EVENT, "--data", "{}", "--via", str(sockdir / "ctl.sock"))
    assert result.returncode == 0, result.stderr
    plugin.wait_json(lambda m: is_msg(m, "in", EVENT))
    assert plugin.stop() == 0 and daemon.stop() == 0


# --- a restarted daemon --------------------------------------------------------------------------------


def test_restarted_daemon_is_noticed_within_2_s_even_with_the_same_inode(sockdir: Path) -> None:
    """The client hears nothing from a killed daemon and stale_after_s is 65 s (the default): only
    the new socket file can tell it. ext4 often gives the new file the old inode number."""
    master, client = sockdir / "m.sock", sockdir / "c.sock"
    daemon = start_daemon(master, "--no-timeline")
    plugin = start_client(master, client, "listen", "--set", "heartbeat.stale_after_s=65")
    inode = master.stat().st_ino
    daemon.popen.kill()  # its socket file stays behind
    daemon.wait()
    restarted = Proc(
        [
            *FIELDCTL,
            "simulate",
            "tracim",
            "--json",
            "--master",
            str(master),
            *FAST,
            "--set",
            "simulate.event_interval_s=0.2",
        ]
    )
    bound = restarted.wait_json(lambda m: m["channel"] == "link" and m["kind"] == "bound" and m["endpoint"] == "master")
    add = restarted.wait_json(lambda m: is_msg(m, "in", "daemon_client_add", client), timeout=10)
    event = plugin.wait_json(lambda m: m["channel"] == "tracim" and m["direction"] == "in", timeout=10)
    # Timed by the processes' own clocks, so a slow test reader does not count.
    assert add["ts"] - bound["ts"] < 2.0 and event["ts"] - bound["ts"] < 2.0, (
        add["ts"] - bound["ts"],
        event["ts"] - bound["ts"],
    )
    print(f"inode reused: {master.stat().st_ino == inode}")
    assert plugin.stop() == 0 and restarted.stop() == 0


# --- probe: --crit is a deadline ---------------------------------------------------------------------


class FloodingDaemon:
    """A master socket that never pongs: to every request it answers with a stream of malformed,
    deep, unrelated and never-finished documents on the requester's socket."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(16)
        self.stop = threading.Event()
        self.asked_at: float | None = None  # when the probe's ping arrived: it had started by then
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                request = json.loads(conn.recv(4096))
            self.asked_at = self.asked_at or time.monotonic()
            threading.Thread(target=self._flood, args=(request["path"],), daemon=True).start()

    def _flood(self, path: str) -> None:
        junk = [
            b"{broken",
            b"[" * 100_000,
            b'{"path":1,"type":"daemon_pong"}',
            b'{"path":"/m","type":"daemon_ping"}',
            b'{"path":"/m","type":"daemon_pong","data":' + b"9" * 5000 + b"}",
        ]
        open_ones = []
        while not self.stop.is_set():
            for data in junk:
                try:
                    open_ones.append(send_hostile(Path(path), b'{"path":', finish=False))
                    send_hostile(Path(path), data)
                except OSError:
                    return  # the probe's socket is gone
        for sock in open_ones:
            if sock is not None:
                sock.close()


def test_probe_crit_is_a_deadline_among_malformed_traffic(sockdir: Path) -> None:
    master = sockdir / "m.sock"
    flood = FloodingDaemon(master)
    try:
        result = run_cli(
            "probe",
            "tracim",
            "--master",
            str(master),
            "--endpoint",
            f"client=unix://{sockdir}/p.sock",
            "--warn",
            "0.5",
            "--crit",
            "2",
        )
        ended = time.monotonic()
    finally:
        flood.stop.set()
    assert result.returncode == 2 and "no pong from" in result.stdout, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert flood.asked_at is not None
    # From the ping (the interpreter's start excluded) to the exit: 2 s, plus a margin for a loaded
    # machine, where one 100,000-bracket document costs up to 0.7 s to refuse (limits.check_depth).
    assert ended - flood.asked_at < 2 + 3, ended - flood.asked_at
