"""Heartbeat expectations from the profile, turned into 'stale'/'alive' link messages, so a
silent device shows in NDJSON and recordings as well as in the live table."""

from __future__ import annotations

import asyncio
import time

from fieldctl.profiles import Profile
from fieldctl.protocols.core.message import Message, link
from fieldctl.protocols.sdk.contract import Emit


class HeartbeatWatch:
    """Wraps an Emit: passes every message on and reports when heartbeats stop and resume."""

    def __init__(self, profile: Profile, emit: Emit) -> None:
        self.profile, self.emit = profile, emit
        self.spec = profile.heartbeat
        self.last = time.monotonic()
        self.stale = False
        self._seen = asyncio.Event()

    def __call__(self, msg: Message) -> None:
        if msg.channel == self.spec.channel and msg.direction == "in" and not msg.error:
            self.last = time.monotonic()
            self._seen.set()
            if self.stale:
                self.stale = False
                self.emit(link(self.profile.name, "heartbeat", "alive"))
        self.emit(msg)

    async def run(self) -> None:
        if self.spec.channel is None:
            return
        while True:
            due = self.last + self.spec.stale_after_s - time.monotonic()
            if due > 0:
                await asyncio.sleep(due)
                continue
            self.stale = True
            self.emit(
                link(self.profile.name, "heartbeat", "stale", {"silent_s": round(time.monotonic() - self.last, 1)})
            )
            self._seen.clear()
            await self._seen.wait()
