"""Nothing from a wire is obeyed by the terminal or parsed by rich: the live table, its panel and
the command render run in a real pty, fed by hostile peers; what they draw is read back."""

from __future__ import annotations

import json
import re
import time

import zmq

from tests.helpers.autotrainer import EVENT, HEARTBEAT, Device, event
from tests.helpers.ports import free_port
from tests.helpers.processes import FIELDCTL, cli_env
from tests.helpers.terminals import assert_nothing_obeyed, last_frame

OSC_TITLE = "\x1b]0;PWNED\x07"


def test_live_table_shows_hostile_kinds_and_identifiers_escaped(terminals, device: Device) -> None:
    term = terminals([*FIELDCTL, "listen", "autotrainer", *device.args])
    device.wait_subscriber()
    device.send(HEARTBEAT, {"identifier": f"rig{OSC_TITLE}", "version": "[bold]0.12[/bold]", "timestamp": time.time()})
    device.send(EVENT, {"kind": "[/oops]", "when": time.time(), "index": 1, "context": None})  # a kind or malformed
    device.send(
        EVENT,
        {
            "kind": 1,
            "when": time.time(),
            "index": 2,
            "context": {"note": "[/oops] [red]x", "raw": f"c{OSC_TITLE}\x1b[2J\x9b31m\x7f"},
        },
    )
    device.send(EVENT, event(1, 3))
    title = "fieldctl listen autotrainer"
    text = term.wait_for(lambda t: title in t and "received 4" in last_frame(t, title))
    frame = last_frame(text, title)
    assert "rig\\x1b]0;PWNED\\x07" in frame and "[bold]0.12[/bold]" in frame  # the panel
    assert "[/oops] [red]x" in frame  # a table cell: markup shown as text
    assert "MarkupError" not in text and "Traceback" not in text
    assert term.stop() == 0
    assert_nothing_obeyed(term.raw)


def test_command_render_escapes_the_reply_and_shows_the_round_trip(terminals) -> None:
    rep = zmq.Context.instance().socket(zmq.REP)
    rep.setsockopt(zmq.LINGER, 0)
    port = free_port()
    rep.bind(f"tcp://127.0.0.1:{port}")
    try:
        term = terminals(
            [
                *FIELDCTL,
                "command",
                "autotrainer",
                "get-status",
                "--no-wait",
                "--endpoint",
                f"commands=tcp://127.0.0.1:{port}",
                "--endpoint",
                "events=tcp://127.0.0.1:1",
            ]
        )
        assert rep.poll(20_000)
        request = json.loads(rep.recv())
        rep.send(
            json.dumps(
                {
                    "command": request["command"],
                    "nonce": request["nonce"],
                    "result": 200,
                    "errorMessage": f"fine{OSC_TITLE}[/oops]",
                    "data": {"state": f"up{OSC_TITLE}\x9b1m\x7f", "[/x]": 1},
                }
            ).encode()
        )
        assert term.wait(20) == 0, term.text
    finally:
        rep.close(0)
    text = term.text
    assert "Traceback" not in text and "MarkupError" not in text
    assert "fine\\x1b]0;PWNED\\x07[/oops]" in text  # summary line
    assert "up\\u001b]0;PWNED\\u0007\\x9b1m\\x7f" in text  # the data: JSON escapes C0, we the rest
    assert re.search(r"OK .*\(\d+\.\d ms\)", text), text  # the round-trip time
    assert_nothing_obeyed(term.raw)


def test_secrets_and_escapes_from_a_client_never_reach_the_simulators_outputs(terminals, tmp_path) -> None:
    """simulate sepl knows its password (SEPL_PASSWORD): a client that sends it back in any frame
    gets it masked in the live table and the --record file; hostile text is shown escaped."""
    import asyncio

    import websockets

    secret = "S3cret-Value-4711"
    port = free_port()
    record = tmp_path / "sim.ndjson"
    term = terminals(
        [*FIELDCTL, "simulate", "sepl", "--endpoint", f"platform=ws://127.0.0.1:{port}", "--record", str(record)],
        env=cli_env(SEPL_PASSWORD=secret),
    )
    term.wait_for(lambda t: "bound" in t)

    async def client() -> None:
        async with websockets.connect(f"ws://127.0.0.1:{port}/") as ws:
            await ws.send(json.dumps({"user": "sepl-user", "pw": secret, "gid": "", "token": "credentials"}))
            await asyncio.wait_for(ws.recv(), 10)
            await ws.send(
                json.dumps(
                    {
                        "handler": "put",
                        "token": "t1",
                        "payload": {"note": f"echo {secret}", "title": f"x{OSC_TITLE}[/oops]"},
                    }
                )
            )
            await ws.send(f'{{"handler": "event", "token": "{secret} \x1b]0;PWNED\x07 [/oops]"')  # not JSON
            await asyncio.wait_for(ws.recv(), 10)  # its answer: the frame was read

    asyncio.run(client())
    title = "fieldctl simulate sepl"
    term.wait_for(lambda t: title in t and "malformed 1" in last_frame(t, title))
    assert term.stop() == 0
    text = term.text
    assert secret not in text and "MarkupError" not in text and "Traceback" not in text
    assert_nothing_obeyed(term.raw)
    recorded = record.read_text()
    assert secret not in recorded and "S3cret" not in recorded
    assert len(recorded.splitlines()) >= 4
