"""Installed packages' entry points, read without importing importlib.metadata (which imports
email: ~20 ms of every start-up, and of every completion of a profile name). The profiles layer
finds plugins' profile folders here and the registry finds their drivers; neither knows the other."""

from __future__ import annotations

import functools
import importlib
import os
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib.machinery import PathFinder
from typing import Any

from fieldctl.protocols.core.errors import UsageError

#: name -> "package.module:Driver", a BaseDriver subclass.
PROTOCOLS = "fieldctl.protocols"
#: name -> "package.module:ATTRIBUTE", a folder of profile TOML files.
PROFILES = "fieldctl.profiles"

#: importlib.metadata's entry point value: module, then optionally :attribute and [extras].
_VALUE = re.compile(r"(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?((?P<extras>\[.*\])\s*)?$")


@dataclass(frozen=True)
class EntryPoint:
    """What fieldctl needs of importlib.metadata.EntryPoint, and loaded the same way."""

    name: str
    value: str

    @property
    def module(self) -> str:
        return self._part("module")

    @property
    def attr(self) -> str:
        return self._part("attr")

    def _part(self, part: str) -> str:
        match = _VALUE.match(self.value)
        if match is None:
            raise ValueError(f"not an entry point: {self.value!r}")
        return match.group(part) or ""

    def load(self, what: str) -> Any:
        """The object it names; a plugin that fails to load is one clear line (UsageError)."""
        try:
            target: Any = importlib.import_module(self.module)
            for attr in filter(None, self.attr.split(".")):
                target = getattr(target, attr)
        except Exception as exc:  # noqa: BLE001  a broken plugin is the user's to fix, with one clear line
            raise UsageError(
                f"{what} {self.name!r} ({self.value}) cannot be loaded: {type(exc).__name__}: {exc}"
            ) from None
        return target


@functools.cache
def group(name: str) -> dict[str, EntryPoint]:
    """The entry points of one group, by name, in name order."""
    found = _scan(name)
    if found is None:  # a path or finder only importlib.metadata knows how to read
        from importlib.metadata import entry_points

        found = [EntryPoint(ep.name, ep.value) for ep in entry_points(group=name)]
    return {ep.name: ep for ep in sorted(found, key=lambda ep: ep.name)}


def _scan(group: str) -> list[EntryPoint] | None:
    """The group's entry points from the `entry_points.txt` of every distribution on sys.path,
    the first distribution of each name winning, as importlib.metadata does. None where only
    importlib.metadata can tell: a zip or other non-folder on sys.path, or a finder of its own
    that lists distributions."""
    if any(hasattr(finder, "find_distributions") and finder is not PathFinder for finder in sys.meta_path):
        return None
    seen: set[str] = set()
    found: list[EntryPoint] = []
    for entry in sys.path:
        folder = entry or "."
        if not os.path.isdir(folder):
            if os.path.exists(folder):
                return None
            continue
        for child in _distributions(folder):
            name = re.sub(r"[-_.]+", "_", child.rpartition(".")[0].partition("-")[0]).lower()
            if name in seen:
                continue
            seen.add(name)
            try:
                with open(os.path.join(folder, child, "entry_points.txt"), encoding="utf-8") as text:
                    found += _section(text, group)
            except OSError:  # no entry points (or an old single-file egg-info)
                pass
    return found


def _distributions(folder: str) -> Iterator[str]:
    try:
        children = os.listdir(folder)
    except OSError:
        return
    for child in children:
        if child.lower().endswith((".dist-info", ".egg-info")):
            yield child


def _section(lines: Iterable[str], group: str) -> Iterator[EntryPoint]:
    """`name = value` lines of one [group] of an entry_points.txt (INI, as importlib reads it)."""
    current = None
    for text in lines:
        line = text.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1].strip()
        elif current == group:
            name, sep, value = line.partition("=")
            if sep:
                yield EntryPoint(name.strip(), value.strip())
