"""`proxy sepl` between fieldctl's two sides, `register sepl` (the connector) and `simulate sepl`
(the platform): the connector logs in, syncs and answers a command through it; every frame arrives
as the other side sent it; both directions are decoded, answers matched to their requests by
token and the command's response to the command, with rtt_s; the password never shows; a frame
that is not JSON is relayed and shown malformed; the connector going away closes its upstream."""

from __future__ import annotations

import base64
from pathlib import Path

from fieldctl.protocols.core.message import Message
from fieldctl.protocols.sdk.faults import Faults, parse_rule
from fieldctl.protocols.sepl.driver import Driver
from tests.helpers.ports import free_port
from tests.helpers.processes import FIELDCTL, Proc
from tests.helpers.proxying import ProxyRun
from tests.helpers.sepl import LAMP, PASSWORD, Platform, env, is_link


def raw(m: dict | Message) -> bytes:
    return m.raw[0] if isinstance(m, Message) else base64.b64decode(m["raw"][0])


def test_a_connector_logs_in_syncs_and_answers_through_the_proxy(tmp_path: Path) -> None:
    platform = Platform(tmp_path)
    local = f"ws://127.0.0.1:{free_port()}"
    with ProxyRun(Driver, "sepl", [f"platform={local}"], {"platform": platform.url}) as proxy:
        conn = Proc(
            [*FIELDCTL, "register", "sepl", "--json", "--endpoint", f"platform={local}", "--device", LAMP],
            env=env(),
        )
        conn.wait_json(is_link("ready"))

        # The login: the credentials masked, the answer matched to them.
        creds = proxy.wait(lambda m: m.channel == "login" and m.direction == "out")
        assert creds.payload["pw"] == "***" and creds.kind == "credentials"
        answer = proxy.wait(lambda m: m.channel == "login" and m.direction == "in")
        assert answer.payload["status"] == 200 and answer.rtt_s is not None and answer.rtt_s > 0
        # The sync: each request answered, the answer named after it, with its round trip.
        sent = [m.kind for m in proxy.seen("out", "device")]
        assert sent == ["clear", "put", "commit"]
        proxy.wait(lambda m: m.channel == "reply" and m.kind == "commit", what="the commit answered")
        replies = proxy.seen("in", "reply")
        assert [m.kind for m in replies] == sent and all(m.rtt_s is not None for m in replies)
        assert [m.id for m in replies] == [m.id for m in proxy.seen("out", "device")]

        # A command from the platform, the connector's response matched to it.
        result = platform.via("command", "dev-1:sepl_set", "--data", '{"level": 42}')
        assert result.returncode == 0, result.stderr
        command = proxy.wait(lambda m: m.channel == "command")
        response = proxy.wait(lambda m: m.channel == "response")
        assert command.direction == "in" and command.kind == response.kind == "dev-1:sepl_set"
        assert response.direction == "out" and response.rtt_s is not None and response.rtt_s > 0
        # Byte-exact: what each side sent is what the other side got.
        pushed = platform.proc.wait_json(lambda m: m["channel"] == "command" and m["direction"] == "out")
        assert raw(pushed) == raw(command)
        heard = platform.proc.wait_json(lambda m: m["channel"] == "response" and m["direction"] == "in")
        assert raw(heard) == raw(response)
        answered = conn.wait_json(lambda m: m["channel"] == "response" and m["direction"] == "out")
        assert raw(answered) == raw(response)

        # Not JSON: relayed as it is, shown malformed on the way and by the connector.
        assert platform.via("publish", "raw", "--data", '"this is {not json"').returncode == 0
        bad = proxy.wait(lambda m: m.channel == "malformed")
        assert bad.direction == "in" and bad.error and raw(bad) == b"this is {not json"
        assert conn.wait_json(lambda m: m["channel"] == "malformed")["payload"] == "this is {not json"

        # The connector goes: its connection and its upstream reported closed, the platform's too.
        assert conn.stop() == 0
        proxy.wait(lambda m: m.channel == "link" and m.kind == "disconnected" and "url" in m.payload)
        platform.proc.wait_json(is_link("disconnected"))
        shown = "\n".join(m.to_json() + "".join(f.decode("utf-8", "replace") for f in m.raw) for m in proxy.messages)
        assert PASSWORD not in shown
    platform.proc.stop()


def test_a_delay_rule_holds_the_platforms_frames_back_in_order(tmp_path: Path) -> None:
    platform = Platform(tmp_path)
    local = f"ws://127.0.0.1:{free_port()}"
    delayed = Faults([parse_rule("delay 100ms direction=in")])
    with ProxyRun(Driver, "sepl", [f"platform={local}"], {"platform": platform.url}, delayed) as proxy:
        conn = Proc(
            [*FIELDCTL, "register", "sepl", "--json", "--endpoint", f"platform={local}", "--device", LAMP],
            env=env(),
        )
        conn.wait_json(is_link("ready"))  # login and sync answers came late, in order
        frames = [m for m in proxy.messages if m.channel != "link"]
        assert {m.fault for m in frames if m.direction == "in"} == {"delayed 100.0 ms"}
        assert {m.fault for m in frames if m.direction == "out"} == {None}
        assert conn.stop() == 0
    platform.proc.stop()
