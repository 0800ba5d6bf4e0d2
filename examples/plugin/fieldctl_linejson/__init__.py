"""linejson: newline-delimited JSON objects over TCP, a sixth system for fieldctl as a plugin.

Kept import-light: fieldctl loads PROFILES when it lists profiles (shell completion included);
the driver and its transport load only when a role runs."""

from pathlib import Path

PROFILES = Path(__file__).parent / "profiles"
