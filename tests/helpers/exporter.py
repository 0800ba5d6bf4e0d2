"""`fieldctl export prometheus` as a real process on a free loopback port, and its /metrics fetched
over HTTP."""

from __future__ import annotations

import urllib.request

from tests.helpers.processes import FIELDCTL, Proc


def start_exporter(path: str, *extra: str) -> tuple[Proc, str]:
    """Started on a free port (unless `extra` names one), once it says where it serves: (process, URL)."""
    proc = Proc([*FIELDCTL, "export", "prometheus", "--fleet", path, "--listen", "127.0.0.1:0", *extra])
    line = proc.wait_line(lambda text: text.startswith("serving http://"), timeout=30)
    return proc, line.split()[1]


def fetch(url: str, timeout: float = 10) -> str:
    """A 200 response's body."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        assert response.status == 200
        return response.read().decode()
