"""`simulate sepl` (the platform) on a free port with a control socket, fieldctl's connector
against it, and the password both read."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from tests.helpers.ports import free_port
from tests.helpers.processes import FIELDCTL, Proc, cli_env, run_cli

PASSWORD = "pw-Zx81-never-shown"
LAMP = "dev-1:iot#type-lamp:Lamp 1:location=kitchen"


def env(password: str = PASSWORD) -> dict[str, str]:
    return cli_env(SEPL_PASSWORD=password)


class Platform:
    """A `simulate sepl` on a free port with a control socket."""

    def __init__(self, tmp: Path, *extra: str, base: str = "ws://127.0.0.1") -> None:
        self.port = free_port()
        self.url = f"{base}:{self.port}"
        self.control = str(tmp / f"sepl-{self.port}.sock")
        self.extra = extra
        self.proc = self.start()

    def start(self) -> Proc:
        proc = Proc(
            [
                *FIELDCTL,
                "simulate",
                "sepl",
                "--json",
                "--endpoint",
                f"platform={self.url}",
                "--control",
                self.control,
                *self.extra,
            ],
            env=env(),
        )
        for name in ("platform", "control"):
            proc.wait_json(lambda m, name=name: m["kind"] == "bound" and m["endpoint"] == name)
        return proc

    @property
    def args(self) -> list[str]:
        return ["--endpoint", f"platform={self.url}"]

    def via(self, verb: str, *args: str, timeout: float = 15) -> subprocess.CompletedProcess[str]:
        return run_cli(verb, "sepl", *args, "--via", self.control, "--json", timeout=timeout, env=env())


def connector(plat: Platform, tmp: Path, *extra: str, password: str = PASSWORD) -> Proc:
    return Proc(
        [*FIELDCTL, "register", "sepl", "--json", *plat.args, "--store", str(tmp / "devices.sqlite"), *extra],
        env=env(password),
    )


def is_link(state: str) -> Any:
    return lambda m: m["channel"] == "link" and m["kind"] == state
