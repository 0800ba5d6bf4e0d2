"""Free loopback ports for a process a test starts, which binds them a moment later.

A port the kernel picks (bind to port 0) comes from the range it also gives outgoing connections
(ip_local_port_range), and the tests make thousands of those (a fleet follows 2,000 devices): one
may take the port before the process binds it. So the ports come from below that range, each handed
out once per test process."""

from __future__ import annotations

import functools
import random
import socket

#: The lowest port handed out: above the well-known and common service ports.
LOWEST = 20000
_handed: set[int] = set()
_pick = random.SystemRandom()  # pytest-randomly reseeds `random` before every test


@functools.cache
def _outgoing_from() -> int:
    """Where the kernel's range for outgoing connections starts."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as text:
            return int(text.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    top = _outgoing_from()
    if top - LOWEST > 1000:
        for _ in range(200):
            port = _pick.randrange(LOWEST, top)
            if port not in _handed and _bindable(port):
                _handed.add(port)
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # no room below: the kernel's pick
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    _handed.add(port)
    return port
