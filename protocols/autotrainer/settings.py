"""The profile keys the autotrainer roles read, typed: `profiles validate` and every run check them."""

from __future__ import annotations

from fieldctl.profiles.schema import COUNT, DELAY, ENDPOINT, SECONDS, TABLE, TEXT, TEXTS, Setting

SETTINGS: dict[str, Setting] = {
    "endpoints.events": ENDPOINT,
    "endpoints.commands": ENDPOINT,
    "simulate.identifier": TEXT,
    "simulate.seed": COUNT,
    "simulate.version": TEXT,
    "simulate.event_interval_s": SECONDS,
    "simulate.async_commands": TEXTS,
    "simulate.async_delay_s": DELAY,
    "simulate.configuration": TABLE,
}
