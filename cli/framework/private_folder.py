"""SIGTERM as an exception, and a private temporary folder that it cannot leave behind.

SIGTERM outside a stream's own handling (which ends a stream with exit 0) raises Terminated where
the program is, as Ctrl-C raises KeyboardInterrupt, so that what the run created (a private
folder, a socket file) is removed on the way out instead of left behind by death by signal. While
a private folder is being created, and until the `with` that removes it holds it, the exception
waits: raised between the two, it would leave the folder in $TMPDIR."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

#: How the shell reports death by SIGTERM; a Terminated run ends with it, its clean-up done.
TERMINATED = 128 + 15


class Terminated(SystemExit):
    """A SystemExit, so that asyncio passes it on from any task or callback rather than keep it there."""


class _Hold:
    depth = 0
    pending = False


def on_sigterm(signum: int, frame: Any) -> None:
    """The SIGTERM handler (installed by cli/app.py): raise now, or once no folder is being made."""
    if _Hold.depth:
        _Hold.pending = True
        return
    raise Terminated(TERMINATED)


@contextlib.contextmanager
def private_folder(prefix: str) -> Iterator[str]:
    """A folder of our own (0700) in the temporary folder, removed when the block ends however it ends."""
    import tempfile  # not at the top: every run imports this module for on_sigterm, few make a folder

    _Hold.depth += 1
    try:
        folder = tempfile.TemporaryDirectory(prefix=prefix)
    except BaseException:
        _Hold.depth -= 1
        raise
    with folder as name:
        _Hold.depth -= 1
        if _Hold.pending and not _Hold.depth:
            _Hold.pending = False
            raise Terminated(TERMINATED)  # the SIGTERM that came meanwhile, inside: the folder goes
        yield name
