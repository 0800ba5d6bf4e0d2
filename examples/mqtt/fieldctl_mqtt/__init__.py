"""mqtt: a device that talks through an MQTT 3.1.1 broker, a seventh system for fieldctl as a plugin.

Kept import-light: fieldctl loads PROFILES when it lists profiles (shell completion included);
the driver and aiomqtt load only when a role runs."""

from pathlib import Path

PROFILES = Path(__file__).parent / "profiles"
