"""100,000 events at full speed (`publish autotrainer --from FILE`) into `listen --json --record`
and into the live table (in a pty) with `--record`: every event arrives in every output, in order."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.helpers.autotrainer import Endpoints
from tests.helpers.processes import FIELDCTL, Proc, cli_env
from tests.helpers.terminals import last_frame

TOTAL = 100_000
BOUND_S = 240  # two shared cores: generous, the test waits on the exit, not on the bound


@pytest.fixture(scope="module")
def burst(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("load") / "burst.ndjson"
    with path.open("w") as out:
        for i in range(TOTAL):
            out.write(f'{{"channel":"event","kind":"trialStarted","payload":{{"i":{i}}}}}\n')
    return path


def publish(burst: Path, endpoints: Endpoints) -> Proc:
    """The device side, bound before anyone connects (a refused connection is an error); it
    waits for the listener's subscription before the burst, so ZeroMQ's slow joiner loses nothing."""
    proc = Proc([*FIELDCTL, "publish", "autotrainer", "--from", str(burst), "--wait", "60", "--json", *endpoints.args])
    proc.wait_json(lambda m: m["channel"] == "link" and m["kind"] == "bound" and m["endpoint"] == "events", 60)
    return proc


def indexes(text: str) -> list[int]:
    return [m["payload"]["context"]["i"] for m in map(json.loads, text.splitlines()) if m["channel"] == "event"]


def test_burst_into_listen_json_and_record(burst: Path, endpoints: Endpoints, tmp_path: Path) -> None:
    record, out = tmp_path / "rec.ndjson", tmp_path / "out.ndjson"
    publisher = publish(burst, endpoints)
    with out.open("w") as stdout:
        listener = subprocess.Popen(
            [
                *FIELDCTL,
                "listen",
                "autotrainer",
                "--json",
                "--record",
                str(record),
                "--count",
                str(TOTAL),
                "--timeout",
                str(BOUND_S),
                *endpoints.args,
            ],
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            stdin=subprocess.DEVNULL,
            env=cli_env(),
        )
        assert publisher.wait(BOUND_S) == 0, publisher.stderr_now()
        assert listener.wait(BOUND_S) == 0, listener.stderr.read()  # type: ignore[union-attr]
    expected = list(range(TOTAL))
    assert indexes(out.read_text()) == expected
    assert indexes(record.read_text()) == expected


def test_burst_into_the_live_table_with_record(terminals, burst: Path, endpoints: Endpoints, tmp_path: Path) -> None:
    record = tmp_path / "rec.ndjson"
    publisher = publish(burst, endpoints)
    term = terminals(
        [
            *FIELDCTL,
            "listen",
            "autotrainer",
            "--record",
            str(record),
            "--count",
            str(TOTAL),
            "--timeout",
            str(BOUND_S),
            *endpoints.args,
        ]
    )
    assert publisher.wait(BOUND_S) == 0, publisher.stderr_now()
    assert term.wait(BOUND_S) == 0, term.text[-3000:]
    assert f"received {TOTAL}" in last_frame(term.text, "fieldctl listen autotrainer")
    assert indexes(record.read_text()) == list(range(TOTAL))
