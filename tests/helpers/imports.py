"""What a fieldctl process imports (`python -X importtime`), for the tests that keep its quick paths
quick: they assert what is loaded, not how long it took."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers.processes import cli_env

#: What only a running subcommand may need.
HEAVY = ("rich.live", "zmq", "websockets", "prompt_toolkit", "asyncio", "fieldctl.protocols.transport")


def completing(line: str) -> dict[str, str]:
    words = line.split(" ")
    return {"_FIELDCTL_COMPLETE": "complete_bash", "COMP_WORDS": line, "COMP_CWORD": str(len(words) - 1)}


def imported(args: list[str], env: dict[str, str], module: str = "fieldctl") -> set[str]:
    """What `python -m MODULE ARGS` imports."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", module, *args],
        capture_output=True,
        check=False,
        text=True,
        env=cli_env(**env),
        stdin=subprocess.DEVNULL,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    return {line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
