"""Effects add up as one input's: lists in order, the earliest wake-up, the first reason to close."""

from __future__ import annotations

from fieldctl.protocols.core.message import Message
from fieldctl.protocols.sdk.machine import Effects


def test_effects_add_up_in_order_with_the_earliest_wake_up_and_the_first_close() -> None:
    first, second = Message("p", "e", "in", "c", "k"), Message("p", "e", "out", "c", "k")
    total = Effects(emit=[first], send=[b"a"], wake_at=5.0)
    total += Effects(emit=[second], send=["b"], warn=["w"], wake_at=3.0, close="bye")
    total += Effects(wake_at=4.0, close="later")
    assert total == Effects(emit=[first, second], send=[b"a", "b"], warn=["w"], wake_at=3.0, close="bye")
