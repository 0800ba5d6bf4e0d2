"""What only the garbage collector would free: reference cycles. Python collects them by object
counts, not by size, so a cycle that holds a peer's megabytes holds them for a long while."""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any


def cyclic_garbage(action: Callable[[], Any]) -> list[Any]:
    """The objects `action` left in reference cycles (found by a collection, kept for the test)."""
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        action()
        gc.collect()
        return list(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


def holds(objects: list[Any], size: int) -> bool:
    """Whether any of `objects` refers to a str or bytes of `size` characters or more."""
    return any(  # type(), not isinstance(): a dead weak proxy among them raises on any use
        type(ref) in (str, bytes, bytearray) and len(ref) >= size for obj in objects for ref in gc.get_referents(obj)
    )
