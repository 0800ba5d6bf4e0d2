"""What the connector's connections share: their timing, the refusal that ends a run, how
many commands are answered at once, and the scrubbing of every Message they show (spec §3.1,
§3.4, §4.3, §4.4; the connection's state is client_state's, its socket the stream runner's)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from fieldctl.protocols.core import redact
from fieldctl.protocols.core.errors import ConnectFailure
from fieldctl.protocols.core.message import Message
from fieldctl.protocols.sdk.contract import Emit

#: Commands answered at once. While this many are being answered the connection is not read: a
#: command flood then waits in the platform's buffers, not in our memory (nor as as many
#: --answer-with children). Answering ends when the response is out (respond), never waits on
#: the reads it holds up.
ANSWERS_AT_ONCE = 8


@dataclass(frozen=True)
class Timing:
    login_s: float = 20.0
    request_s: float = 10.0
    idle_ping_s: float = 15.0
    pong_s: float = 15.0

    @classmethod
    def from_profile(cls, profile: Any) -> Timing:
        """The profile's [timeouts] where it sets them, these defaults where it does not."""
        return cls(**{f.name: float(profile.setting(f"timeouts.{f.name}", f.default)) for f in fields(cls)})


class LoginRefused(ConnectFailure):
    """The platform refused our credentials or the login exchange: retrying cannot help."""


class _Scrubbing:
    """An Emit that scrubs every known secret from a Message before passing it on."""

    __slots__ = ("emit",)

    def __init__(self, emit: Emit) -> None:
        self.emit = emit

    def __call__(self, msg: Message) -> None:
        self.emit(redact.scrub(msg))


def scrubbed(emit: Emit) -> Emit:
    """`emit` with every known secret scrubbed first: a peer that echoes a password (in a reply,
    a gid, a command) must not get it shown. Wrapping twice scrubs once."""
    return emit if isinstance(emit, _Scrubbing) else _Scrubbing(emit)
