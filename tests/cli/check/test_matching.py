"""The subset matcher of `fieldctl check`: what matches, and the diff lines when it does not."""

from __future__ import annotations

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
