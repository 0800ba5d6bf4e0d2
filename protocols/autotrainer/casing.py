"""pyhumps 3.8.0 camelize/decamelize, reproduced exactly: the device runs them over every key it
sends and over the whole text of every request it receives (spec §3.2, §6.2)."""

from __future__ import annotations

import functools
import re
from typing import Any

_ACRONYM = re.compile(r"([A-Z\d]+)(?=[A-Z\d]|$)")
_SPLIT = re.compile(r"([\-_]*[A-Z][^A-Z]*[\-_]*)")
_UNDERSCORE = re.compile(r"(?<=[^\-_])[\-_]+[^\-_]")
_SPACE = re.compile(r"\s+")


@functools.lru_cache(maxsize=4096)
def camelize_key(key: str) -> str:
    """Cached: the simulator camelizes every key of every body it sends (a get-status reply has
    over 60), from a small set of names; bounded, as operators' payloads may bring new ones."""
    s = _SPACE.sub("", key)
    if s.isupper() or s.isnumeric():
        return key
    if s and not s[:2].isupper():
        s = s[0].lower() + s[1:]
    return _UNDERSCORE.sub(lambda m: m.group(0)[-1].upper(), s)


def camelize(value: Any) -> Any:
    """Keys of every object, recursively; values untouched (and no call made for a plain one)."""
    if isinstance(value, dict):
        return {
            camelize_key(k) if isinstance(k, str) else k: camelize(v) if isinstance(v, _NESTED) else v
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [camelize(item) if isinstance(item, _NESTED) else item for item in value]
    return value


_NESTED = (dict, list)


def decamelize_text(text: str) -> str:
    """What the device does to a request's whole text before parsing it."""
    s = _SPACE.sub("", text)
    if s.isupper() or s.isnumeric():
        return text
    fixed = _ACRONYM.sub(lambda m: m.group(0).title(), s)
    return "_".join(part for part in _SPLIT.split(fixed) if part).lower()


def decamelize(value: Any) -> Any:
    """Keys of every object, recursively (snake_case), as the device's delegate sees them."""
    if isinstance(value, dict):
        return {decamelize_text(k) if isinstance(k, str) else k: decamelize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decamelize(item) for item in value]
    return value
