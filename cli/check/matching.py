"""Subset matching on JSON values, with a diff a person can read: what `fieldctl check` expects.

Objects match on the keys the expectation lists (others may be there too); lists match exactly,
element by element, unless the expectation is ``{"$contains": [...]}`` (each listed element matches
some element of the list, in any order); scalars match by equality, where a boolean is never a
number and 1 equals 1.0. Pure: no I/O, no CLI dependency.
"""

from __future__ import annotations

import json
from typing import Any

#: The one operator: an object with only this key expects a list holding a match for each element.
CONTAINS = "$contains"


def mismatches(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Every difference as one line `path: expected X, got Y`; an empty list is a match."""
    where = path or "(top)"
    if isinstance(expected, dict) and set(expected) == {CONTAINS}:
        return _contains(expected[CONTAINS], actual, path)
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected an object, got {show(actual)}"]
        lines: list[str] = []
        for key, value in expected.items():
            inner = f"{path}.{key}" if path else str(key)
            if key not in actual:
                lines.append(f"{inner}: missing (expected {show(value)})")
            else:
                lines += mismatches(value, actual[key], inner)
        return lines
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return [f"{where}: expected a list, got {show(actual)}"]
        lines = (
            []
            if len(expected) == len(actual)
            else [f"{where}: expected {len(expected)} elements, got {len(actual)}: {show(actual)}"]
        )
        for index, (want, got) in enumerate(zip(expected, actual, strict=False)):
            lines += mismatches(want, got, f"{path}[{index}]")
        return lines
    if not _equal(expected, actual):
        return [f"{where}: expected {show(expected)}, got {show(actual)}"]
    return []


def matches(expected: Any, actual: Any) -> bool:
    return not mismatches(expected, actual)


def _contains(wanted: Any, actual: Any, path: str) -> list[str]:
    where = path or "(top)"
    if not isinstance(wanted, list):
        return [f"{where}: {CONTAINS} takes a list, got {show(wanted)}"]
    if not isinstance(actual, list):
        return [f"{where}: expected a list, got {show(actual)}"]
    return [
        f"{where}: no element matches {show(want)} (got {show(actual)})"
        for want in wanted
        if not any(matches(want, got) for got in actual)
    ]


def _equal(expected: Any, actual: Any) -> bool:
    """JSON equality: true and 1 differ (Python says they are equal), 1 and 1.0 do not."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and bool(expected == actual)
    return bool(expected == actual)


def show(value: Any, limit: int = 200) -> str:
    """A value as compact JSON, cut at `limit` characters."""
    text = json.dumps(value, ensure_ascii=False, default=repr, separators=(", ", ": "))
    return text if len(text) <= limit else text[: limit - 1] + "…"
