"""Subset matching on JSON values, with a diff a person can read: what `fieldctl check` expects.

Objects match on the keys the expectation lists (others may be there too); lists match exactly,
element by element, unless the expectation is ``{"$contains": [...]}`` (each listed element matches
some element of the list, in any order); scalars match by equality, where a boolean is never a
number and 1 equals 1.0. Pure: no I/O, no CLI dependency.

What a match may cost is bounded: `$contains` finds a scalar (or a list of them) by hashing, and
an object through an index of the list's objects by their scalar fields; every value visited is
counted against BUDGET, and past it the match stops with one line that says so.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

#: The one operator: an object with only this key expects a list holding a match for each element.
CONTAINS = "$contains"
#: Values one expectation may visit (about half a second): real checks stay far below it.
BUDGET = 250_000
#: Difference lines kept of one expectation; the rest are counted in one more line.
MAX_LINES = 20


class _Spent(Exception):
    """The budget ran out."""


class _Budget:
    def __init__(self, left: int) -> None:
        self.left = left

    def spend(self, steps: int = 1) -> None:
        self.left -= steps
        if self.left < 0:
            raise _Spent


def mismatches(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Every difference as one line `path: expected X, got Y` (MAX_LINES of them, then a count);
    an empty list is a match."""
    try:
        lines = _mismatches(expected, actual, path, _Budget(BUDGET))
    except _Spent:
        return [
            f"{path or '(top)'}: not matched: it would take more than {BUDGET} comparisons "
            f"(a {CONTAINS} of many elements against a long list)"
        ]
    if len(lines) > MAX_LINES:
        return [*lines[:MAX_LINES], f"(and {len(lines) - MAX_LINES} more differences)"]
    return lines


def matches(expected: Any, actual: Any) -> bool:
    return not mismatches(expected, actual)


def _mismatches(expected: Any, actual: Any, path: str, budget: _Budget) -> list[str]:
    budget.spend()
    where = path or "(top)"
    if _is_contains(expected):
        return _contains(expected[CONTAINS], actual, path, budget)
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected an object, got {show(actual)}"]
        lines: list[str] = []
        for key, value in expected.items():
            inner = f"{path}.{key}" if path else str(key)
            if key not in actual:
                lines.append(f"{inner}: missing (expected {show(value)})")
            else:
                lines += _mismatches(value, actual[key], inner, budget)
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
            lines += _mismatches(want, got, f"{path}[{index}]", budget)
        return lines
    if not _equal(expected, actual):
        return [f"{where}: expected {show(expected)}, got {show(actual)}"]
    return []


def _matches(expected: Any, actual: Any, budget: _Budget) -> bool:
    """_mismatches without the lines: what a $contains asks of each candidate element."""
    budget.spend()
    if _is_contains(expected):
        wanted = expected[CONTAINS]
        if not isinstance(wanted, list) or not isinstance(actual, list):
            return False
        elements = _Elements(actual, budget)
        return all(elements.holds(want) for want in wanted)
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            key in actual and _matches(value, actual[key], budget) for key, value in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(_matches(want, got, budget) for want, got in zip(expected, actual, strict=True))
        )
    return _equal(expected, actual)


def _contains(wanted: Any, actual: Any, path: str, budget: _Budget) -> list[str]:
    where = path or "(top)"
    if not isinstance(wanted, list):
        return [f"{where}: {CONTAINS} takes a list, got {show(wanted)}"]
    if not isinstance(actual, list):
        return [f"{where}: expected a list, got {show(actual)}"]
    elements = _Elements(actual, budget)
    missing = [want for want in wanted if not elements.holds(want)]
    if not missing:
        return []
    got = show(actual)
    return [f"{where}: no element matches {show(want)} (got {got})" for want in missing]


class _Elements:
    """A list's elements as a $contains looks them up: scalars in a set (by `_key`, so true is not
    1 and 1 is 1.0), objects through an index by (field, scalar value), built on first use."""

    def __init__(self, items: Sequence[Any], budget: _Budget) -> None:
        budget.spend(len(items))
        self.items, self.budget = items, budget
        self.scalars = {key for key in map(_key, items) if key is not None}
        self.fields: dict[tuple[str, Any], list[int]] | None = None

    def holds(self, want: Any) -> bool:
        key = _key(want)
        if key is not None:
            return key in self.scalars
        return any(_matches(want, self.items[index], self.budget) for index in self._candidates(want))

    def _candidates(self, want: Any) -> Iterable[int]:
        """The elements that can match `want`: for an object, those sharing its most selective
        scalar field; else every element."""
        if not isinstance(want, dict) or _is_contains(want):
            return range(len(self.items))
        keyed = [(name, key) for name, key in ((name, _key(value)) for name, value in want.items()) if key is not None]
        if not keyed:
            return range(len(self.items))
        index = self._index()
        return min((index.get(field, []) for field in keyed), key=len)

    def _index(self) -> dict[tuple[str, Any], list[int]]:
        if self.fields is None:
            self.fields = {}
            for position, item in enumerate(self.items):
                if isinstance(item, dict):
                    self.budget.spend(len(item))
                    for name, value in item.items():
                        key = _key(value)
                        if key is not None:
                            self.fields.setdefault((name, key), []).append(position)
        return self.fields


def _key(value: Any) -> tuple[str, Any] | None:
    """A scalar, or a list of them (lists match element by element), as a set finds it under
    JSON's equality (see _equal); None for what holds an object (objects match a subset)."""
    if value is None:
        return ("null", None)
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (int, float)):
        return ("number", value)
    if isinstance(value, str):
        return ("string", value)
    if isinstance(value, list):
        keys = tuple(map(_key, value))
        return None if None in keys else ("list", keys)
    return None


def _is_contains(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and CONTAINS in value


def _equal(expected: Any, actual: Any) -> bool:
    """JSON equality: true and 1 differ (Python says they are equal), 1 and 1.0 do not."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and bool(expected == actual)
    return bool(expected == actual)


def show(value: Any, limit: int = 200) -> str:
    """A value as compact JSON, cut at `limit` characters."""
    text = json.dumps(value, ensure_ascii=False, default=repr, separators=(", ", ": "))
    return text if len(text) <= limit else text[: limit - 1] + "…"
