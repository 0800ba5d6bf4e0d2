"""Protocol plugins made in a test's folder and found through their entry points alone: a
package and the dist-info folder pip would leave beside it, on PYTHONPATH. No build, no venv."""

from __future__ import annotations

from pathlib import Path

#: A driver that plays no role: enough for whatever fails before a role runs.
IDLE_DRIVER = "from fieldctl.sdk import BaseDriver\n\n\nclass Driver(BaseDriver):\n    pass\n"


def plugin_on_path(folder: Path, protocol: str, profile: str, driver: str = "") -> dict[str, str]:
    """Writes plugin `protocol` into `folder`: its own-named profile (TOML text) and the Driver
    its entry point names (`driver`, "module:Class"; by default its own that plays nothing).
    Returns the environment a fieldctl process finds it with."""
    package = folder / f"fieldctl_{protocol}"
    (package / "profiles").mkdir(parents=True)
    (package / "__init__.py").write_text("from pathlib import Path\n\nPROFILES = Path(__file__).parent / 'profiles'\n")
    (package / "driver.py").write_text(IDLE_DRIVER)
    (package / "profiles" / f"{protocol}.toml").write_text(profile)
    info = folder / f"fieldctl_{protocol}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: fieldctl-{protocol}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        f"[fieldctl.protocols]\n{protocol} = {driver or f'fieldctl_{protocol}.driver:Driver'}\n\n"
        f"[fieldctl.profiles]\n{protocol} = fieldctl_{protocol}:PROFILES\n"
    )
    return {"PYTHONPATH": str(folder)}


#: A profile that does not validate: no endpoints, and a heartbeat interval that is no number.
BROKEN_PROFILE = 'name = "broken"\nprotocol = "broken"\n\n[heartbeat]\ninterval_s = "often"\n'
