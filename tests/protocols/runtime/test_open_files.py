"""What one run of a role counts (as declared, a ZeroMQ socket when undeclared, nothing when not
played), and the soft limit raised to the hard one (in a child: this process keeps its own)."""

from __future__ import annotations

import subprocess
import sys
from typing import ClassVar

from fieldctl.protocols.runtime.open_files import UNDECLARED, per_run
from fieldctl.protocols.sdk.contract import BaseDriver


class Declaring(BaseDriver):
    roles: ClassVar[frozenset[str]] = frozenset({"listen", "register"})
    open_files: ClassVar[dict[str, int]] = {"listen": 1}


def test_a_role_counts_as_declared_as_a_zeromq_socket_when_undeclared_and_nothing_when_not_played() -> None:
    assert per_run(Declaring, "listen") == 1
    assert per_run(Declaring, "register") == UNDECLARED
    assert per_run(Declaring, "probe") == 0


def limited_python(script: str, soft: int, hard: int) -> subprocess.CompletedProcess[str]:
    """`script` in a child whose limits on open files are `soft` and `hard` (this process keeps its own)."""
    limits = f'ulimit -Sn {soft} && ulimit -Hn {hard} && exec "$@"'
    return subprocess.run(
        ["sh", "-c", limits, "sh", sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=True
    )


def test_the_soft_limit_goes_up_to_the_hard_one() -> None:
    script = (
        "import resource\n"
        "from fieldctl.protocols.runtime.open_files import raise_soft_limit\n"
        "print(raise_soft_limit(), *resource.getrlimit(resource.RLIMIT_NOFILE))\n"
    )
    result = limited_python(script, 64, 300)
    assert result.stdout.split() == ["300", "300", "300"], result.stderr


def test_as_many_run_at_once_as_the_hard_limit_holds_and_never_fewer_than_asked() -> None:
    """Under a hard limit of 1,128 (PROCESS is 128), runs of 8 open files: 125 of 300 at once; at
    least 32 or a refusal that says how many open files they need."""
    script = (
        "from fieldctl.protocols.core.errors import UsageError\n"
        "from fieldctl.protocols.runtime.open_files import at_once\n"
        "print(at_once(8, 300, 32, 'x'), at_once(8, 20, 32, 'x'), at_once(1, 0, 32, 'x'))\n"
        "try:\n"
        "    at_once(40, 300, 32, 'f: 300 targets')\n"
        "except UsageError as exc:\n"
        "    print(exc)\n"
    )
    result = limited_python(script, 64, 1128)
    counts, refusal = result.stdout.splitlines()
    assert counts.split() == ["125", "20", "1"], result.stderr
    assert refusal.startswith("f: 300 targets need about 1408 open files")
