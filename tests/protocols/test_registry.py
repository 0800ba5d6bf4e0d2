"""The registry reads entry points itself; it must find what importlib.metadata finds."""

from __future__ import annotations

from importlib.metadata import entry_points

from fieldctl.protocols import registry


def test_scan_finds_what_importlib_metadata_finds() -> None:
    for group in (registry.PROTOCOLS, registry.PROFILES):
        scanned = registry._scan(group)
        assert scanned is not None
        assert sorted((ep.name, ep.value) for ep in scanned) == sorted((ep.name, ep.value) for ep in entry_points(group=group))


def test_entry_points_load_like_importlib_metadata() -> None:
    assert registry.EntryPoint("x", "fieldctl.protocols.registry:EntryPoint.load").load() is registry.EntryPoint.load
    assert registry.EntryPoint("x", "fieldctl.protocols.registry").load() is registry
    assert registry.EntryPoint("x", "fieldctl.protocols.registry : PROTOCOLS [extra]").load() == registry.PROTOCOLS
    for ep in entry_points(group=registry.PROTOCOLS):
        mine = registry.EntryPoint(ep.name, ep.value)
        assert (mine.module, mine.attr) == (ep.module, ep.attr)


def test_a_zip_on_the_path_leaves_it_to_importlib_metadata(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    archive = tmp_path / "plugins.zip"
    archive.write_bytes(b"PK\x05\x06" + b"\x00" * 18)  # an empty zip
    monkeypatch.syspath_prepend(str(archive))
    assert registry._scan(registry.PROTOCOLS) is None
