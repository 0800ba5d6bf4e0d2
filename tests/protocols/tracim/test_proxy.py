"""`proxy tracim` between real peers: the REAL tracim-daemon-sdk client (its own venv and process,
tests/peers/tracim_client.py) and a client of ours that keeps every byte it receives register
through the proxy with `simulate tracim` (a process) as the daemon. The proxy runs at the driver
level in a thread of its own, so the test waits on both sides' output by plain polling. Checked:
byte-exact relay both ways but for the socket paths (the one rewrite, docs/protocols/tracim.md
"Through the proxy"), both directions decoded, a reply's round trip, hostile senders, a client
gone, the daemon absent then present, and fault rules through the relay."""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fieldctl.protocols.sdk.faults import Faults, corrupt_frame, parse_rule
from fieldctl.protocols.tracim import codec
from fieldctl.protocols.tracim.driver import Driver
from tests.helpers.peers import peer_python
from tests.helpers.processes import FIELDCTL, Proc, run_cli
from tests.helpers.proxying import ProxyRun
from tests.helpers.repository import ROOT
from tests.helpers.tracim import FAST, is_msg, raw_of, send_hostile, send_raw, start_client, start_daemon
from tests.helpers.waiting import holds_within

PEER_SCRIPT = ROOT / "tests" / "peers" / "tracim_client.py"
EVENT = "content.created.html-document"
FIELDS = json.dumps({"author": {"public_name": "Ann <QA> & co"}, "content": {"label": "Zoé"}})


def settings(args: list[str]) -> list[str]:
    """FAST's `--set` values, for load_profile."""
    return [value for flag, value in zip(args[::2], args[1::2], strict=True) if flag == "--set"]


def start_proxy(local: Path, upstream: Path, own: Path, faults: Faults | None = None, *sets: str) -> ProxyRun:
    """The tracim driver's proxy on `local`, its own sockets beside `own`, to the daemon at
    `upstream`, run until `stop`."""
    return ProxyRun(
        Driver,
        "tracim",
        [f"master=unix://{local}", f"client=unix://{own}"],
        {"master": f"unix://{upstream}"},
        faults,
        sets=[*settings(FAST), *sets],
    ).start()


def parsed(document: bytes) -> dict[str, Any]:
    """A document as a client reads it; {} for what is not an object."""
    try:
        envelope = json.loads(document)
    except ValueError:
        return {}
    return envelope if isinstance(envelope, dict) else {}


class Keeper:
    """A client that keeps every document it receives, byte for byte, and pongs the pings it gets
    (to the socket they name, as the SDKs do: here the proxy's)."""

    def __init__(self, path: Path, master: Path) -> None:
        self.path, self.master = path, master
        self.documents: list[bytes] = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(64)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:  # closed
                return
            with conn:
                conn.settimeout(5)
                chunks = []
                while data := conn.recv(65536):
                    chunks.append(data)
            document = b"".join(chunks)
            self.documents.append(document)
            envelope = parsed(document)
            if envelope.get("type") == codec.PING:
                with contextlib.suppress(OSError):
                    send_raw(Path(envelope["path"]), self.document(codec.PONG))

    def document(self, type_: str, data: Any = None) -> bytes:
        return json.dumps({"path": str(self.path), "type": type_, "data": data}).encode()

    def send(self, type_: str, data: Any = None) -> bytes:
        raw = self.document(type_, data)
        send_raw(self.master, raw)
        return raw

    def register(self) -> bytes:
        return self.send(codec.CLIENT_ADD, {"path": str(self.path), "pid": "7"})

    def wait(self, holds: Callable[[dict[str, Any]], bool], timeout: float = 20) -> bytes:
        def found() -> bytes | None:
            return next((raw for raw in list(self.documents) if holds(parsed(raw))), None)

        holds_within(found, timeout, f"a document for {self.path}")
        raw = found()
        assert raw is not None
        return raw

    def close(self) -> None:
        self.sock.close()
        self.path.unlink(missing_ok=True)


@pytest.fixture
def keepers() -> Iterator[list[Keeper]]:
    made: list[Keeper] = []
    yield made
    for keeper in made:
        keeper.close()


def quoted(path: Path | str) -> bytes:
    return json.dumps(str(path)).encode()


def flood(path: Path, data: bytes) -> None:
    """One document of a flood; a full listen backlog refuses some, which is the sender's loss."""
    with contextlib.suppress(OSError):
        send_hostile(path, data)


def publish_via(control: Path) -> None:
    result = run_cli("publish", "tracim", EVENT, "--data", FIELDS, "--via", str(control), "--json")
    assert result.returncode == 0, result.stderr


def own_path(daemon: Proc, kind: str = codec.CLIENT_ADD) -> str:
    """The socket the proxy registered upstream with, as the daemon saw it."""
    return str(daemon.wait_json(lambda m: is_msg(m, "in", kind))["id"])


# --- the real SDK ------------------------------------------------------------------------------------


def test_the_real_sdk_registers_through_the_proxy_and_gets_the_daemons_events(sockdir: Path) -> None:
    upstream, local, control, sdk = sockdir / "up.sock", sockdir / "m.sock", sockdir / "c.sock", sockdir / "sdk.sock"
    daemon = start_daemon(upstream, "--no-timeline", "--control", str(control))
    proxy = start_proxy(local, upstream, sockdir / "px.sock")
    peer = Proc([str(peer_python("tracim")), str(PEER_SCRIPT), "--master", str(local), "--client", str(sdk)])
    peer.wait_json(lambda m: m.get("ready") is True, timeout=20)

    # The registration: relayed with the proxy's own socket in the SDK's place, every other byte kept.
    sent = proxy.wait(lambda m: m.direction == "out" and m.kind == codec.CLIENT_ADD, what="registration")
    assert sent.id == str(sdk) and sent.endpoint == "master" and sent.channel == "clients" and sent.error is None
    assert sent.raw[0].startswith(b'{"path": "%s", "type": "daemon_client_add"' % str(sdk).encode())
    add = daemon.wait_json(lambda m: is_msg(m, "in", codec.CLIENT_ADD))
    own = add["id"]
    assert own != str(sdk) and own.startswith(str(sockdir / "px")) and add["payload"]["path"] == own
    assert raw_of(add) == sent.raw[0].replace(quoted(sdk), quoted(own))

    # The daemon's answers come back to the SDK, naming the proxy's master: the SDK takes its
    # account info (it checks the path) and pongs the proxy, which relays the pong as the daemon's.
    info = daemon.wait_json(lambda m: is_msg(m, "out", codec.ACCOUNT_INFO, own))
    relayed = proxy.wait(lambda m: m.direction == "in" and m.kind == codec.ACCOUNT_INFO, what="account info")
    assert relayed.raw[0] == raw_of(info) and relayed.id == str(sdk) and relayed.endpoint == "client"
    assert peer.wait_json(lambda m: m.get("type") == codec.ACCOUNT_INFO)["path"] == str(local)
    for _ in range(2):
        ping = raw_of(daemon.wait_json(lambda m: is_msg(m, "out", codec.PING, own)))
        relayed = proxy.wait(lambda m, sent=ping: m.direction == "in" and m.raw == (sent,), what="ping")
        assert relayed.channel == "keepalive"
        assert daemon.wait_json(lambda m: is_msg(m, "in", codec.PONG, own))["error"] is None
        daemon.wait_json(lambda m: is_msg(m, "out", codec.ACK, own))
    assert peer.wait_json(lambda m: m.get("log") == f"SOCKET: SEND: daemon_pong -> {local}")

    # A Tracim event: relayed byte for byte but the daemon's path, decoded on the way.
    publish_via(control)
    event = daemon.wait_json(lambda m: is_msg(m, "out", EVENT, own))
    shown = proxy.wait(lambda m: m.direction == "in" and m.kind == EVENT, what="event")
    assert shown.raw[0] == raw_of(event) and shown.channel == "tracim" and shown.error is None
    assert shown.payload["fields"]["author"]["public_name"] == "Ann <QA> & co"
    seen = peer.wait_json(lambda m: m.get("event_type") == EVENT)
    assert seen["path"] == str(local) and seen["event_id"] == shown.payload["event_id"]

    # The SDK unregisters (twice, spec §7): both relayed under the proxy's socket.
    assert peer.stop() == 0
    for _ in range(2):
        delete = daemon.wait_json(lambda m: is_msg(m, "in", codec.CLIENT_DELETE, own))
        assert delete["error"] is None and raw_of(delete).startswith(b'{"path": %s, "type": ' % quoted(own))
    proxy.stop()
    assert daemon.stop() == 0
    assert {path.name for path in sockdir.iterdir()} == set()


# --- what our own client sees, byte for byte -----------------------------------------------------------


def test_every_byte_but_the_socket_paths_is_relayed_and_replies_get_their_round_trip(
    sockdir: Path, keepers: list[Keeper]
) -> None:
    upstream, local, control = sockdir / "up.sock", sockdir / "m.sock", sockdir / "c.sock"
    daemon = start_daemon(upstream, "--no-timeline", "--control", str(control))
    proxy = start_proxy(local, upstream, sockdir / "px.sock")
    keeper = Keeper(sockdir / "k.sock", local)
    keepers.append(keeper)
    keeper.register()
    own = own_path(daemon)
    # The newcomer's broadcast names it by its own socket again, and the daemon's by the proxy's.
    added = daemon.wait_json(lambda m: is_msg(m, "out", codec.CLIENT_ADDED, own))
    got = keeper.wait(lambda d: d["type"] == codec.CLIENT_ADDED)
    assert got == raw_of(added).replace(quoted(upstream), quoted(local)).replace(quoted(own), quoted(keeper.path))

    publish_via(control)
    event = daemon.wait_json(lambda m: is_msg(m, "out", EVENT, own))
    assert keeper.wait(lambda d: d["type"] == codec.TRACIM_EVENT) == raw_of(event).replace(
        quoted(upstream), quoted(local)
    )

    asked = keeper.send(codec.GET_CLIENTS)
    request = proxy.wait(lambda m: m.direction == "out" and m.kind == codec.GET_CLIENTS, what="request")
    assert request.raw == (asked,) and request.channel == "clients"
    answer = daemon.wait_json(lambda m: is_msg(m, "out", codec.CLIENTS, own))
    assert answer["payload"] == [{"path": own, "pid": "7"}]
    reply = proxy.wait(lambda m: m.direction == "in" and m.kind == codec.CLIENTS, what="reply")
    assert reply.raw == (raw_of(answer),) and reply.rtt_s is not None and 0 < reply.rtt_s < 5
    assert json.loads(keeper.wait(lambda d: d["type"] == codec.CLIENTS))["data"] == [
        {"path": str(keeper.path), "pid": "7"}
    ]
    proxy.stop()
    # Its registration went with it: the proxy's socket is signed off upstream, and removed.
    daemon.wait_json(lambda m: is_msg(m, "in", codec.CLIENT_DELETE, own))
    assert not Path(own).exists() and not local.exists()
    assert daemon.stop() == 0


def test_rename_paths_touches_socket_paths_only() -> None:
    raw = b'{"path": "\\/a", "type": "x", "data": {"path": "/a", "/a": "/a ", "tlm": "{\\"p\\":\\"/a\\"}"}}'
    assert codec.rename_paths(raw, {"/a": "/b<"}) == (
        b'{"path": "/b\\u003c", "type": "x", "data": {"path": "/b\\u003c", "/a": "/a ", "tlm": "{\\"p\\":\\"/a\\"}"}}'
    )
    assert codec.rename_paths(b"not json", {"/a": "/b"}) == b"not json"


# --- hostile and gone ----------------------------------------------------------------------------------


def test_hostile_senders_do_not_stop_another_client(sockdir: Path, keepers: list[Keeper]) -> None:
    upstream, local, control = sockdir / "up.sock", sockdir / "m.sock", sockdir / "c.sock"
    daemon = start_daemon(upstream, "--no-timeline", "--control", str(control))
    proxy = start_proxy(local, upstream, sockdir / "px.sock", None, "limits.max_frame_bytes=65536")
    keeper = Keeper(sockdir / "k.sock", local)
    keepers.append(keeper)
    keeper.register()
    own = own_path(daemon)

    stuck = send_hostile(local, b'{"path": "/tmp/x", "ty', finish=False)  # never finishes
    send_raw(local, b"\xff garbage {")
    send_hostile(local, b'{"path": "/tmp/y", "type": "daemon_ping", "data": "' + b"a" * 200_000 + b'"}')
    send_raw(local, json.dumps({"path": str(local), "type": codec.PING}).encode())

    # Garbage is relayed as it came, and shown malformed on both sides.
    bad = proxy.wait(lambda m: m.direction == "out" and m.error is not None and m.raw == (b"\xff garbage {",))
    assert bad.kind == "invalid"
    assert daemon.wait_json(lambda m: m["direction"] == "in" and m["error"] and raw_of(m) == b"\xff garbage {")
    with concurrent.futures.ThreadPoolExecutor(8) as pool:  # a flood: some lost, nobody held up
        list(pool.map(lambda n: flood(local, b"flood %d" % n), range(400)))
    proxy.noted("over the 65536-byte limit")
    proxy.noted(f"names {local}, the proxy's or upstream's own socket")

    publish_via(control)
    event = daemon.wait_json(lambda m: is_msg(m, "out", EVENT, own))
    assert keeper.wait(lambda d: d["type"] == codec.TRACIM_EVENT) == raw_of(event).replace(
        quoted(upstream), quoted(local)
    )
    assert stuck is not None
    stuck.close()
    proxy.stop()
    assert daemon.stop() == 0


def test_a_client_gone_is_reported_and_signed_off_upstream(sockdir: Path, keepers: list[Keeper]) -> None:
    upstream, local = sockdir / "up.sock", sockdir / "m.sock"
    daemon = start_daemon(upstream, "--no-timeline")
    proxy = start_proxy(local, upstream, sockdir / "px.sock")
    gone, staying = Keeper(sockdir / "g.sock", local), Keeper(sockdir / "s.sock", local)
    keepers.extend([gone, staying])
    gone.register()
    first = own_path(daemon)
    staying.register()
    second = own_path(daemon)
    gone.close()  # its socket file goes: the next ping cannot reach it
    link = proxy.wait(lambda m: m.channel == "link" and m.kind == "disconnected" and m.endpoint == "client")
    assert link.payload["url"] == str(gone.path)
    proxy.noted(f"{gone.path} is gone")
    delete = daemon.wait_json(lambda m: is_msg(m, "in", codec.CLIENT_DELETE, first))
    assert delete["payload"]["path"] == first
    # The others hear of it by the client's own path, as they hear of every client.
    staying.wait(lambda d: d.get("type") == codec.CLIENT_DELETED and d["data"]["path"] == str(gone.path))
    # The other goes on being served: pings arrive and its pongs keep it registered.
    count = sum(parsed(raw).get("type") == codec.PING for raw in staying.documents)
    holds_within(
        lambda: sum(parsed(raw).get("type") == codec.PING for raw in list(staying.documents)) >= count + 3,
        20,
        "pings for the client left",
    )
    assert not daemon.popen.poll()
    assert not [line for line in daemon.lines if second in line and '"dropped"' in line]
    proxy.stop()
    assert daemon.stop() == 0


def test_the_daemon_absent_then_present(sockdir: Path, keepers: list[Keeper]) -> None:
    upstream, local = sockdir / "up.sock", sockdir / "m.sock"
    proxy = start_proxy(local, upstream, sockdir / "px.sock")
    keeper = Keeper(sockdir / "k.sock", local)
    keepers.append(keeper)
    keeper.register()
    down = proxy.wait(lambda m: m.channel == "link" and m.kind == "disconnected" and m.endpoint == "master")
    assert down.payload["url"] == str(upstream)
    proxy.noted(f"upstream {upstream}")
    daemon = start_daemon(upstream, "--no-timeline")
    # The proxy signs the client on again as soon as the daemon's socket is there.
    own = own_path(daemon)
    assert proxy.wait(lambda m: m.channel == "link" and m.kind == "connected").payload == {"url": str(upstream)}
    info = keeper.wait(lambda d: d["type"] == codec.ACCOUNT_INFO)
    assert json.loads(info)["path"] == str(local)
    assert daemon.wait_json(lambda m: is_msg(m, "in", codec.PONG, own))["error"] is None
    proxy.stop()
    assert daemon.stop() == 0


# --- fault rules through the relay ---------------------------------------------------------------------


def faults(*rules: str) -> Faults:
    return Faults([parse_rule(rule) for rule in rules], seed=1)


def test_a_drop_rule_drops_what_it_names(sockdir: Path, keepers: list[Keeper]) -> None:
    upstream, local = sockdir / "up.sock", sockdir / "m.sock"
    daemon = start_daemon(upstream, "--no-timeline")
    proxy = start_proxy(local, upstream, sockdir / "px.sock", faults("drop kind=daemon_ping direction=in"))
    keeper = Keeper(sockdir / "k.sock", local)
    keepers.append(keeper)
    keeper.register()
    own = own_path(daemon)
    daemon.wait_json(lambda m: is_msg(m, "out", codec.PING, own))
    dropped = proxy.wait(lambda m: m.kind == codec.PING and m.fault == "dropped", what="dropped ping")
    assert dropped.direction == "in"
    keeper.wait(lambda d: d["type"] == codec.ACCOUNT_INFO)
    assert not [raw for raw in keeper.documents if parsed(raw).get("type") == codec.PING]
    # No pong, so the daemon drops the client at its next tick, as it would a silent one.
    daemon.wait_json(lambda m: m["channel"] == "link" and m["kind"] == "dropped" and m["payload"]["url"] == own)
    proxy.stop()
    daemon.stop()


def test_a_disconnect_rule_signs_off_and_on_again(sockdir: Path, keepers: list[Keeper]) -> None:
    upstream, local, control = sockdir / "up.sock", sockdir / "m.sock", sockdir / "c.sock"
    daemon = start_daemon(upstream, "--no-timeline", "--control", str(control))
    keeper = Keeper(sockdir / "k.sock", local)
    keepers.append(keeper)
    proxy = start_proxy(local, upstream, sockdir / "px.sock", faults("disconnect after=500ms"))
    keeper.register()
    own = own_path(daemon)
    cut = proxy.wait(lambda m: m.channel == "link" and m.kind == "disconnected" and m.fault == "disconnected")
    assert cut.payload == {"reason": "fault rule"}
    daemon.wait_json(lambda m: is_msg(m, "in", codec.CLIENT_DELETE, own))
    assert own_path(daemon) == own  # signed on again, under the same socket
    publish_via(control)
    event = daemon.wait_json(lambda m: is_msg(m, "out", EVENT, own))
    assert keeper.wait(lambda d: d["type"] == codec.TRACIM_EVENT) == raw_of(event).replace(
        quoted(upstream), quoted(local)
    )
    proxy.stop()
    daemon.stop()


# --- the command line ----------------------------------------------------------------------------------


def test_fieldctl_proxy_between_the_real_sdk_and_simulate_tracim(sockdir: Path) -> None:
    upstream, local, control, sdk = sockdir / "up.sock", sockdir / "m.sock", sockdir / "c.sock", sockdir / "sdk.sock"
    daemon = start_daemon(upstream, "--no-timeline", "--control", str(control))
    proxy = Proc(
        [
            *FIELDCTL,
            "proxy",
            "tracim",
            "--endpoint",
            f"master=unix://{local}",
            "--endpoint",
            f"client=unix://{sockdir / 'px.sock'}",
            "--upstream-endpoint",
            f"master=unix://{upstream}",
            "--fault",
            "delay 50ms kind=content.*",
            "--json",
        ]
    )
    proxy.wait_json(lambda m: m["channel"] == "link" and m["kind"] == "bound" and m["payload"]["url"] == str(local))
    peer = Proc([str(peer_python("tracim")), str(PEER_SCRIPT), "--master", str(local), "--client", str(sdk)])
    peer.wait_json(lambda m: m.get("ready") is True, timeout=20)
    sent = proxy.wait_json(lambda m: is_msg(m, "out", codec.CLIENT_ADD, sdk))
    own = own_path(daemon)
    assert raw_of(daemon.wait_json(lambda m: is_msg(m, "in", codec.PONG, own))).startswith(b'{"path": %s' % quoted(own))
    assert raw_of(proxy.wait_json(lambda m: is_msg(m, "out", codec.PONG, sdk))).startswith(b'{"path": %s' % quoted(sdk))
    assert own != str(sdk) and raw_of(sent).replace(quoted(sdk), quoted(own)).startswith(b'{"path": %s' % quoted(own))
    publish_via(control)
    event = daemon.wait_json(lambda m: is_msg(m, "out", EVENT, own))
    shown = proxy.wait_json(lambda m: is_msg(m, "in", EVENT, sdk))
    assert raw_of(shown) == raw_of(event) and shown["channel"] == "tracim" and shown["endpoint"] == "client"
    assert shown["fault"] == "delayed 50.0 ms" and "fault" not in sent
    assert peer.wait_json(lambda m: m.get("event_type") == EVENT)["path"] == str(local)
    assert peer.stop() == 0
    daemon.wait_json(lambda m: is_msg(m, "in", codec.CLIENT_DELETE, own))
    assert proxy.stop() == 0
    assert daemon.stop() == 0
    assert {path.name for path in sockdir.iterdir()} == set()


def test_a_corrupt_rule_sends_a_malformed_document_and_shows_the_one_that_came(
    sockdir: Path, keepers: list[Keeper]
) -> None:
    upstream, local, control = sockdir / "up.sock", sockdir / "m.sock", sockdir / "c.sock"
    daemon = start_daemon(upstream, "--no-timeline", "--control", str(control))
    proxy = start_proxy(local, upstream, sockdir / "px.sock", faults("corrupt channel=tracim"))
    keeper = Keeper(sockdir / "k.sock", local)
    keepers.append(keeper)
    keeper.register()
    own = own_path(daemon)
    keeper.wait(lambda d: d.get("type") == codec.ACCOUNT_INFO)
    publish_via(control)
    event = raw_of(daemon.wait_json(lambda m: is_msg(m, "out", EVENT, own)))
    shown = proxy.wait(lambda m: m.fault == "corrupted", what="corrupted event")
    assert shown.direction == "in" and shown.error is None and shown.raw[0] == event, "shown as it came, marked"
    sent = corrupt_frame(event).replace(quoted(upstream), quoted(local))  # cut, its paths renamed as far as it goes
    holds_within(lambda: sent in keeper.documents, 20, "the corrupted document at the client")
    proxy.stop()
    daemon.stop()


def test_simulate_tracim_with_a_fault_is_a_daemon_behind_a_proxy(sockdir: Path) -> None:
    master, client = sockdir / "m.sock", sockdir / "fc.sock"
    daemon = Proc(
        [
            *FIELDCTL,
            "simulate",
            "tracim",
            "--json",
            "--endpoint",
            f"master=unix://{master}",
            "--endpoint",
            f"client=unix://{sockdir / 'px.sock'}",
            "--fault",
            "drop kind=daemon_ping",
            *FAST,
        ]
    )
    daemon.wait_json(lambda m: m["channel"] == "link" and m["kind"] == "bound" and m["payload"]["url"] == str(master))
    plugin = start_client(master, client)
    dropped = daemon.wait_json(lambda m: m["kind"] == codec.PING and m.get("fault") == "dropped")
    assert dropped["direction"] == "out"  # as the simulator's side reads it
    assert plugin.stop() == 0
    assert not [line for line in plugin.output() if f'"kind":"{codec.PING}"' in line]
    assert daemon.stop() == 0
    assert {path.name for path in sockdir.iterdir()} == set()
