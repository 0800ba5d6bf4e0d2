"""Transports do only I/O: sockets, connection state, timeouts. No protocol knowledge."""

from __future__ import annotations

from typing import Any, Callable

#: Connection-state reports from a transport: (endpoint name, state, detail) -> None.
LinkCallback = Callable[[str, str, Any], None]
