"""The subset matcher of `fieldctl check`: what matches, and the diff lines when it does not."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from fieldctl.cli.check.matching import matches, mismatches


def test_objects_match_on_the_keys_listed() -> None:
    actual = {"ok": True, "data": {"applicationMode": 0, "trainingMode": 100}, "summary": "get-status: success"}
    assert matches({"ok": True, "data": {"applicationMode": 0}}, actual)
    assert matches({}, actual)


def test_a_wrong_or_missing_key_is_a_line_with_its_path() -> None:
    actual = {"ok": True, "data": {"applicationMode": 100}}
    assert mismatches({"ok": False, "data": {"applicationMode": 0, "mode": 1}}, actual) == [
        "ok: expected false, got true",
        "data.applicationMode: expected 0, got 100",
        "data.mode: missing (expected 1)",
    ]


def test_lists_match_exactly_element_by_element() -> None:
    assert matches([1, {"a": 1}], [1, {"a": 1, "b": 2}])  # the elements themselves are subset matched
    assert mismatches([1, 2], [1, 2, 3]) == ["(top): expected 2 elements, got 3: [1, 2, 3]"]
    assert mismatches({"rows": [1, 2]}, {"rows": [1, 3]}) == ["rows[1]: expected 2, got 3"]


def test_contains_matches_listed_elements_in_any_order() -> None:
    rows = [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]
    assert matches({"$contains": [{"id": 2}, {"id": 1}]}, rows)
    assert matches({"$contains": []}, [])
    assert mismatches({"rows": {"$contains": [{"id": 3}]}}, {"rows": rows}) == [
        'rows: no element matches {"id": 3} (got [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}])'
    ]
    assert mismatches({"$contains": [1]}, {"a": 1}) == ['(top): expected a list, got {"a": 1}']


def test_booleans_are_not_numbers_and_numbers_compare_by_value() -> None:
    assert mismatches(True, 1) == ["(top): expected true, got 1"]
    assert mismatches(0, False) == ["(top): expected 0, got false"]
    assert matches(1, 1.0) and matches(0.5, 0.5)
    assert mismatches("1", 1) == ['(top): expected "1", got 1']


def test_type_changes_are_told() -> None:
    assert mismatches({"data": {"a": 1}}, {"data": [1]}) == ["data: expected an object, got [1]"]
    assert mismatches({"data": [1]}, {"data": None}) == ["data: expected a list, got null"]


def test_long_values_are_cut() -> None:
    [line] = mismatches("x", "y" * 1000)
    assert line.endswith("…") and len(line) < 260


def test_hashed_lookups_keep_json_equality() -> None:
    assert mismatches({"$contains": [True]}, [1]) == ["(top): no element matches true (got [1])"]
    assert matches({"$contains": [1.0, None, "a"]}, ["a", None, 1])
    assert matches({"$contains": [[1, 2]]}, [[1, 2, 3], [1.0, 2]])
    assert not matches({"$contains": [[1, 2]]}, [[1, 2, 3], [2, 1]])
    rows = [{"a": 1, "b": [3]}, {"a": 1, "b": [2], "c": {"d": 0}}]
    assert matches({"$contains": [{"a": 1, "b": [2], "c": {}}]}, rows)
    assert matches({"$contains": [{"a": True}, {}]}, [{"a": True}])
    assert not matches({"$contains": [{"a": 1}]}, [{"a": True}])


def test_many_differences_are_cut_to_a_count() -> None:
    lines = mismatches({"$contains": list(range(100))}, [])
    assert len(lines) == 21 and lines[-1] == "(and 80 more differences)"


#: Each case run in a child process, so a match that does not end fails the test at its deadline.
LARGE = """
import json, sys, time
from fieldctl.cli.check.matching import mismatches
n = 20_000
rows = [{"id": i, "name": f"row {i}", "tags": [i, i + 1], "detail": {"i": i}} for i in range(n)]
cases = {
    "scalars": ({"$contains": list(range(n))}, list(range(n))),
    "rows by field": ({"$contains": [{"id": i, "tags": [i, i + 1]} for i in range(n)]}, rows),
    "rows missing": ({"$contains": [{"id": -i} for i in range(1, n + 1)]}, rows),
    "rows by object": ({"$contains": [{"detail": {"i": i}} for i in range(n)]}, rows),
}
started = time.monotonic()
lines = mismatches(*cases[sys.argv[1]])
print(json.dumps({"lines": lines, "seconds": time.monotonic() - started}))
"""


@pytest.mark.parametrize(
    "case, first",
    [
        ("scalars", None),
        ("rows by field", None),
        ("rows missing", '(top): no element matches {"id": -1} (got [{"id": 0, '),
        ("rows by object", "(top): not matched: it would take more than 250000 comparisons"),
    ],
)
def test_twenty_thousand_entries_against_twenty_thousand_rows_end_fast(case: str, first: str | None) -> None:
    child = subprocess.run([sys.executable, "-c", LARGE, case], capture_output=True, text=True, timeout=30, check=True)
    result = json.loads(child.stdout)
    assert result["seconds"] < 2, result["seconds"]
    if first is None:
        assert result["lines"] == []
    else:
        assert result["lines"][0].startswith(first)


def naive(expected: Any, actual: Any) -> bool:
    """The matching rules as the README states them, with no index and no budget."""
    if isinstance(expected, dict) and set(expected) == {"$contains"}:
        wanted = expected["$contains"]
        return (
            isinstance(wanted, list)
            and isinstance(actual, list)
            and all(any(naive(want, got) for got in actual) for want in wanted)
        )
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and naive(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(naive(want, got) for want, got in zip(expected, actual, strict=True))
        )
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    return bool(expected == actual)


#: Few distinct values, so that equal, unequal and nearly equal ones (1, 1.0, true) meet often.
VALUES = st.recursive(
    st.sampled_from([None, True, False, 0, 1, 1.0, 2, "a", "b"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["a", "b", "$contains"]), inner, max_size=2)
    ),
    max_leaves=12,
)


@pytest.mark.fuzz
@given(st.lists(VALUES, max_size=4), st.lists(VALUES, max_size=6), VALUES)
@example([True, 1.0], [1, False], {"$contains": [[1]]})
@example([{"a": [1], "b": {}}], [{"a": [True], "b": {}}, {"a": [1.0], "b": {"a": 1}}], [{"$contains": [None]}])
def test_contains_decides_as_the_plain_rules_do(wanted: list[Any], actual: list[Any], other: Any) -> None:
    for expected, got in (
        ({"$contains": wanted}, actual),
        (other, actual),
        ({"a": {"$contains": wanted}}, {"a": actual}),
    ):
        assert matches(expected, got) == naive(expected, got), (expected, got)
