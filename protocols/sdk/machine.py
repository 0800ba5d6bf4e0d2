"""The one shape of a protocol's state, as websockets keeps its protocol objects: inputs in (a
frame that arrived, the clock), effects out (messages to report, frames to send, when to be woken
next), and no I/O. A runner (protocols/sdk/runners/) owns the sockets and drives a machine; a test
drives it with frames and times alone."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from fieldctl.protocols.core.message import Message

#: One frame as its transport carries it: a WebSocket text or binary message, a ZeroMQ multipart
#: message (its parts), a line, a document.
Frame = str | bytes | tuple[bytes, ...]


@dataclass
class Effects:
    """What one input makes the machine do. Runners act on them in this order: report `emit`,
    warn a person of `warn`, send `send` on the connection the input came from, then close it when
    `close` says why."""

    emit: list[Message] = field(default_factory=list)
    send: list[Frame] = field(default_factory=list)
    warn: list[str] = field(default_factory=list)
    #: The loop time (the runner's clock) at which `tick` is due next; None: no timer.
    wake_at: float | None = None
    #: Why the connection ends, once `send` is out; None: it stays open.
    close: str | None = None

    def __iadd__(self, other: Effects) -> Effects:
        self.emit += other.emit
        self.send += other.send
        self.warn += other.warn
        if other.wake_at is not None:
            self.wake_at = other.wake_at if self.wake_at is None else min(self.wake_at, other.wake_at)
        self.close = self.close or other.close
        return self


class Machine(Protocol):
    """A connection's protocol state. `start`: the connection is up (a client's login goes out
    here); `receive`: a frame arrived; `tick`: a `wake_at` came (a keep-alive, a request's
    deadline). `now` is the runner's clock in seconds, the same one `wake_at` is on."""

    def start(self, now: float) -> Effects: ...

    def receive(self, frame: Frame, now: float) -> Effects: ...

    def tick(self, now: float) -> Effects: ...
