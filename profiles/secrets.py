"""Secrets are references (an environment variable or a file), never values in a profile."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from fieldctl.protocols.core import redact
from fieldctl.protocols.core.errors import UsageError


class Secret:
    """Holds a secret value; printing, logging or formatting it never shows the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        redact.remember(value)  # a resolved secret is masked in all output from now on

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret(***)"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return "***"


@dataclass(frozen=True)
class SecretRef:
    env: str | None = None
    file: str | None = None

    def describe(self) -> str:
        return f"env:{self.env}" if self.env else f"file:{self.file}"

    def resolve(self) -> Secret:
        if self.env:
            value = os.environ.get(self.env)
            if value is None:
                raise UsageError(
                    f"{self.env} is not set: the profile reads a secret from this environment variable"
                    f" (export {self.env}=...)"
                )
            return Secret(value)
        path = Path(os.path.expanduser(self.file or ""))
        try:
            return Secret(path.read_text(encoding="utf-8").strip())
        except OSError as exc:
            raise UsageError(f"secret {self.describe()} cannot be read: {exc.strerror}") from None
