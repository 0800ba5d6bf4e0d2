"""What every protocol module offers the CLI, so a new system needs no CLI changes.

A protocol package exposes ``Driver``, a subclass of ``BaseDriver``; roles it does not play
raise ``Unsupported``. Roles report traffic through ``emit`` (Messages, link states included)
and human warnings through ``notify``; they never print.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

from fieldctl.profiles import Profile

from .errors import NagiosCode, Unsupported
from .message import Message

Emit = Callable[[Message], None]
Notify = Callable[[str], None]


@dataclass
class Stats:
    """Counters the views show; updated by roles and by the CLI's sink."""

    received: int = 0
    malformed: int = 0
    duplicates: int = 0
    sent: int = 0


@dataclass
class CommandOutcome:
    ok: bool
    summary: str
    messages: list[Message] = field(default_factory=list)


@dataclass
class ProbeReport:
    status: NagiosCode
    summary: str
    metrics: dict[str, float] = field(default_factory=dict)
    warn: float = 0.0
    crit: float = 0.0


class BaseDriver:
    def __init__(self, profile: Profile, notify: Notify) -> None:
        self.profile = profile
        self.notify = notify
        self.stats = Stats()

    def summarize(self, msg: Message) -> str:
        """A short text for one table cell."""
        return "" if msg.payload is None else str(msg.payload)[:120]

    def publication(self, kind: str, data: Any) -> Message:
        """The Message `publish PROFILE KIND --data JSON` sends."""
        raise Unsupported(f"publish KIND is not supported for profile {self.profile.name}")

    async def listen(self, emit: Emit, *, channels: set[str] | None = None) -> None:
        raise Unsupported(f"listen is not supported for profile {self.profile.name}")

    async def command(self, name: str, data: Any, *, options: dict[str, Any], timeout: float, wait: bool,
                      emit: Emit) -> CommandOutcome:
        raise Unsupported(f"command is not supported for profile {self.profile.name}")

    async def publish(self, messages: list[Message], emit: Emit, *, wait_s: float, realtime: bool) -> None:
        raise Unsupported(f"publish is not supported for profile {self.profile.name}")

    async def simulate(self, emit: Emit, *, scenario: list[Message] | None, timeline: bool) -> None:
        raise Unsupported(f"simulate is not supported for profile {self.profile.name}")

    async def probe(self, *, warn: float, crit: float) -> ProbeReport:
        raise Unsupported(f"probe is not supported for profile {self.profile.name}")

    async def control(self, verb: str, msg: Message, emit: Emit) -> CommandOutcome:
        """A request on a running simulator's control path (see protocols/control.py)."""
        raise Unsupported(f"the {self.profile.name} simulator does not take {verb} requests")


def driver_for(profile: Profile, notify: Notify) -> BaseDriver:
    module = importlib.import_module(f"fieldctl.protocols.{profile.protocol}")
    return module.Driver(profile, notify)
