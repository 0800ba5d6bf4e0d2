"""fieldctl reads entry points itself; it must find what importlib.metadata finds."""

from __future__ import annotations

from importlib.metadata import entry_points

from fieldctl.protocols.core import entry_points as mine


def test_scan_finds_what_importlib_metadata_finds() -> None:
    for group in (mine.PROTOCOLS, mine.PROFILES):
        scanned = mine._scan(group)
        assert scanned is not None
        assert sorted((ep.name, ep.value) for ep in scanned) == sorted(
            (ep.name, ep.value) for ep in entry_points(group=group)
        )


def test_entry_points_load_like_importlib_metadata() -> None:
    module = "fieldctl.protocols.core.entry_points"
    assert mine.EntryPoint("x", f"{module}:EntryPoint.load").load("test") is mine.EntryPoint.load
    assert mine.EntryPoint("x", module).load("test") is mine
    assert mine.EntryPoint("x", f"{module} : PROTOCOLS [extra]").load("test") == mine.PROTOCOLS
    for ep in entry_points(group=mine.PROTOCOLS):
        ours = mine.EntryPoint(ep.name, ep.value)
        assert (ours.module, ours.attr) == (ep.module, ep.attr)


def test_a_plugin_that_cannot_load_is_one_usage_error() -> None:
    from fieldctl.protocols.core.errors import UsageError

    try:
        mine.EntryPoint("broken", "no_such_module_anywhere:Driver").load("protocol")
    except UsageError as exc:
        assert str(exc).startswith("protocol 'broken' (no_such_module_anywhere:Driver) cannot be loaded")
    else:
        raise AssertionError("a broken plugin loaded")


def test_a_zip_on_the_path_leaves_it_to_importlib_metadata(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    archive = tmp_path / "plugins.zip"
    archive.write_bytes(b"PK\x05\x06" + b"\x00" * 18)  # an empty zip
    monkeypatch.syspath_prepend(str(archive))
    assert mine._scan(mine.PROTOCOLS) is None
