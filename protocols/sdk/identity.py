"""Identities a peer hands out and a client must reuse: a SEPL platform creates a gateway for every
login that brings no known gateway id, so a probe run once a minute that forgot its id would leave
1,440 gateways a day behind. Such an id is remembered per profile, account and peer in fieldctl's
state folder (`$XDG_STATE_HOME/fieldctl/identities/`, default `~/.local/state/...`), one small
file each, written whole (a temporary renamed into place) and readable by its owner alone."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from fieldctl.protocols.core.atomic import PRIVATE, write_atomically

#: The longest id remembered: a peer's answer is not a way to fill the disk.
MAX_ID_CHARS = 1024


def state_folder() -> Path:
    """fieldctl's state folder (XDG): what it keeps between runs that is neither configuration nor data."""
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state) / "fieldctl"


def identity_file(kind: str, profile: str, *scope: str) -> Path:
    """Where the `kind` id of `profile` for this scope (an account, a peer's URL ...) is kept:
    readable names for a person, a digest of the scope so that another peer or account never
    picks up this one's id."""
    digest = hashlib.sha256("\0".join(scope).encode("utf-8", "surrogatepass")).hexdigest()[:16]
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", profile)[:64]
    return state_folder() / "identities" / f"{kind}-{safe}-{digest}"


def recall_identity(path: Path) -> str:
    """The id kept at `path`, or "" when there is none (or it cannot be read: a fresh one then)."""
    try:
        if not path.is_file():  # nor a FIFO someone planted, which would hold the open up
            return ""
        with path.open(encoding="utf-8") as file:
            return file.read(MAX_ID_CHARS + 1).strip()
    except (OSError, UnicodeDecodeError):
        return ""


def keep_identity(path: Path, value: str) -> str | None:
    """Keeps `value` at `path` (0600, atomically); why it could not, or None."""
    if not value or len(value) > MAX_ID_CHARS or "\n" in value:
        return f"not kept: an id of {len(value)} characters"
    try:
        write_atomically(path, value + "\n", PRIVATE)
    except OSError as exc:
        return f"cannot write {path}: {exc.strerror}"
    return None
