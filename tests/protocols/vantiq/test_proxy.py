"""`proxy vantiq` between the REAL vantiqconnectorsdk connector and fieldctl's simulated Vantiq:
the connector works through it as it does directly, every frame arrives as the other side sent
it, both directions are decoded (queries matched to their responses with rtt_s), and the
connector's token and reconnect secret are masked in everything the proxy shows; in-process (the
driver's role in a thread) and as `fieldctl proxy vantiq` on the command line."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from fieldctl.protocols.core.message import Message
from fieldctl.protocols.vantiq.driver import Driver
from tests.helpers.ports import free_port
from tests.helpers.processes import FIELDCTL, Proc, run_cli
from tests.helpers.proxying import ProxyRun
from tests.helpers.vantiq import ROWS, TOKEN, is_link, is_msg, start_peer, start_server, write_server_config

PATH = "/api/v1/wsock/websocket"


def raw(m: dict | Message) -> bytes:
    if isinstance(m, Message):
        return m.raw[0]
    return base64.b64decode(m["raw"][0])


def test_the_real_connector_works_through_the_proxy_byte_exact_and_masked(workdir: Path) -> None:
    server, upstream = start_server(workdir)
    local = f"ws://127.0.0.1:{free_port()}{PATH}"
    with ProxyRun(Driver, "vantiq", [f"server={local}"], {"server": upstream}) as proxy:
        write_server_config(workdir, local)
        peer = start_peer(workdir)
        assert peer.wait_json(lambda m: m.get("event") == "connected", timeout=30)["config"] == {
            "peerConfig": {"greeting": "hello", "rows": 3}
        }
        server.wait_json(lambda m: is_link(m, "configured", source="peerSource"))
        ctl = str(workdir / "ctl.sock")

        # Vantiq -> connector: a publish, and the notification it makes the connector send back.
        published = run_cli("publish", "vantiq", "peerSource", "--data", '{"temperature": 21.5}', "--via", ctl)
        assert published.returncode == 0, published.stderr
        sent = server.wait_json(lambda m: is_msg(m, "out", "publish", "peerSource"))
        relayed = proxy.wait(lambda m: m.direction == "in" and m.channel == "publish", what="the publish relayed")
        assert relayed.kind == "peerSource" and relayed.payload == {"temperature": 21.5}
        assert raw(relayed) == raw(sent)
        heard = server.wait_json(lambda m: is_msg(m, "in", "notification", "peerSource"))
        notified = proxy.wait(lambda m: m.direction == "out" and m.channel == "notification")
        assert raw(notified) == raw(heard) and notified.payload["received"] == {"temperature": 21.5}

        # A query, its responses matched by reply address, the first with its round trip.
        queried = run_cli("command", "vantiq", "query", "--data", '{"params": {"chunk": 2}}', "--via", ctl, "--json")
        assert queried.returncode == 0, queried.stderr
        query = proxy.wait(lambda m: m.direction == "in" and m.channel == "query")
        proxy.wait(lambda m: m.channel == "response" and m.payload["status"] == 200, what="the final response")
        responses = proxy.seen("out", "response")
        assert [r.id for r in responses] == [query.id, query.id] and [r.kind for r in responses] == ["peerSource"] * 2
        assert responses[0].rtt_s is not None and responses[0].rtt_s > 0 and responses[1].rtt_s is None
        assert [row for r in responses for row in r.payload["body"]] == ROWS
        heard_responses = [server.wait_json(lambda m: is_msg(m, "in", "response")) for _ in responses]
        assert [raw(m) for m in heard_responses] == [raw(r) for r in responses]

        # The token and the reconnect secret: relayed as they are, shown masked.
        validate = proxy.wait(lambda m: m.channel == "validate")
        assert validate.direction == "out" and validate.payload == {"credentials": "***"}
        connect = proxy.wait(lambda m: m.channel == "connectExtension")
        assert connect.payload == {"reconnectSecret": "***"} and connect.kind == "peerSource"
        assert json.loads(raw(connect))["parameters"] == {"reconnectSecret": "***"}
        shown = "\n".join(m.to_json() + "".join(f.decode("utf-8", "replace") for f in m.raw) for m in proxy.messages)
        assert TOKEN not in shown and "peerSource_" not in shown  # the SDK's secret: SOURCE_uuid

        assert run_cli("command", "vantiq", "test-close", "--via", ctl).returncode == 0
        assert peer.wait(15) == 0
        ends = proxy.wait(lambda m: m.channel == "link" and m.kind == "disconnected" and "url" in m.payload)
        assert ends.payload["code"] == 1000
    assert server.stop() == 0
    assert not [note for note in proxy.notes if "failed" in note]


def proxied(work: Path, *extra: str) -> tuple[Proc, Proc, Proc, str]:
    """`simulate vantiq`, `fieldctl proxy vantiq ... --json` in front of it, and the real connector
    configured through the proxy: (server, proxy, connector, the server's control socket)."""
    server, upstream = start_server(work)
    local = f"ws://127.0.0.1:{free_port()}{PATH}"
    args = ["--upstream-endpoint", f"server={upstream}", "--endpoint", f"server={local}", *extra, "--json"]
    proxy = Proc([*FIELDCTL, "proxy", "vantiq", *args])
    proxy.wait_json(lambda m: is_link(m, "bound", url=local))
    write_server_config(work, local)
    peer = start_peer(work)
    peer.wait_json(lambda m: m.get("event") == "connected", timeout=30)
    return server, proxy, peer, str(work / "ctl.sock")


def test_fieldctl_proxy_on_the_command_line_between_the_real_connector_and_simulate(workdir: Path) -> None:
    server, proxy, peer, ctl = proxied(workdir)
    assert proxy.wait_json(lambda m: is_msg(m, "out", "validate"))["payload"] == {"credentials": "***"}
    assert run_cli("publish", "vantiq", "peerSource", "--data", '{"level": 3}', "--via", ctl).returncode == 0
    sent = server.wait_json(lambda m: is_msg(m, "out", "publish", "peerSource"))
    relayed = proxy.wait_json(lambda m: is_msg(m, "in", "publish", "peerSource"))
    assert raw(relayed) == raw(sent) and relayed["payload"] == {"level": 3}
    notified = proxy.wait_json(lambda m: is_msg(m, "out", "notification", "peerSource"))
    assert raw(notified) == raw(server.wait_json(lambda m: is_msg(m, "in", "notification", "peerSource")))
    assert run_cli("command", "vantiq", "test-close", "--via", ctl).returncode == 0
    assert peer.wait(15) == 0
    proxy.wait_json(lambda m: is_link(m, "disconnected", code=1000) and "peer" in m["payload"])
    assert proxy.stop() == 0
    assert TOKEN not in "\n".join(proxy.output()) + proxy.popen.stderr.read()
    assert server.stop() == 0


def test_a_drop_rule_keeps_a_publish_from_the_real_connector_and_says_so(workdir: Path) -> None:
    server, proxy, peer, ctl = proxied(workdir, "--fault", "drop channel=publish direction=in")
    assert run_cli("publish", "vantiq", "peerSource", "--data", '{"level": 3}', "--via", ctl).returncode == 0
    assert proxy.wait_json(lambda m: is_msg(m, "in", "publish", "peerSource"))["fault"] == "dropped"
    # The query went after the publish on the same websocket: had the publish got through, the
    # connector would have handled it first.
    queried = run_cli("command", "vantiq", "query", "--data", '{"params": {"id": 2}}', "--via", ctl)
    assert queried.returncode == 0, queried.stderr
    peer.wait_json(lambda m: m.get("event") == "query")
    assert not [line for line in peer.lines if '"published"' in line]
    assert proxy.stop() == 0
    assert server.stop() == 0
