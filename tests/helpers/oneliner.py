"""`simulate oneliner` on free loopback ports, and what its clients print."""

from __future__ import annotations

import json
from typing import Any

from tests.helpers.ports import free_port
from tests.helpers.processes import FIELDCTL, Proc

PROFILE = "oneliner"


class Ports:
    def __init__(self) -> None:
        self.calls = f"tcp://127.0.0.1:{free_port()}"
        self.streams = f"tcp://127.0.0.1:{free_port()}"

    @property
    def args(self) -> list[str]:
        return ["--endpoint", f"calls={self.calls}", "--endpoint", f"streams={self.streams}"]


def start(ports: Ports, *extra: str) -> Proc:
    proc = Proc([*FIELDCTL, "simulate", PROFILE, "--json", *ports.args, *extra])
    for name in ("streams", "calls"):
        proc.wait_json(lambda m, name=name: m["channel"] == "link" and m["kind"] == "bound" and m["endpoint"] == name)
    return proc


def data_lines(stdout: str) -> list[dict[str, Any]]:
    return [m for m in map(json.loads, filter(str.strip, stdout.splitlines())) if m["channel"] != "link"]


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if not line.startswith("warning: ")]
    assert "Traceback" not in stderr and len(lines) == 1, stderr
    return lines[0]
