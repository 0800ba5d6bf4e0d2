"""The board's `/` filter (cli/fleet/target_filter.py): globs and words on a target's fields."""

from __future__ import annotations

from fieldctl.cli.fleet.target_filter import TargetFilter


def test_the_board_filter_matches_fixed_fields_once_and_status_each_time() -> None:
    fixed = {
        name: {"target": (name,), "group": groups, "profile": ("autotrainer",)}
        for name, groups in (("sim-150", ("room-1",)), ("sim-015", ()), ("rig-2", ("room-2",)))
    }
    up, down = {"link": "ready", "status": "up"}, {"link": "retrying", "status": "down"}

    def names(text: str, changing: dict[str, str]) -> list[str]:
        matches = TargetFilter.parse(text).matcher(fixed)
        return [name for name in fixed if matches(name, changing)]

    assert names("sim-15*", up) == ["sim-150"]
    assert names("15", up) == ["sim-150", "sim-015"]  # no glob: within
    assert names("group=room-?", up) == ["sim-150", "rig-2"]
    assert names("status=down", up) == [] and names("status=down", down) == list(fixed)
    assert names("sim-* retry", down) == ["sim-150", "sim-015"]  # words ANDed; `retry` within the link
    assert names("PROFILE=Auto*", up) == list(fixed)  # case does not matter
    assert not TargetFilter.parse("  ")
