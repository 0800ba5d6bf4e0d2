"""`export prometheus` against hostile HTTP clients, as a real process on loopback with its default
limits: oversized heads and too many headers refused (431) and closed; a trickled head cut off at
its deadline (408); one connection over the limit refused at once (503); a scraper's connection
kept alive; and 200 hostile clients at once, half sending headers of 64 KiB, half trickling theirs,
every one holding its connection open, while a scraper scrapes: every scrape answered within a
second, the exporter's peak memory within 100 MB of its idle size."""

from __future__ import annotations

import contextlib
import http.client
import socket
import subprocess
import time
import urllib.error

from fieldctl.protocols.transport.http_server import HttpLimits
from tests.helpers.exporter import fetch, start_exporter
from tests.helpers.hostile_http import start_flood
from tests.helpers.processes import peak_rss_kib

LIMITS = HttpLimits()  # the exporter's
GET = b"GET /metrics HTTP/1.1\r\nHost: exporter\r\n\r\n"


def address(url: str) -> tuple[str, int]:
    host, port = url.split("/")[2].rsplit(":", 1)
    return host, int(port)


def until_closed(sock: socket.socket, timeout: float) -> tuple[bytes, float]:
    """Everything the exporter sends until it closes the connection, and how long that took."""
    started = time.monotonic()
    sock.settimeout(timeout)
    received = b""
    while chunk := sock.recv(1 << 16):
        received += chunk
    return received, time.monotonic() - started


def test_oversized_heads_and_too_many_headers_are_refused_with_431_and_closed(fleet) -> None:
    exporter, url = start_exporter(str(fleet.path))
    for head in (
        b"GET /metrics HTTP/1.1\r\nX-Big: " + b"a" * (2 * LIMITS.max_head_bytes) + b"\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\n" + b"X: y\r\n" * (LIMITS.max_headers + 1) + b"\r\n",
    ):
        with socket.create_connection(address(url), timeout=10) as sock:
            sock.sendall(head)
            received, _ = until_closed(sock, 10)
        assert received.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"), received[:200]
        assert b"\r\nConnection: close\r\n" in received
    assert "fieldctl_up{" in fetch(url)
    assert exporter.stop() == 0


def test_a_trickled_head_is_cut_off_at_the_deadline(fleet) -> None:
    exporter, url = start_exporter(str(fleet.path))
    with socket.create_connection(address(url), timeout=10) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\n")
        started = time.monotonic()
        sock.settimeout(0.5)
        received = b""
        while time.monotonic() - started < LIMITS.head_timeout_s + 5:
            try:
                chunk = sock.recv(1 << 16)
            except TimeoutError:
                sock.sendall(b"X-Slow: 1\r\n")  # a header every half second: never the end of the head
                continue
            if not chunk:
                break
            received += chunk
        elapsed = time.monotonic() - started
    assert received.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), received[:200]
    assert LIMITS.head_timeout_s - 0.1 <= elapsed < LIMITS.head_timeout_s + 2, elapsed
    assert exporter.stop() == 0


def test_a_scraper_keeps_its_connection(fleet) -> None:
    exporter, url = start_exporter(str(fleet.path))
    host, port = address(url)
    scraper = http.client.HTTPConnection(host, port, timeout=10)
    try:
        sockets = []
        for _ in range(3):
            scraper.request("GET", "/metrics")
            sockets.append(scraper.sock)
            answer = scraper.getresponse()
            assert answer.status == 200 and b"fieldctl_up{" in answer.read()
            assert not answer.will_close
        assert sockets[0] is sockets[1] is sockets[2]  # one connection for all three
    finally:
        scraper.close()
    assert exporter.stop() == 0


def test_one_connection_over_the_limit_is_refused_at_once(fleet) -> None:
    exporter, url = start_exporter(str(fleet.path))
    held = []
    try:
        for _ in range(LIMITS.max_connections):  # each accepted in turn, before the next
            sock = socket.create_connection(address(url), timeout=10)
            held.append(sock)
            sock.sendall(b"GET /metrics HTTP/1.1\r\n")  # a head begun: busy for up to head_timeout_s
        with socket.create_connection(address(url), timeout=10) as extra:
            received, took = until_closed(extra, 10)
        assert received.startswith(b"HTTP/1.1 503 Service Unavailable\r\n"), received[:200]
        assert took < 1, took
    finally:
        for sock in held:
            sock.close()
    served_within(url, 10)
    assert exporter.stop() == 0


def served_within(url: str, timeout: float) -> None:
    """A scrape answered once the exporter has seen the connections that ended go (503 until then)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            assert "fieldctl_up{" in fetch(url)
            return
        except urllib.error.HTTPError as refused:
            assert refused.code == 503 and time.monotonic() < deadline, refused


#: How long the hostile clients keep at it, and how many of each kind.
FLOOD_S = 15
CLIENTS_OF_EACH = 100


def test_200_hostile_clients_neither_slow_a_scrape_nor_grow_the_exporter(fleet) -> None:
    exporter, url = start_exporter(str(fleet.path), "--probe-interval", "1")
    for _ in range(5):
        fetch(url)
    idle_kib = peak_rss_kib(exporter.popen.pid)
    attackers = start_flood(address(url)[1], FLOOD_S, CLIENTS_OF_EACH)
    slowest, scrapes = 0.0, 0
    while attackers.popen.poll() is None:
        started = time.monotonic()
        assert "fieldctl_up{" in fetch(url, timeout=5)  # a new connection each time, as a scraper's first
        slowest = max(slowest, time.monotonic() - started)
        scrapes += 1
        with contextlib.suppress(subprocess.TimeoutExpired):
            attackers.popen.wait(0.1)  # a scrape every tenth of a second, until the flood ends
    tally = attackers.wait_json(lambda line: "connections" in line)
    grown_mb = (peak_rss_kib(exporter.popen.pid) - idle_kib) / 1024
    assert slowest < 1, f"the slowest of {scrapes} scrapes took {slowest:.2f} s"
    assert grown_mb < 100, f"the exporter grew {grown_mb:.0f} MB over its idle size"
    assert tally["ended_by_server"] >= 2 * CLIENTS_OF_EACH, tally  # every client was cut off at least once
    assert exporter.stop() == 0
    assert "Traceback" not in exporter.popen.stderr.read()
