"""Secrets on the vantiq roles: the token, the credentials a server hands out (accessToken,
idToken) and the reconnectSecret never reach stdout, stderr, --record or raw frames, not even
when a hostile server echoes them back; an --answer-with child never gets the token."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.server import Server, ServerConnection, serve

from tests.helpers.processes import FIELDCTL, Proc, one_line, run_cli
from tests.helpers.vantiq import TOKEN, is_link, is_msg, start_server, token_env, write_server_config

SECRET = "rs-Fixed-2718281828"  # reconnectSecret in server.config; the SDK sends <source>_<value>
ACCESS, ID = "simulated-access-token", "id-token-Hq93-handed-out"


def outputs(*procs: Proc, files: tuple[Path, ...] = ()) -> list[str]:
    """Everything a user or a script could see: stdout, stderr, record files and their raw frames."""
    texts = []
    for proc in procs:
        texts += ["\n".join(proc.output()), proc.popen.stderr.read()]
    texts += [path.read_text() for path in files]
    return texts + raw_frames(texts)


def raw_frames(texts: list[str]) -> list[str]:
    import base64

    frames = []
    for text in texts:
        for line in text.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                frames += [base64.b64decode(frame).decode("utf-8", "replace") for frame in record.get("raw") or ()]
    return frames


def assert_absent(texts: list[str], *secrets: str) -> None:
    for text in texts:
        for secret in secrets:
            assert secret not in text, f"{secret!r} leaked: {text[:300]}"


def test_handed_out_credentials_and_the_reconnect_secret_never_appear(workdir: Path) -> None:
    server, url = start_server(workdir, "--record", str(workdir / "server.ndjson"), sources=("peerSource", "other"))
    config = write_server_config(workdir, url, reconnectSecret=SECRET)
    connector = Proc(
        [
            *FIELDCTL,
            "register",
            "vantiq",
            "--json",
            "--config",
            str(config),
            "--record",
            str(workdir / "register.ndjson"),
        ],
        env=token_env(),
    )
    reply = connector.wait_json(lambda m: is_msg(m, "in", "status") and "body" in m["payload"])
    assert reply["payload"]["body"]["userInfo"]["accessToken"] == "***"  # shown, masked
    connector.wait_json(lambda m: is_link(m, "ready"))
    sent = connector.wait_json(lambda m: is_msg(m, "out", "connectExtension"))
    assert sent["payload"] == {"reconnectSecret": "***"}
    published = run_cli(
        "publish", "vantiq", "other", "--data", '{"a": 1}', "--config", str(config), "--json", env=token_env()
    )
    assert published.returncode == 0, published.stderr
    shown = [json.loads(line) for line in published.stdout.splitlines()]
    assert any(
        m["channel"] == "status" and m["payload"].get("body", {}).get("userInfo", {}).get("accessToken") == "***"
        for m in shown
    )
    assert connector.stop() == 0 and server.stop() == 0
    texts = outputs(connector, server, files=(workdir / "server.ndjson", workdir / "register.ndjson"))
    texts += [published.stdout, published.stderr, *raw_frames([published.stdout])]
    assert_absent(texts, TOKEN, ACCESS, SECRET)
    assert any('"reconnectSecret": "***"' in text for text in texts)


class Echo:
    """A hostile Vantiq server: it hands out credentials and repeats the connector's token and
    reconnect secret in every later frame; with `refuse`, it refuses the token, quoting it."""

    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse
        self.server: Server = serve(self.handle, "127.0.0.1", 0)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"ws://127.0.0.1:{self.server.socket.getsockname()[1]}/api/v1/wsock/websocket"

    def handle(self, ws: ServerConnection) -> None:
        token = json.loads(ws.recv())["object"]
        if self.refuse:
            ws.send(json.dumps({"status": 401, "body": [{"code": "bad", "message": f"token {token} is not valid"}]}))
            return
        ws.send(
            json.dumps({"status": 200, "body": {"userInfo": {"accessToken": ACCESS, "idToken": ID}, "echo": token}})
        )
        secret = json.loads(ws.recv())["parameters"]["reconnectSecret"]
        echoed: dict[str, Any] = {"token": token, "again": f"{token}/{secret}", "access": ACCESS, "id": ID}
        ws.send(json.dumps({"status": 200, "body": echoed}))
        ws.send(
            json.dumps(
                {
                    "op": "configureExtension",
                    "resourceName": "sources",
                    "resourceId": "peerSource",
                    "object": {"config": echoed},
                }
            )
        )
        ws.send(json.dumps({"op": "publish", "resourceName": "sources", "resourceId": "peerSource", "object": echoed}))
        ws.send(json.dumps({"status": 500, "body": [{"code": "echo", "message": f"{token} {secret} {ID}"}]}))
        ws.send(json.dumps({"op": "testRequestsClientClose"}))
        ws.recv()  # until the connector closes

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def echo() -> Iterator[Callable[..., Echo]]:
    made: list[Echo] = []

    def make(**kwargs: Any) -> Echo:
        made.append(Echo(**kwargs))
        return made[-1]

    yield make
    for server in made:
        server.close()


def test_a_server_echoing_secrets_back_never_gets_them_shown(workdir: Path, echo: Callable[..., Echo]) -> None:
    server = echo()
    config = write_server_config(workdir, server.url, reconnectSecret=SECRET)
    connector = Proc(
        [
            *FIELDCTL,
            "register",
            "vantiq",
            "--json",
            "--config",
            str(config),
            "--record",
            str(workdir / "register.ndjson"),
        ],
        env=token_env(),
    )
    assert connector.wait(20) == 0  # testRequestsClientClose stopped its only source
    texts = outputs(connector, files=(workdir / "register.ndjson",))
    assert any("the server reported 500 echo" in text for text in texts)
    assert_absent(texts, TOKEN, ACCESS, ID, SECRET)


def test_a_refusal_quoting_the_token_does_not_print_it(workdir: Path, echo: Callable[..., Echo]) -> None:
    server = echo(refuse=True)
    config = str(write_server_config(workdir, server.url))
    for role in (
        ["register", "vantiq", "--record", str(workdir / "r.ndjson")],
        ["publish", "vantiq", "peerSource", "--data", "{}"],
    ):
        result = run_cli(*role, "--config", config, "--json", env=token_env())
        assert result.returncode == 3 and "refused the access token" in one_line(result.stderr)
        texts = [result.stdout, result.stderr, (workdir / "r.ndjson").read_text()]
        assert_absent(texts + raw_frames(texts), TOKEN)


ENVIRON = """
import json, os, sys
json.load(sys.stdin)
with open(os.environ["DUMP"], "wb") as out:
    out.write(open("/proc/self/environ", "rb").read())
print(json.dumps({"ok": True}))
"""


def test_an_answer_with_child_never_gets_the_token(workdir: Path) -> None:
    (workdir / "environ.py").write_text(ENVIRON)
    server, url = start_server(workdir)
    config = write_server_config(workdir, url)
    env = {**token_env(), "DUMP": str(workdir / "environ"), "SOME_COPY": f"Bearer {TOKEN}"}
    connector = Proc(
        [
            *FIELDCTL,
            "register",
            "vantiq",
            "--json",
            "--config",
            str(config),
            "--answer-with",
            f"{sys.executable} {workdir / 'environ.py'}",
        ],
        env=env,
    )
    connector.wait_json(lambda m: is_link(m, "ready"))
    result = run_cli("command", "vantiq", "query", "--data", "{}", "--via", str(workdir / "ctl.sock"), "--json")
    assert result.returncode == 0, result.stderr
    environ = (workdir / "environ").read_bytes()
    assert TOKEN.encode() not in environ and b"CONNECTOR_AUTH_TOKEN" not in environ
    assert b"VANTIQ_SOURCE=peerSource" in environ and b"PATH=" in environ
    connector.stop()
    server.stop()


def test_a_password_in_server_configs_url_is_masked_in_every_line(workdir: Path) -> None:
    """server.config is the connector's own file, not fieldctl's to refuse: its targetServer's
    password is masked as a secret, in the probe's line, the link lines and stderr."""
    from tests.helpers.ports import free_port

    password = "url-pass-31415"
    config = write_server_config(workdir, f"ws://admin:{password}@127.0.0.1:{free_port()}/api/v1/wsock/websocket")
    probed = run_cli("probe", "vantiq", "--config", str(config), env=token_env())
    probed_json = run_cli("probe", "vantiq", "--config", str(config), "--format", "json", env=token_env())
    registered = run_cli("register", "vantiq", "--config", str(config), "--max-retries", "1", "--json", env=token_env())
    assert probed.returncode == 2 and "admin:***@127.0.0.1" in probed.stdout
    assert json.loads(probed_json.stdout)["summary"].startswith("cannot connect to ws://admin:***@")
    assert registered.returncode == 3 and "admin:***@" in registered.stdout and "admin:***@" in registered.stderr
    for result in (probed, probed_json, registered):
        assert password not in result.stdout + result.stderr
