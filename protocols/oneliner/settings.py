"""The profile keys the oneliner roles read, typed: `profiles validate` and every run check them."""

from __future__ import annotations

from fieldctl.profiles.schema import (
    ANY,
    DELAY,
    ENDPOINT,
    FLAG,
    LIST,
    NUMBER,
    RATE,
    SECONDS,
    TABLE,
    TEXT,
    Setting,
    one_of,
)

SETTINGS: dict[str, Setting] = {
    "endpoints.calls": ENDPOINT,
    "endpoints.streams": ENDPOINT,
    "simulate.version": TEXT,
    "simulate.streams.*.frequency_hz": RATE,
    "simulate.streams.*.period_s": SECONDS,
    "simulate.streams.*.serializer": one_of("pickle", "json", "raw"),
    "simulate.streams.*.generator": one_of("count", "sine", "status", "bytes", "constant", "error", "call"),
    "simulate.streams.*.start": NUMBER,
    "simulate.streams.*.value": ANY,
    "simulate.streams.*.message": TEXT,
    "simulate.streams.*.call": TEXT,
    "simulate.streams.*.args": LIST,
    "simulate.streams.*.kwargs": TABLE,
    "simulate.streams.*.enabled": FLAG,
    "simulate.objects.*.attributes": TABLE,
    "simulate.objects.*.methods.*.action": one_of("get", "set", "add", "sum", "echo", "return", "raise", "sleep"),
    "simulate.objects.*.methods.*.attribute": TEXT,
    "simulate.objects.*.methods.*.value": ANY,
    "simulate.objects.*.methods.*.step": NUMBER,
    "simulate.objects.*.methods.*.error": TEXT,
    "simulate.objects.*.methods.*.message": TEXT,
    "simulate.objects.*.methods.*.seconds": DELAY,
    "simulate.named_calls.*.call": TEXT,
    "simulate.named_calls.*.args": LIST,
    "simulate.named_calls.*.kwargs": TABLE,
}
