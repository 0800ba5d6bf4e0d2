"""The fuzzing contract every decoder is held to: given any bytes, it returns or raises one of the
project's own error types, within a time budget. `make test` runs a few hundred cases per test;
`make fuzz` (FIELDCTL_FUZZ=thorough) runs 10,000 with a 100 ms limit per case."""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, settings

THOROUGH = os.environ.get("FIELDCTL_FUZZ") == "thorough"
#: Per case; make test allows for a loaded CI machine, make fuzz holds the 100 ms promise.
CASE_LIMIT_S = 0.1 if THOROUGH else 0.5

settings.register_profile(
    "fieldctl",
    max_examples=10_000 if THOROUGH else 300,
    deadline=None,
    derandomize=not THOROUGH,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("fieldctl")


def contained(
    decode: Callable[..., Any], *args: Any, allowed: tuple[type[BaseException], ...] = (), **kwargs: Any
) -> Any:
    """Runs one decode; fails the test on any exception but `allowed` ones, or on a slow case. The
    garbage collector is held off while it runs: a full collection of the fuzzer's own heap (tens of
    thousands of kept examples) would otherwise land on whichever case allocates, and be timed."""
    gc.disable()
    start = time.perf_counter()
    try:
        return decode(*args, **kwargs)
    except allowed:
        return None
    finally:
        elapsed = time.perf_counter() - start
        gc.enable()
        assert elapsed < CASE_LIMIT_S, (
            f"{getattr(decode, '__name__', decode)} took {elapsed * 1000:.0f} ms on {args!r:.200}"
        )
