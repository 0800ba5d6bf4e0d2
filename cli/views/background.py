"""A simulator started with `&` from an interactive shell: it must not draw a live table over
the foreground program's (the README's first session runs `listen` in the same terminal), so it
says once where it serves and how to stop it, then stays quiet; errors still reach stderr."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import TYPE_CHECKING

from fieldctl.cli.framework.escape import visible
from fieldctl.cli.views.links import link_text

if TYPE_CHECKING:
    from fieldctl.profiles import Profile
    from fieldctl.protocols.core.message import Message

#: After the first message (usually a `bound` link), how long to wait for the others before announcing.
SETTLE_S = 0.5


def in_background() -> bool:
    """True when stdout is a terminal whose foreground process group is not ours (`cmd &`)."""
    try:
        return os.tcgetpgrp(sys.stdout.fileno()) != os.getpgrp()
    except (OSError, ValueError):
        return False  # not a terminal (or no controlling terminal): nothing to fight over


class Announcer:
    """Stands in for the live view: collects `bound` links, then writes the one line."""

    def __init__(self, profile: Profile, role: str) -> None:
        self.profile, self.role = profile, role
        self.bound: dict[str, str] = {}
        self.announced = self.settling = False

    def add(self, msg: Message) -> None:
        if self.announced:
            return
        if msg.is_link and msg.kind == "bound":
            self.bound[msg.endpoint] = link_text(msg)
            if self.profile.endpoints.keys() <= self.bound.keys():
                self.announce()
                return
        if not self.settling:  # endpoints a simulator does not bind (a client's socket) are not waited for
            self.settling = True
            asyncio.get_running_loop().call_later(SETTLE_S, self.announce)

    def announce(self) -> None:
        if self.announced:
            return
        self.announced = True
        where = ", ".join(f"{name} {url}" for name, url in sorted((self.bound or self.profile.endpoints).items()))
        pid = os.getpid()
        line = (
            f"fieldctl {self.role} {self.profile.name}: serving {where} in the background (pid {pid}); "
            f"stop it with: kill {pid}"
        )
        sys.stderr.write(visible(line) + "\n")
        sys.stderr.flush()
