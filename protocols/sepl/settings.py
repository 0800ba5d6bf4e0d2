"""The profile keys the sepl roles read, typed: `profiles validate` and every run check them."""

from __future__ import annotations

from fieldctl.profiles.schema import COUNT, ENDPOINT, FLAG, SECONDS, TEXT, TEXTS, Setting, one_of

SETTINGS: dict[str, Setting] = {
    "endpoints.platform": ENDPOINT,
    "connector.user": TEXT,
    "connector.gid": TEXT,
    "connector.keep_gid": FLAG,
    "connector.poll_s": SECONDS,
    "timeouts.login_s": SECONDS,
    "timeouts.request_s": SECONDS,
    "timeouts.idle_ping_s": SECONDS,
    "timeouts.pong_s": SECONDS,
    "timeouts.answer_s": SECONDS,
    "simulate.user": TEXT,
    "simulate.services": TEXTS,
    "simulate.gid_prefix": TEXT,
    "simulate.ping_period_s": SECONDS,
    "simulate.read_timeout_s": SECONDS,
    "simulate.max_consecutive_errors": COUNT,
    "simulate.send": one_of("text", "binary"),
}
