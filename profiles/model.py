"""The validated, resolved form of a profile that protocols and the CLI use."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fieldctl.profiles.schema import BROKER, SIMULATOR
from fieldctl.profiles.secrets import SecretRef
from fieldctl.protocols.core.limits import MAX_DEPTH, MAX_FRAME_BYTES, Limits


@dataclass(frozen=True)
class CommandSpec:
    name: str
    code: int | str
    help: str = ""
    payload: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class HeartbeatSpec:
    channel: str | None = None
    interval_s: float = 5.0
    stale_after_s: float = 15.0
    fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class Profile:
    name: str
    protocol: str
    description: str
    source: str
    host: str
    endpoints: dict[str, str]
    channels: dict[str, Any]
    commands: dict[str, CommandSpec]
    events: dict[str, Any]
    heartbeat: HeartbeatSpec
    auth: dict[str, SecretRef]
    data: dict[str, Any]
    #: The dotted keys set over the profile files, each with who set it (`--set`, `target NAME: set`):
    #: their problems are told as theirs, and an unknown one is refused wherever it lies (a key in
    #: a profile file that nobody reads is for `profiles validate`).
    overrides: dict[str, str] = field(default_factory=dict)

    def setting(self, dotted: str, default: Any = None) -> Any:
        """A protocol-specific value from the raw profile data, e.g. ``simulate.identifier``."""
        node: Any = self.data
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    @property
    def limits(self) -> Limits:
        """What one frame may cost to decode: the profile's ``[limits]`` (checked by the validator)."""
        table = self.data.get("limits") or {}
        return Limits(
            max_frame_bytes=int(table.get("max_frame_bytes", MAX_FRAME_BYTES)),
            max_depth=int(table.get("max_depth", MAX_DEPTH)),
        )

    def topology(self, endpoint: str) -> str:
        """Who binds `endpoint` (the profile's [topology]): "simulator" (the default), "client", or
        "broker" (nobody here: both sides connect to a broker at that address)."""
        value = self.data.get("topology", {}).get(endpoint, SIMULATOR)
        return str(value)

    @property
    def broker_endpoints(self) -> frozenset[str]:
        """The endpoints both sides reach through a broker: a private run never moves them."""
        return frozenset(name for name in self.endpoints if self.topology(name) == BROKER)
