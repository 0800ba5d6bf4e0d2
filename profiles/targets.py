"""Saved targets and fleet files: a target is a profile plus its overrides under a name.

`$XDG_CONFIG_HOME/fieldctl/targets.toml` holds the saved ones; a fleet file has the same schema, so
the saved targets are a fleet too. Overrides are kept as data (never a secret: a secret stays a
reference in the profile's `[auth]`, and `set` may only point such a reference elsewhere)::

    [targets.rig-3]
    profile = "autotrainer"
    host = "10.0.4.3"
    group = "room-1"                 # or a list of labels
    endpoints = { commands = "tcp://10.0.4.3:5556" }
    set = { "heartbeat.interval_s" = 1 }
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fieldctl.profiles.files import ProfileError, available_profiles, current_target_path, read_toml, targets_path
from fieldctl.protocols.core.atomic import PRIVATE, write_atomically
from fieldctl.protocols.core.errors import UsageError
from fieldctl.protocols.core.urls import INSTEAD, has_password

if TYPE_CHECKING:
    from fieldctl.profiles.model import Profile

#: A target's name: what a shell, a TOML key and a Prometheus label all take without quoting.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
KEYS = frozenset({"profile", "host", "group", "endpoints", "set"})


@dataclass(frozen=True)
class Target:
    name: str
    profile: str
    host: str | None = None
    endpoints: dict[str, str] = field(default_factory=dict)
    sets: dict[str, Any] = field(default_factory=dict)
    groups: tuple[str, ...] = ()

    def load(
        self,
        *,
        profile_files: Iterable[str | Path] = (),
        host: str | None = None,
        endpoints: Iterable[str] = (),
        sets: Iterable[str] = (),
    ) -> Profile:
        """The resolved profile; overrides given here (the command line's) win over the target's."""
        from fieldctl.profiles.loader import load_profile  # not at the top: completing a target's name needs no model

        own_sets = [
            f"{key}={value if isinstance(value, str) else json.dumps(value)}" for key, value in self.sets.items()
        ]
        own_endpoints = [f"{name}={url}" for name, url in self.endpoints.items()]
        return load_profile(
            self.profile,
            profile_files=profile_files,
            host=host or self.host,
            endpoints=[*own_endpoints, *endpoints],
            sets=sets,
            target_sets=own_sets,
            target=self.name,
        )

    def to_toml(self) -> dict[str, Any]:
        table: dict[str, Any] = {"profile": self.profile}
        if self.host:
            table["host"] = self.host
        if self.groups:
            table["group"] = self.groups[0] if len(self.groups) == 1 else list(self.groups)
        if self.endpoints:
            table["endpoints"] = dict(self.endpoints)
        if self.sets:
            table["set"] = dict(self.sets)
        return table


def check_name(name: str, what: str = "target name") -> str:
    if not NAME.fullmatch(name):
        raise UsageError(f"{what} {name!r}: letters, digits, '.', '_' and '-' only, 64 at most")
    return name


def check_sets(where: str, sets: dict[str, Any]) -> None:
    """A secret is never a value here: a key ending in a secret's name (`connector.password`) is
    refused; an `[auth]` reference may be pointed elsewhere (`auth.password.env`)."""
    from fieldctl.protocols.core.redact import is_secret_key

    for key in sets:
        if is_secret_key(key.rsplit(".", 1)[-1]):
            raise UsageError(
                f"{where}: set {key}: secrets stay references, never values in a target "
                f"(point the profile's [auth] reference elsewhere, e.g. auth.password.env=VARIABLE)"
            )


def _target(source: Path, name: str, table: Any) -> Target:
    where = f"{source}: targets.{name}"
    if not NAME.fullmatch(name):
        raise ProfileError(f"{where}: not a valid target name (letters, digits, '.', '_', '-')")
    if not isinstance(table, dict):
        raise ProfileError(f"{where}: must be a table")
    unknown = sorted(set(table) - KEYS)
    if unknown:
        raise ProfileError(f"{where}.{unknown[0]}: unknown key (known: {', '.join(sorted(KEYS))})")
    profile, host, group = table.get("profile"), table.get("host"), table.get("group", [])
    if not isinstance(profile, str) or not profile:
        raise ProfileError(f"{where}.profile: required, a profile name")
    if host is not None and not isinstance(host, str):
        raise ProfileError(f"{where}.host: must be a string")
    groups = [group] if isinstance(group, str) else group
    if not isinstance(groups, list) or not all(isinstance(g, str) and g for g in groups):
        raise ProfileError(f"{where}.group: must be a label or a list of labels")
    endpoints, sets = table.get("endpoints", {}), table.get("set", {})
    if not isinstance(endpoints, dict) or not all(isinstance(url, str) for url in endpoints.values()):
        raise ProfileError(f'{where}.endpoints: must be a table of NAME = "URL"')
    for key, url in {
        "host": f"//{host or ''}",
        **{f"endpoints.{name}": url for name, url in endpoints.items()},
    }.items():
        if has_password(url):
            raise ProfileError(f"{where}.{key}: {INSTEAD}")
    if not isinstance(sets, dict):
        raise ProfileError(f'{where}.set: must be a table of "dotted.key" = value')
    check_sets(where, sets)
    return Target(name, profile, host, dict(endpoints), dict(sets), tuple(groups))


def load_fleet(path: str | Path, group: str | None = None) -> dict[str, Target]:
    """Name -> Target from a fleet file (or targets.toml), in file order; `group` keeps only its members."""
    source = Path(path)
    data = read_toml(source)
    unknown = sorted(set(data) - {"targets"})
    if unknown:
        raise ProfileError(f"{source}: {unknown[0]}: unknown key (a fleet file holds [targets.NAME] tables)")
    tables = data.get("targets", {})
    if not isinstance(tables, dict):
        raise ProfileError(f"{source}: targets: must be a table of [targets.NAME] tables")
    fleet = {name: _target(source, name, table) for name, table in tables.items()}
    if group is not None:
        fleet = {name: target for name, target in fleet.items() if group in target.groups}
        if not fleet:
            raise UsageError(f"{source}: no target in group {group!r}")
    return fleet


def saved_targets() -> dict[str, Target]:
    path = targets_path()
    return load_fleet(path) if path.is_file() else {}


def chosen_targets() -> tuple[str | None, str | None]:
    """The current target (`target use NAME`) and the one before it, as the state dir remembers
    them; a file that is missing, too long or not two names remembers none."""
    try:
        with current_target_path().open("rb") as handle:
            data = handle.read(2 * 64 + 3)
    except OSError:
        return None, None
    names = [name if NAME.fullmatch(name) else None for name in data.decode("utf-8", "replace").splitlines()]
    if len(data) > 2 * 64 + 2 or not 1 <= len(names) <= 2:
        return None, None
    return names[0], names[1] if len(names) == 2 else None


def choose_target(name: str | None) -> None:
    """Makes `name` the current target (None: none), remembering the one it replaces for `target use -`."""
    current, previous = chosen_targets()
    if current != name:
        previous = current
    write_atomically(current_target_path(), f"{name or ''}\n{previous or ''}\n", PRIVATE)


def default_target() -> str | None:
    """The name a command given no PROFILE uses: $FIELDCTL_TARGET, else the current target."""
    import os

    return os.environ.get("FIELDCTL_TARGET") or chosen_targets()[0]


def write_fleet(path: str | Path, targets: Iterable[Target]) -> None:
    """Writes a fleet file (TOML) atomically, readable by its owner only (it holds hosts and URLs);
    JSON's string escapes are valid TOML basic strings."""
    lines: list[str] = []
    for target in targets:
        lines.append(f"[targets.{json.dumps(target.name)}]")
        for key, value in target.to_toml().items():
            lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    write_atomically(path, "\n".join(lines), PRIVATE)


def _toml_value(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(key)} = {_toml_value(item)}" for key, item in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if value is None:
        raise UsageError("a target value cannot be null")
    return json.dumps(value)


def resolve(
    name: str,
    *,
    profile_files: Iterable[str | Path] = (),
    host: str | None = None,
    endpoints: Iterable[str] = (),
    sets: Iterable[str] = (),
) -> Profile:
    """A profile name or a saved target's name, resolved with the command line's overrides.
    Profiles come first (a target may not shadow one); the error lists both when neither matches."""
    from fieldctl.profiles.loader import load_profile

    profile_files = tuple(profile_files)
    if name in available_profiles(profile_files):
        return load_profile(name, profile_files=profile_files, host=host, endpoints=endpoints, sets=sets)
    targets = saved_targets()
    if name in targets:
        return targets[name].load(profile_files=profile_files, host=host, endpoints=endpoints, sets=sets)
    profiles = ", ".join(sorted(available_profiles(profile_files))) or "none"
    saved = f"; targets: {', '.join(targets)}" if targets else ""
    raise ProfileError(f"unknown profile or target {name!r} (profiles: {profiles}{saved})")
