"""autotrainer through `fieldctl proxy`: the device's publications and its commands relayed byte
for byte (relay_zeromq), each frame decoded on the way with this package's codec: publications
`in` (heartbeats on the heartbeat channel), subscriptions and requests `out`, replies `in`, each
reply matched to its request by nonce, with `rtt_s` from the request leaving the proxy."""

from __future__ import annotations

import collections
import time
from typing import Any

from fieldctl.profiles import Profile
from fieldctl.protocols.core.message import Message
from fieldctl.protocols.sdk.contract import Context
from fieldctl.protocols.sdk.faults import Faults
from fieldctl.protocols.sdk.machine import Frame
from fieldctl.protocols.sdk.runners import relay_zeromq
from fieldctl.protocols.sdk.runners.request_reply import parts

from . import codec
from .codec import Vocabulary

#: Requests of one client whose reply has not come, remembered for their round trip; past it the
#: oldest is forgotten (a client that never reads its replies).
MAX_WAITING = 1000


def topic_name(prefix: bytes, vocab: Vocabulary) -> str:
    """A subscription as listen would name it: a topic's channel, `""` for everything, else hex."""
    if len(prefix) == 4:
        return vocab.topic_channel.get(int.from_bytes(prefix, "little")) or prefix.hex()
    return prefix.hex()


class Commands:
    """The taps of one client's commands: requests `out`, replies `in`, a reply's `rtt_s` from
    its request (by nonce; an unparseable answer, nonce 0, is the oldest request's)."""

    def __init__(self, vocab: Vocabulary) -> None:
        self.vocab = vocab
        self.waiting: collections.OrderedDict[Any, float] = collections.OrderedDict()

    def request(self, frame: Frame) -> list[Message]:
        msg = codec.decode_request(parts(frame), self.vocab)
        key = msg.id if isinstance(msg.id, (int, str)) else object()  # one the device cannot read waits too
        self.waiting.pop(key, None)
        self.waiting[key] = time.monotonic()
        if len(self.waiting) > MAX_WAITING:
            self.waiting.popitem(last=False)
        return [msg]

    def reply(self, frame: Frame) -> list[Message]:
        msg = codec.decode_reply(parts(frame), self.vocab)
        sent = self.waiting.pop(msg.id, None) if isinstance(msg.id, (int, str)) else None
        body = msg.payload
        if sent is None and self.waiting and isinstance(body, dict) and codec.is_service_rejection(body):
            _, sent = self.waiting.popitem(last=False)
        if sent is not None:
            msg.rtt_s = time.monotonic() - sent
        return [msg]


async def proxy(
    profile: Profile, vocab: Vocabulary, context: Context, upstream: dict[str, str], faults: Faults
) -> None:
    def publication(frame: Frame) -> list[Message]:
        return [codec.decode_publication(parts(frame), vocab)]

    subscription = relay_zeromq.subscription_tap(profile.name, "events", lambda prefix: topic_name(prefix, vocab))
    await relay_zeromq.relay_zeromq(
        profile,
        context,
        upstream,
        faults,
        publications={"events": (publication, subscription)},
        requests={"commands": lambda: Commands(vocab)},
    )
