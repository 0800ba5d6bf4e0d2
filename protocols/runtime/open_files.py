"""Open files for roles that run many at once (a fleet's targets, a simulated fleet's devices,
bench's clients): each holds several descriptors (sockets, and a ZeroMQ socket's mailbox and
monitor), so the usual soft limit of 1,024 ends a fleet of a few hundred with EMFILE, target by
target. Such a role raises the soft limit to the hard one, then refuses to start (exit 2, one
line) what the hard limit still cannot hold."""

from __future__ import annotations

import contextlib
import resource

from fieldctl.protocols.core.errors import UsageError
from fieldctl.protocols.sdk.contract import BaseDriver

#: What one run of a role a driver plays but declares no figure for (`BaseDriver.open_files`)
#: counts: a ZeroMQ socket with its monitor.
UNDECLARED = 4
#: What the process holds besides its targets: standard streams, the event loop's and ZeroMQ's
#: own descriptors (about a dozen, measured), the files it reads, a server's connections.
PROCESS = 128


def raise_soft_limit() -> int:
    """The soft RLIMIT_NOFILE raised to the hard one, where the system allows it: the soft limit
    now (RLIM_INFINITY when there is none)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        with contextlib.suppress(ValueError, OSError):  # a container may refuse; a smaller fleet still runs
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def per_run(driver: type[BaseDriver] | BaseDriver, role: str) -> int:
    """The open files one run of `role` holds at most: as the driver declares; UNDECLARED for a
    role it plays without saying; none for a role it does not play (its base raises Unsupported)."""
    kind = driver if isinstance(driver, type) else type(driver)
    declared = kind.open_files.get(role)
    if declared is not None:
        return declared
    return UNDECLARED if role in kind.roles else 0


def reserve(needed: int, what: str) -> None:
    """Raises the soft limit, and refuses (UsageError) when `needed` descriptors and the process's
    own PROCESS do not fit under it. `what` names who needs them: `listen --fleet F: 2000 targets`."""
    total = needed + PROCESS
    limit = raise_soft_limit()
    if limit == resource.RLIM_INFINITY or total <= limit:
        return
    raise UsageError(
        f"{what} need about {total} open files, but this process may open at most {limit} (`ulimit -Hn`): "
        f"raise that limit to {total} or more (`ulimit -n {total}` as root, or nofile in "
        f"/etc/security/limits.conf; LimitNOFILE={total} for a systemd service), or run fewer at once"
    )


def at_once(per_each: int, wanted: int, least: int, what: str) -> int:
    """How many of `wanted` runs of `per_each` open files may go at once: all that fit under the
    (raised) limit, at most `wanted`, and never 0 (a semaphore of none lets no run through).
    Refuses (UsageError) when not even `least` of them fit."""
    if wanted < 1 or per_each < 1:
        return max(wanted, 1)
    floor = min(wanted, least)
    reserve(floor * per_each, what)
    limit = raise_soft_limit()
    if limit == resource.RLIM_INFINITY:
        return wanted
    return max(floor, min(wanted, (limit - PROCESS) // per_each))
