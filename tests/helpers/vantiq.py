"""Shared by the vantiq CLI and interop tests: a simulated Vantiq server on a free port, fieldctl's
connector against it, server.config files, and the rows both connectors answer with."""

from __future__ import annotations

import base64
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.peers import SCRIPTS, peer_python
from tests.helpers.ports import free_port
from tests.helpers.processes import FIELDCTL, Proc, cli_env

TOKEN = "tok-Zq8-very-secret-4711"
ROWS = [
    {"id": 1, "name": "alpha", "value": 10.5, "tags": ["a", "first"]},
    {"id": 2, "name": "beta", "value": 20, "tags": []},
    {"id": 3, "name": "gamma", "value": -3, "tags": ["last"]},
]
CONFIG = {"peerConfig": {"greeting": "hello", "rows": 3}}


@pytest.fixture
def workdir() -> Iterator[Path]:
    """Short paths (control sockets), a token file, a source config and a data file."""
    path = Path(tempfile.mkdtemp(prefix="vtq", dir="/tmp"))
    (path / "tokens").write_text(TOKEN + "\n")
    (path / "config.json").write_text(json.dumps(CONFIG))
    (path / "rows.json").write_text(json.dumps(ROWS))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def token_env() -> dict[str, str]:
    return cli_env(CONNECTOR_AUTH_TOKEN=TOKEN)


def is_msg(m: dict[str, Any], direction: str, channel: str, kind: str | None = None) -> bool:
    return m["direction"] == direction and m["channel"] == channel and (kind is None or m["kind"] == kind)


def is_link(m: dict[str, Any], state: str, **detail: Any) -> bool:
    payload = m.get("payload") or {}
    return m["channel"] == "link" and m["kind"] == state and all(payload.get(k) == v for k, v in detail.items())


def raw_text(m: dict[str, Any]) -> str:
    return base64.b64decode(m["raw"][0]).decode()


def start_server(
    work: Path, *extra: str, port: int | None = None, sources: tuple[str, ...] = ("peerSource",), control: bool = True
) -> tuple[Proc, str]:
    """`simulate vantiq` with the token file and one config per source; returns it and its URL."""
    url = f"ws://127.0.0.1:{port or free_port()}/api/v1/wsock/websocket"
    args = [arg for source in sources for arg in ("--source", f"{source}={work / 'config.json'}")]
    if control:
        args += ["--control", str(work / "ctl.sock")]
    proc = Proc(
        [
            *FIELDCTL,
            "simulate",
            "vantiq",
            "--json",
            "--endpoint",
            f"server={url}",
            "--token-file",
            str(work / "tokens"),
            *args,
            *extra,
        ]
    )
    proc.wait_json(lambda m: is_link(m, "bound") and m["endpoint"] == "server")
    if control:
        proc.wait_json(lambda m: is_link(m, "bound") and m["endpoint"] == "control")
    return proc, url


def write_server_config(work: Path, url: str, sources: str = "peerSource", **extra: str) -> Path:
    http_url = url.replace("ws://", "http://").split("/api/")[0]  # normalised back by the connector
    lines = [f"targetServer = {http_url}", f"sources = {sources}", *(f"{k}={v}" for k, v in extra.items())]
    (work / "server.config").write_text("\n".join(lines) + "\n")
    return work / "server.config"


def start_connector(work: Path, url: str, *extra: str, env: dict[str, str] | None = None) -> Proc:
    """fieldctl's connector (`register vantiq`) answering from rows.json (unless --answer-with)
    in 2-row chunks."""
    config = write_server_config(work, url)
    answers = [] if "--answer-with" in extra else ["--data-file", str(work / "rows.json")]
    return Proc(
        [
            *FIELDCTL,
            "register",
            "vantiq",
            "--json",
            "--config",
            str(config),
            *answers,
            "--set",
            "answers.chunk_rows=2",
            *extra,
        ],
        env=env or token_env(),
    )


def start_peer(work: Path, token: str = TOKEN) -> Proc:
    """The REAL vantiqconnectorsdk connector (tests/peers/vantiq_connector.py, in its own venv).
    The SDK reads server.config from its working directory: run it there."""
    script = SCRIPTS / "vantiq_connector.py"
    return Proc(
        ["/bin/sh", "-c", f'cd "{work}" && exec "{peer_python("vantiq")}" "{script}"'],
        env={**token_env(), "CONNECTOR_AUTH_TOKEN": token},
    )
