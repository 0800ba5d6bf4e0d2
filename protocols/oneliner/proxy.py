"""oneliner through `fieldctl proxy`: the server's streams and its calls relayed byte for byte
(relay_zeromq), each frame decoded on the way with this package's codec and its restricted
unpickler, as listen and command decode them: stream packets `in`, subscriptions and call
requests `out`, replies `in`, each named after its call, with `rtt_s` from the call leaving the
proxy. A subscription reaches the server as the client sent it (name + 0x00, or a bare name)."""

from __future__ import annotations

import collections
import time

from fieldctl.profiles import Profile
from fieldctl.protocols.core.message import OUT, Message
from fieldctl.protocols.sdk.contract import Context
from fieldctl.protocols.sdk.faults import Faults
from fieldctl.protocols.sdk.machine import Frame
from fieldctl.protocols.sdk.runners import relay_zeromq
from fieldctl.protocols.sdk.runners.request_reply import parts

from . import codec
from .client import stream_encodings

#: Calls of one client whose reply has not come; past it the oldest is forgotten.
MAX_WAITING = 1000


class Calls:
    """The taps of one client's calls: requests `out`, replies `in`. The server answers a
    client's calls in order, so a reply is its oldest waiting call's (only the request names
    the call)."""

    def __init__(self, profile: Profile) -> None:
        self.profile, self.limits = profile.name, profile.limits
        self.waiting: collections.deque[tuple[str, float]] = collections.deque(maxlen=MAX_WAITING)
        self.answered: tuple[str, float | None] = ("?", None)

    def request(self, frame: Frame) -> list[Message]:
        message = parts(frame)
        if len(message) == 1:
            msg = codec.request_message(self.profile, message[0], limits=self.limits)
        else:
            error = f"{len(message)} parts: a one-liner request is one part"
            msg = Message(self.profile, codec.CALLS, OUT, codec.CALL, "?", raw=message, error=error)
        self.waiting.append((str(msg.kind), time.monotonic()))  # answered too, if only with an error
        return [msg]

    def reply(self, frame: Frame) -> list[Message]:
        if self.waiting:
            self.answered = self.waiting.popleft()
        target, sent = self.answered  # none waits: the last one's again (a fault rule's corrupted copy)
        msg = codec.decode_reply(self.profile, parts(frame), target, limits=self.limits)
        if sent is not None:
            msg.rtt_s = time.monotonic() - sent
        return [msg]


async def proxy(profile: Profile, context: Context, upstream: dict[str, str], faults: Faults) -> None:
    encodings = stream_encodings(profile)

    def sample(frame: Frame) -> list[Message]:
        return [codec.decode_stream(profile.name, parts(frame), encodings, limits=profile.limits)]

    await relay_zeromq.relay_zeromq(
        profile,
        context,
        upstream,
        faults,
        publications={codec.STREAMS: (sample, relay_zeromq.subscription_tap(profile.name, codec.STREAMS))},
        requests={codec.CALLS: lambda: Calls(profile)},
    )
