"""A connection that cannot be made reads the same on every transport: refused, a host name that
does not resolve (`.invalid`, which RFC 6761 keeps from ever resolving), a socket file that is not
there or not ours, an unsupported URL scheme. On real loopback and Unix sockets; then through the
command line, where each cause keeps its exit code."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from fieldctl.protocols.core.errors import ConnectFailure, UsageError
from fieldctl.protocols.tracim.paths import socket_path
from fieldctl.protocols.transport import failures, tcp, unix, websocket, within, zeromq
from tests.helpers.ports import free_port
from tests.helpers.processes import cli_env, one_line, run_cli

UNRESOLVABLE = "nohost.invalid"


async def zeromq_connect(url: str) -> None:
    sub = zeromq.subscriber("events", url, [])
    try:
        await within(sub.recv(), 10)
    finally:
        sub.close()


async def websocket_connect(url: str) -> None:
    await websocket.open_connection(url, timeout=10)


async def tcp_connect(url: str) -> None:
    await tcp.connect(url, 10)


CONNECTS: dict[str, tuple[str, Callable[[str], Awaitable[None]]]] = {
    "zeromq": ("tcp", zeromq_connect),
    "websocket": ("ws", websocket_connect),
    "tcp": ("tcp", tcp_connect),
}


def failure(connect: Callable[[str], Awaitable[None]], url: str) -> BaseException:
    with pytest.raises((ConnectFailure, UsageError)) as caught:
        asyncio.run(connect(url))
    return caught.value


@pytest.mark.parametrize("transport", CONNECTS)
def test_a_refused_connection_reads_the_same_on_every_transport(transport: str) -> None:
    scheme, connect = CONNECTS[transport]
    url = f"{scheme}://127.0.0.1:{free_port()}"
    error = failure(connect, url)
    assert isinstance(error, ConnectFailure) and str(error).endswith(f"to {url}: {failures.REFUSED}"), error


@pytest.mark.parametrize("transport", CONNECTS)
def test_a_host_name_that_does_not_resolve_says_so(transport: str) -> None:
    scheme, connect = CONNECTS[transport]
    url = f"{scheme}://{UNRESOLVABLE}:{free_port()}"
    error = failure(connect, url)
    assert isinstance(error, ConnectFailure), error
    assert str(error).endswith(f"to {url}: cannot resolve host name '{UNRESOLVABLE}'"), error


@pytest.mark.parametrize("transport", CONNECTS)
def test_an_unsupported_scheme_is_a_usage_error(transport: str) -> None:
    _, connect = CONNECTS[transport]
    url = f"foo://127.0.0.1:{free_port()}"
    error = failure(connect, url)
    assert isinstance(error, UsageError) and not isinstance(error, ConnectFailure), error
    assert f"{url}: unsupported URL scheme 'foo' (expected " in str(error), error


def test_a_unix_socket_path_with_a_scheme_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=r"--master: foo://x: unsupported URL scheme 'foo' \(expected unix://"):
        socket_path("foo://x", "--master")


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    """A directory anyone may enter (a short path: socket paths are limited), removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="fieldctl-") as name:
        os.chmod(name, 0o755)
        yield Path(name)


def stale_socket(path: Path) -> None:
    """A socket file nobody listens on any more: connecting to it is refused."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.close()


def test_unix_sockets_refused_missing_and_forbidden_read_the_same(socket_dir: Path) -> None:
    stale = socket_dir / "stale.sock"
    stale_socket(stale)
    missing = socket_dir / "missing.sock"
    for path, reason in ((stale, failures.REFUSED), (missing, failures.NO_SOCKET_FILE)):
        with pytest.raises(ConnectFailure) as caught:
            asyncio.run(unix.connect(str(path), 5))
        assert str(caught.value) == f"cannot connect to {path}: {reason}"
        with pytest.raises(ConnectFailure) as caught:
            asyncio.run(zeromq_connect(f"ipc://{path}"))
        assert str(caught.value) == f"cannot connect events to ipc://{path}: {reason}"


def test_a_socket_file_that_is_not_ours_is_permission_denied(socket_dir: Path) -> None:
    """Root may connect anyway, so the attempt is made by a child that is nobody when the tests
    run as root (forked: nobody may not run this interpreter)."""
    path = socket_dir / "private.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen()
    os.chmod(path, 0o600 if os.geteuid() == 0 else 0)
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover  (the child reports through the pipe)
        text = "connected"
        try:
            if os.geteuid() == 0:
                os.setgid(65534)
                os.setuid(65534)
            asyncio.run(unix.connect(str(path), 5))
        except ConnectFailure as exc:
            text = str(exc)
        finally:
            os.write(writer, text.encode())
            os._exit(0)
    os.close(writer)
    try:
        os.waitpid(child, 0)
        said = os.read(reader, 4096).decode()
    finally:
        os.close(reader)
        server.close()
    assert said == f"cannot connect to {path}: {failures.PERMISSION_DENIED}"


# Through the command line: the same words, and the exit codes of the README's table.


def test_a_refused_port_reads_the_same_for_zeromq_and_websocket_profiles() -> None:
    port = free_port()
    zmq_url, ws_url = f"tcp://127.0.0.1:{port}", f"ws://127.0.0.1:{port}"
    by_zeromq = run_cli("command", "autotrainer", "get-status", "--endpoint", f"commands={zmq_url}")
    by_websocket = run_cli("register", "sepl", "--endpoint", f"platform={ws_url}", env=cli_env(SEPL_PASSWORD="pw"))
    assert (by_zeromq.returncode, by_websocket.returncode) == (3, 3)
    assert one_line(by_zeromq.stderr) == f"fieldctl: cannot connect commands to {zmq_url}: {failures.REFUSED}"
    assert one_line(by_websocket.stderr) == f"fieldctl: cannot connect to {ws_url}: {failures.REFUSED}"


def test_an_unknown_host_and_an_unsupported_scheme_on_the_command_line() -> None:
    port = free_port()
    for endpoint in (f"commands=tcp://{UNRESOLVABLE}:{port}",):
        result = run_cli("command", "autotrainer", "get-status", "--endpoint", endpoint)
        assert result.returncode == 3 and f"cannot resolve host name '{UNRESOLVABLE}'" in one_line(result.stderr)
    sepl = run_cli(
        "register", "sepl", "--endpoint", f"platform=ws://{UNRESOLVABLE}:{port}", env=cli_env(SEPL_PASSWORD="pw")
    )
    assert sepl.returncode == 3 and f"cannot resolve host name '{UNRESOLVABLE}'" in one_line(sepl.stderr)
    zmq_scheme = run_cli("command", "autotrainer", "get-status", "--endpoint", f"commands=foo://127.0.0.1:{port}")
    assert zmq_scheme.returncode == 2
    assert "unsupported URL scheme 'foo' (expected tcp:// or ipc://)" in one_line(zmq_scheme.stderr)
    ws_scheme = run_cli(
        "register", "sepl", "--endpoint", f"platform=http://127.0.0.1:{port}", env=cli_env(SEPL_PASSWORD="pw")
    )
    assert ws_scheme.returncode == 2
    assert "unsupported URL scheme 'http' (expected ws:// or wss://)" in one_line(ws_scheme.stderr)


def test_a_missing_tracim_daemon_socket_says_so(socket_dir: Path) -> None:
    missing = socket_dir / "master.sock"
    with contextlib.suppress(FileNotFoundError):
        missing.unlink()
    result = run_cli("command", "tracim", "get-clients", "--master", str(missing))
    assert result.returncode == 3, result
    assert one_line(result.stderr) == f"fieldctl: cannot connect to {missing}: {failures.NO_SOCKET_FILE}"
