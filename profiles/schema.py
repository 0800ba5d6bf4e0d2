"""Which keys a profile may have, and of what type: the core tables every profile shares, and the
sections a protocol declares for itself (BaseDriver.settings). A misspelt key is an error with a
did-you-mean, because a silently ignored setting is worse than a refused one."""

from __future__ import annotations

import difflib
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fieldctl.protocols.core.limits import MAX_DEPTH_ALLOWED, MAX_FRAME_BYTES_ALLOWED, MAX_SECONDS, finite_within

Problem = tuple[str, str]

#: A dotted key segment matching any one name (e.g. ``simulate.streams.*.frequency_hz``).
ANY_NAME = "*"


def did_you_mean(word: str, candidates: Iterable[str], prefix: str = "") -> str:
    """`` (did you mean X?)`` when one candidate is close, else the empty string; `prefix` goes
    before the candidate shown (a key's table: the whole dotted key is what a person types)."""
    by_name = {candidate.lstrip("-"): candidate for candidate in candidates}  # "--" makes any two options alike
    close = difflib.get_close_matches(word.lstrip("-"), sorted(by_name), n=1)
    return f" (did you mean {prefix}{by_name[close[0]]}?)" if close else ""


@dataclass(frozen=True)
class Setting:
    """One declared key: a test of its value and what to say when the test fails.
    ``table`` settings are free-form below them (e.g. a simulated device's configuration);
    ``required`` ones must be there (e.g. the endpoints a protocol connects to)."""

    accepts: Callable[[Any], bool]
    expected: str
    table: bool = False
    required: bool = False


def _number(value: Any) -> bool:
    """A finite number: TOML's inf and nan are numbers no setting means."""
    return finite_within(value, -sys.float_info.max, sys.float_info.max)


ANY = Setting(lambda value: True, "anything")
TEXT = Setting(lambda value: isinstance(value, str), "a string")
TEXTS = Setting(lambda value: isinstance(value, list) and all(isinstance(v, str) for v in value), "a list of strings")
LIST = Setting(lambda value: isinstance(value, list), "a list")
FLAG = Setting(lambda value: isinstance(value, bool), "true or false")
NUMBER = Setting(_number, "a finite number")
#: A wait, a timeout, an interval: above 0, at most a day (inf, nan and 1e308 are refused).
SECONDS = Setting(
    lambda value: finite_within(value, 0, MAX_SECONDS, above_low=True),
    f"a number of seconds above 0, at most {MAX_SECONDS:.0f}",
)
COUNT = Setting(
    lambda value: isinstance(value, int) and not isinstance(value, bool) and value >= 0, "a non-negative integer"
)
POSITIVE = Setting(
    lambda value: isinstance(value, int) and not isinstance(value, bool) and value > 0, "a positive integer"
)
TABLE = Setting(lambda value: isinstance(value, dict), "a table", table=True)
#: An endpoint the protocol uses (validate.py checks the URL itself).
ENDPOINT = Setting(lambda value: True, "an endpoint URL", required=True)


#: Zero is a valid delay (answer at once); negative is not.
DELAY = Setting(lambda value: finite_within(value, 0, MAX_SECONDS), f"a number of seconds from 0 to {MAX_SECONDS:.0f}")
#: A frequency a simulator's loop can keep.
MAX_RATE_HZ = 10_000
RATE = Setting(
    lambda value: finite_within(value, 0, MAX_RATE_HZ, above_low=True),
    f"a frequency in Hz above 0, at most {MAX_RATE_HZ}",
)


def at_most(high: int) -> Setting:
    """A positive integer up to `high` (a size a file may ask for)."""
    return Setting(lambda value: POSITIVE.accepts(value) and value <= high, f"a positive integer, at most {high}")


def one_of(*choices: str) -> Setting:
    return Setting(lambda value: value in choices, "one of " + ", ".join(choices))


#: Who binds an endpoint (a profile's [topology]): the simulator (the default), the client side, or
#: nobody: both sides connect to a broker at that address.
SIMULATOR, CLIENT, BROKER = "simulator", "client", "broker"
TOPOLOGIES = (SIMULATOR, CLIENT, BROKER)

#: The tables every profile has; validate.py checks their finer rules (URLs, codes, secrets).
CORE: dict[str, Setting] = {
    "name": ANY,
    "protocol": ANY,
    "description": ANY,
    "extends": TEXT,
    "defaults.host": ANY,
    "endpoints.*": ANY,
    "channels.*": ANY,
    "events.*": ANY,
    "commands.*.code": ANY,
    "commands.*.help": ANY,
    "commands.*.payload.*": ANY,
    "heartbeat.channel": ANY,
    "heartbeat.interval_s": ANY,
    "heartbeat.stale_after_s": ANY,
    "heartbeat.fields": ANY,
    "auth.*": ANY,
    "topology.*": ANY,  # validate.py: an endpoint's name, one of TOPOLOGIES
    # protocols/core/limits.py
    "limits.max_frame_bytes": at_most(MAX_FRAME_BYTES_ALLOWED),
    "limits.max_depth": at_most(MAX_DEPTH_ALLOWED),
}
CORE_TABLES = frozenset(key.split(".", 1)[0] for key in CORE)


def shown(value: Any) -> str:
    """A short scalar as written, anything else by its type."""
    text = repr(value)
    return text if isinstance(value, (int, float, str, bool)) and len(text) <= 40 else type(value).__name__


def _lookup(data: Mapping[str, Any], dotted: str) -> Any:
    node: Any = data
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _matches(pattern: tuple[str, ...], path: tuple[str, ...]) -> bool:
    return len(pattern) == len(path) and all(p in (ANY_NAME, name) for p, name in zip(pattern, path, strict=True))


class _Schema:
    """The declared keys as patterns, indexed by depth: a fleet of a thousand targets validates a
    thousand profiles, and each key is compared only with the patterns of its own depth."""

    def __init__(self, declared: Mapping[str, Setting]) -> None:
        self.patterns = [(tuple(key.split(".")), setting) for key, setting in declared.items()]
        self.exact: dict[tuple[str, ...], Setting] = {}
        self.wild: dict[int, list[tuple[tuple[str, ...], Setting]]] = {}
        self.tables: dict[int, set[tuple[str, ...]]] = {}
        for pattern, setting in reversed(self.patterns):  # the first declaration wins
            if ANY_NAME in pattern:
                self.wild.setdefault(len(pattern), []).insert(0, (pattern, setting))
            else:
                self.exact[pattern] = setting
            for depth in range(1, len(pattern)):
                self.tables.setdefault(depth, set()).add(pattern[:depth])

    def setting(self, path: tuple[str, ...]) -> Setting | None:
        found = self.exact.get(path)
        if found is not None:
            return found
        return next((setting for pattern, setting in self.wild.get(len(path), ()) if _matches(pattern, path)), None)

    def is_table(self, path: tuple[str, ...]) -> bool:
        return path in self.tables.get(len(path), ()) or any(
            _matches(prefix, path) for prefix in self.tables.get(len(path), ()) if ANY_NAME in prefix
        )

    def names_under(self, path: tuple[str, ...]) -> list[str]:
        return [
            p[len(path)]
            for p, _ in self.patterns
            if len(p) > len(path) and _matches(p[: len(path)], path) and p[len(path)] != ANY_NAME
        ]


def check(
    data: Mapping[str, Any], declared: Mapping[str, Setting], *, unknown: bool = True, only: Iterable[str] | None = None
) -> list[Problem]:
    """Problems of `data` against `declared`: values of the wrong type, and (with `unknown`) keys
    nobody declared. `only` limits the check to these top-level tables."""
    schema, problems = _Schema(declared), []
    tops = set(only) if only is not None else None
    for key, setting in declared.items():
        top = key.split(".", 1)[0]
        if setting.required and ANY_NAME not in key and (tops is None or top in tops) and _lookup(data, key) is None:
            problems.append((key, "is required"))

    def walk(node: Any, path: tuple[str, ...]) -> None:
        where = ".".join(path)
        setting = schema.setting(path)
        if setting is not None:
            if not setting.accepts(node):
                problems.append((where, f"expected {setting.expected}, got {shown(node)}"))
        elif not schema.is_table(path):
            if unknown:
                table = "".join(f"{part}." for part in path[:-1])
                problems.append((where, "unknown key" + did_you_mean(path[-1], schema.names_under(path[:-1]), table)))
        elif not isinstance(node, dict):
            problems.append((where, f"expected a table, got {shown(node)}"))
        else:
            for key, value in node.items():
                walk(value, (*path, str(key)))

    for key, value in data.items():
        if tops is None or key in tops:
            walk(value, (str(key),))
    return problems
