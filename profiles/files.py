"""Where profiles and saved targets live, and their TOML read once per version of a file.

Kept apart from the model and the validator: completing a profile or target name on every <TAB>
needs the names only, and imports nothing more than this."""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fieldctl.profiles import bounded_toml
from fieldctl.profiles.bounded_toml import MAX_TOML_BYTES
from fieldctl.protocols.core import entry_points
from fieldctl.protocols.core.errors import UsageError

BUILTIN_DIR = Path(__file__).parent / "builtin"


class ProfileError(UsageError):
    """A profile that cannot be found, read or validated; says file, field and reason."""


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "fieldctl"


def user_dir() -> Path:
    return config_dir() / "profiles"


def targets_path() -> Path:
    return config_dir() / "targets.toml"


def state_dir() -> Path:
    """What fieldctl remembers between runs (console history, the current target), not configuration."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "fieldctl"


def current_target_path() -> Path:
    return state_dir() / "current-target"


def available_profiles(profile_files: Iterable[str | Path] = ()) -> dict[str, Path]:
    """Name -> file; user profiles shadow installed ones (built-in or plugins), explicit files shadow both."""
    found: dict[str, Path] = {}
    for folder in [*installed_folders(), user_dir()]:
        if folder.is_dir():
            for path in sorted(folder.glob("*.toml")):
                found[path.stem] = path
    for path in map(Path, profile_files):
        found[read_toml(path).get("name") or path.stem] = path
    return found


def installed_folders() -> list[Path]:
    """The profile folder of every installed package (fieldctl's own built-ins, plugins), in name order."""
    return [Path(ep.load("profile folder")) for ep in entry_points.group(entry_points.PROFILES).values()]


def read_toml(path: Path) -> dict[str, Any]:
    """The file's TOML, parsed within limits once per version of the file (a fleet loads one
    profile many times); every caller gets its own copy to change. Every problem is one
    ProfileError (exit 2) that names the file."""
    try:
        stat = path.stat()
        if stat.st_size > MAX_TOML_BYTES:
            raise ProfileError(f"{path}: {too_large(stat.st_size)}")
        return copy.deepcopy(_parsed(path, stat.st_mtime_ns, stat.st_size))
    except OSError as exc:
        raise ProfileError(f"{path}: cannot read: {exc.strerror}") from None


def too_large(size: int) -> str:
    return f"{size} bytes, over the limit of {MAX_TOML_BYTES} bytes for a TOML file"


@functools.lru_cache(maxsize=256)
def _parsed(path: Path, mtime_ns: int, size: int) -> dict[str, Any]:
    with path.open("rb") as handle:
        data = handle.read(MAX_TOML_BYTES + 1)  # the file may have grown since its stat
    return parse_toml(data, path)


def parse_toml(data: bytes | str, source: object) -> dict[str, Any]:
    """TOML (UTF-8 bytes or text) as a dict, within the size and depth limits; what is not is one
    ProfileError naming its source."""
    import tomllib

    if len(data) > MAX_TOML_BYTES:
        raise ProfileError(f"{source}: {too_large(len(data))}")
    try:
        return bounded_toml.parse(data.decode("utf-8") if isinstance(data, bytes) else data)
    except UnicodeDecodeError:
        raise ProfileError(f"{source}: not UTF-8 text") from None
    except bounded_toml.TomlTooDeep as exc:
        raise ProfileError(f"{source}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{source}: not valid TOML: {exc}") from None
