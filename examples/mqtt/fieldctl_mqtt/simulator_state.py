"""The simulated device's state: its heartbeat count and its answers to commands. Requests in,
replies out, no I/O."""

from __future__ import annotations

from typing import Any


class DeviceState:
    def __init__(self, identifier: str, started: float) -> None:
        self.identifier, self.started = identifier, started
        self.beats = 0

    def heartbeat(self) -> dict[str, Any]:
        self.beats += 1
        return {"identifier": self.identifier, "seq": self.beats}

    def answer(self, code: str, data: Any, now: float) -> dict[str, Any]:
        """A reply's fields for command `code` (the topic's last level) with its data."""
        if code == "ping":
            return {"ok": True, "data": "pong"}
        if code == "echo":
            return {"ok": True, "data": data}
        if code == "get-status":
            status = {"identifier": self.identifier, "uptime_s": round(now - self.started, 3), "heartbeats": self.beats}
            return {"ok": True, "data": status}
        return {"ok": False, "error": f"unknown command {code!r}"}
