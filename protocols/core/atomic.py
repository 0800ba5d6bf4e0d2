"""Files fieldctl writes (saved targets, fleet files, completion scripts, reports), written whole
or not at all and never through a link someone planted: the text goes to a temporary created
exclusively beside the destination (a fresh random name, O_EXCL, so no link is followed), given
its mode before a byte is written, then renamed over the destination (which replaces a link
there instead of writing through it). Nothing is left behind when a write fails."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

#: For what may hold a URL, a host or a secret reference (targets.toml, fleet files).
PRIVATE = 0o600
#: For what anyone on the machine may read (a completion script, a test report).
PUBLIC = 0o644


def write_atomically(path: str | Path, text: str, mode: int) -> None:
    """Replaces `path` with `text` (UTF-8), its mode `mode`; OSError when it cannot."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            os.fchmod(file.fileno(), mode)
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
