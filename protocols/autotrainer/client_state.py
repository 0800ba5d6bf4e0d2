"""A technician's tool's rules, pure (no I/O): emergency de-duplication, which COMMAND_RESULT a
waiting command gets (nonce correlation), and what a reply means (spec §5.2, §6.3-§6.6).
Decoded Messages in, decisions out; client.py owns the sockets and the clock."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from fieldctl.protocols.core.errors import ProtocolFailure
from fieldctl.protocols.core.message import Message
from fieldctl.protocols.sdk.contract import CommandOutcome

from . import codec
from .codec import PENDING, PENDING_WITH_NOTIFICATION, SUCCESS

#: Commands whose answer is the reply itself, never a COMMAND_RESULT (spec §6.3: NONE never reaches
#: the application, GET_* return what they read): they open no subscription.
READS = frozenset({0, 300, 400, 500})


class EmergencyDeduper:
    """The device publishes each emergency body on EMERGENCY, then again on EVENT (spec §5.2)."""

    def __init__(self, size: int = 256) -> None:
        self._seen: OrderedDict[bytes, None] = OrderedDict()
        self._size = size

    def is_duplicate(self, msg: Message) -> bool:
        if msg.error or len(msg.raw) != 2 or not codec.is_emergency(msg):
            return False
        body = msg.raw[1]
        if msg.channel == "emergency":
            self._seen[body] = None
            if len(self._seen) > self._size:
                self._seen.popitem(last=False)
            return False
        if body in self._seen:
            del self._seen[body]
            return True
        return False


class Waiting:
    """The nonces of the commands waiting for their COMMAND_RESULT. Results are broadcast to
    every client (spec §6.6): one nobody here waits for is someone else's, and dropped."""

    def __init__(self) -> None:
        self.nonces: set[int] = set()

    def expect(self, nonce: int) -> None:
        self.nonces.add(nonce)

    def forget(self, nonce: int) -> None:
        self.nonces.discard(nonce)

    def answered(self, msg: Message) -> int | None:
        """The waiting nonce a decoded publication is the result for, if any."""
        if msg.error or msg.channel != "command_result" or type(msg.id) is not int or msg.id not in self.nonces:
            return None
        return msg.id


@dataclass(frozen=True)
class Reply:
    """What a decoded reply to the request with `nonce` means: `rejected` (the device could not
    parse the request), or `pending` (accepted with 201: its result comes as a COMMAND_RESULT)."""

    body: dict[str, Any]
    rejected: bool = False
    pending: bool = False


def judge_reply(reply: Message, nonce: int, endpoint: str) -> Reply:
    """Raises ProtocolFailure for a malformed reply or one for another request."""
    if reply.error:
        raise ProtocolFailure(f"malformed reply from {endpoint}: {reply.error}")
    body = reply.payload
    if codec.is_service_rejection(body):
        return Reply(body, rejected=True)
    if body.get("nonce") != nonce:
        raise ProtocolFailure(f"reply nonce {body.get('nonce')!r} does not match request nonce {nonce}")
    return Reply(body, pending=body.get("result") == PENDING_WITH_NOTIFICATION)


def outcome(
    reply: Message, verdict: Reply, messages: list[Message], rtt_s: float, final: Message | None = None
) -> CommandOutcome:
    """The command's outcome from its reply and, when one came, its COMMAND_RESULT."""
    if verdict.rejected:
        return CommandOutcome(False, "the device rejected the request as unparseable (reply nonce 0)", messages, rtt_s)
    body = final.payload if final is not None else verdict.body
    # The result to show: the `data` of the last message (the reply, or the COMMAND_RESULT).
    return CommandOutcome(
        body.get("result") in (SUCCESS, PENDING, PENDING_WITH_NOTIFICATION),
        describe_result(str(reply.kind), body),
        messages,
        rtt_s,
        result=body.get("data"),
    )


def describe_result(kind: str, body: dict[str, Any]) -> str:
    text = f"{kind}: {codec.result_name(body.get('result'))}"
    if body.get("errorCode"):
        text += f" (error {body['errorCode']})"
    if body.get("errorMessage"):
        text += f": {body['errorMessage']}"
    return text
