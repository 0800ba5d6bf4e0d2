"""fieldctl.sdk: everything a protocol package may use, and nothing else.

A protocol plugin imports fieldctl only through this module (and `fieldctl.testing` in its
tests); docs/plugins.md documents every name below and what may change in a minor version. The
names live in fieldctl's layers (core, profiles, the contract, the transports); this module is
their one public face, so those layers can move without breaking a plugin. A name is imported
from its home when first used, so a plugin's options.py that takes two names from here keeps
`--help` and completion fast; the type checker sees the imports below.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fieldctl.profiles import Profile
    from fieldctl.profiles.model import CommandSpec, HeartbeatSpec
    from fieldctl.profiles.schema import (
        ANY,
        COUNT,
        DELAY,
        ENDPOINT,
        FLAG,
        LIST,
        NUMBER,
        POSITIVE,
        RATE,
        SECONDS,
        TABLE,
        TEXT,
        TEXTS,
        Setting,
        at_most,
        did_you_mean,
        one_of,
    )
    from fieldctl.profiles.secrets import Secret, SecretRef
    from fieldctl.protocols.core.errors import (
        AddressInUse,
        ConnectFailure,
        FieldctlError,
        NagiosCode,
        ProtocolFailure,
        RemoteFailure,
        Timeout,
        Unsupported,
        UsageError,
    )
    from fieldctl.protocols.core.limits import DEFAULT_LIMITS, Limits, Malformed, loads
    from fieldctl.protocols.core.message import IN, LINK, OUT, Message, link
    from fieldctl.protocols.core.readable import duration_text, value_text
    from fieldctl.protocols.core.redact import mask, remember
    from fieldctl.protocols.sdk.contract import (
        LOOKS,
        BaseDriver,
        ClientSession,
        CommandOutcome,
        CommandRequest,
        Context,
        Emit,
        Notify,
        ProbeReport,
        Simulation,
        link_emitter,
    )
    from fieldctl.protocols.sdk.faults import Faults, Verdict, parse_rule, parse_rules
    from fieldctl.protocols.sdk.identity import identity_file, keep_identity, recall_identity
    from fieldctl.protocols.sdk.machine import Effects, Frame, Machine
    from fieldctl.protocols.sdk.options import PARAMS, RUNS_A_PROGRAM, UNPICKLES, Declared, OptionSpec
    from fieldctl.protocols.sdk.probing import verdict
    from fieldctl.protocols.sdk.replay import paced, replayable
    from fieldctl.protocols.sdk.runners import (
        documents,
        publish_subscribe,
        relay_documents,
        relay_websocket,
        relay_zeromq,
        request_reply,
        stream_client,
        stream_server,
    )
    from fieldctl.protocols.sdk.runners.relay import Pipe, Tap, cut_when_due
    from fieldctl.protocols.sdk.schedule import ticks
    from fieldctl.protocols.transport import LISTEN_REFUSED_AFTER_S, tcp, together, within
    from fieldctl.protocols.transport.backoff import Backoff

__all__ = [
    "ANY",
    "COUNT",
    "DEFAULT_LIMITS",
    "DELAY",
    "ENDPOINT",
    "FLAG",
    "IN",
    "LINK",
    "LIST",
    "LISTEN_REFUSED_AFTER_S",
    "LOOKS",
    "NUMBER",
    "OUT",
    "PARAMS",
    "POSITIVE",
    "RATE",
    "RUNS_A_PROGRAM",
    "SECONDS",
    "TABLE",
    "TEXT",
    "TEXTS",
    "UNPICKLES",
    "AddressInUse",
    "Backoff",
    "BaseDriver",
    "ClientSession",
    "CommandOutcome",
    "CommandRequest",
    "CommandSpec",
    "ConnectFailure",
    "Context",
    "Declared",
    "Effects",
    "Emit",
    "Faults",
    "FieldctlError",
    "Frame",
    "HeartbeatSpec",
    "Limits",
    "Machine",
    "Malformed",
    "Message",
    "NagiosCode",
    "Notify",
    "OptionSpec",
    "Pipe",
    "ProbeReport",
    "Profile",
    "ProtocolFailure",
    "RemoteFailure",
    "Secret",
    "SecretRef",
    "Setting",
    "Simulation",
    "Tap",
    "Timeout",
    "Unsupported",
    "UsageError",
    "Verdict",
    "at_most",
    "cut_when_due",
    "did_you_mean",
    "documents",
    "duration_text",
    "identity_file",
    "keep_identity",
    "link",
    "link_emitter",
    "loads",
    "mask",
    "one_of",
    "paced",
    "parse_rule",
    "parse_rules",
    "publish_subscribe",
    "recall_identity",
    "relay_documents",
    "relay_websocket",
    "relay_zeromq",
    "remember",
    "replayable",
    "request_reply",
    "stream_client",
    "stream_server",
    "tcp",
    "ticks",
    "together",
    "value_text",
    "verdict",
    "within",
]

#: Where each public name lives (a module for `tcp`).
_HOMES = {
    "Profile": "fieldctl.profiles",
    "CommandSpec": "fieldctl.profiles.model",
    "HeartbeatSpec": "fieldctl.profiles.model",
    "ANY": "fieldctl.profiles.schema",
    "COUNT": "fieldctl.profiles.schema",
    "DELAY": "fieldctl.profiles.schema",
    "ENDPOINT": "fieldctl.profiles.schema",
    "FLAG": "fieldctl.profiles.schema",
    "LIST": "fieldctl.profiles.schema",
    "NUMBER": "fieldctl.profiles.schema",
    "POSITIVE": "fieldctl.profiles.schema",
    "RATE": "fieldctl.profiles.schema",
    "SECONDS": "fieldctl.profiles.schema",
    "TABLE": "fieldctl.profiles.schema",
    "TEXT": "fieldctl.profiles.schema",
    "TEXTS": "fieldctl.profiles.schema",
    "Setting": "fieldctl.profiles.schema",
    "at_most": "fieldctl.profiles.schema",
    "did_you_mean": "fieldctl.profiles.schema",
    "one_of": "fieldctl.profiles.schema",
    "Secret": "fieldctl.profiles.secrets",
    "SecretRef": "fieldctl.profiles.secrets",
    "AddressInUse": "fieldctl.protocols.core.errors",
    "ConnectFailure": "fieldctl.protocols.core.errors",
    "FieldctlError": "fieldctl.protocols.core.errors",
    "NagiosCode": "fieldctl.protocols.core.errors",
    "ProtocolFailure": "fieldctl.protocols.core.errors",
    "RemoteFailure": "fieldctl.protocols.core.errors",
    "Timeout": "fieldctl.protocols.core.errors",
    "Unsupported": "fieldctl.protocols.core.errors",
    "UsageError": "fieldctl.protocols.core.errors",
    "DEFAULT_LIMITS": "fieldctl.protocols.core.limits",
    "Limits": "fieldctl.protocols.core.limits",
    "Malformed": "fieldctl.protocols.core.limits",
    "loads": "fieldctl.protocols.core.limits",
    "IN": "fieldctl.protocols.core.message",
    "LINK": "fieldctl.protocols.core.message",
    "OUT": "fieldctl.protocols.core.message",
    "Message": "fieldctl.protocols.core.message",
    "link": "fieldctl.protocols.core.message",
    "duration_text": "fieldctl.protocols.core.readable",
    "value_text": "fieldctl.protocols.core.readable",
    "mask": "fieldctl.protocols.core.redact",
    "remember": "fieldctl.protocols.core.redact",
    "LOOKS": "fieldctl.protocols.sdk.contract",
    "BaseDriver": "fieldctl.protocols.sdk.contract",
    "ClientSession": "fieldctl.protocols.sdk.contract",
    "CommandOutcome": "fieldctl.protocols.sdk.contract",
    "CommandRequest": "fieldctl.protocols.sdk.contract",
    "Emit": "fieldctl.protocols.sdk.contract",
    "Notify": "fieldctl.protocols.sdk.contract",
    "ProbeReport": "fieldctl.protocols.sdk.contract",
    "Context": "fieldctl.protocols.sdk.contract",
    "Simulation": "fieldctl.protocols.sdk.contract",
    "link_emitter": "fieldctl.protocols.sdk.contract",
    "PARAMS": "fieldctl.protocols.sdk.options",
    "RUNS_A_PROGRAM": "fieldctl.protocols.sdk.options",
    "UNPICKLES": "fieldctl.protocols.sdk.options",
    "Declared": "fieldctl.protocols.sdk.options",
    "OptionSpec": "fieldctl.protocols.sdk.options",
    "verdict": "fieldctl.protocols.sdk.probing",
    "paced": "fieldctl.protocols.sdk.replay",
    "replayable": "fieldctl.protocols.sdk.replay",
    "documents": "fieldctl.protocols.sdk.runners.documents",
    "ticks": "fieldctl.protocols.sdk.schedule",
    "LISTEN_REFUSED_AFTER_S": "fieldctl.protocols.transport",
    "together": "fieldctl.protocols.transport",
    "within": "fieldctl.protocols.transport",
    "Backoff": "fieldctl.protocols.transport.backoff",
    "tcp": "fieldctl.protocols.transport.tcp",
    "Faults": "fieldctl.protocols.sdk.faults",
    "Verdict": "fieldctl.protocols.sdk.faults",
    "parse_rule": "fieldctl.protocols.sdk.faults",
    "parse_rules": "fieldctl.protocols.sdk.faults",
    "Pipe": "fieldctl.protocols.sdk.runners.relay",
    "Tap": "fieldctl.protocols.sdk.runners.relay",
    "cut_when_due": "fieldctl.protocols.sdk.runners.relay",
    "relay_zeromq": "fieldctl.protocols.sdk.runners.relay_zeromq",
    "relay_websocket": "fieldctl.protocols.sdk.runners.relay_websocket",
    "relay_documents": "fieldctl.protocols.sdk.runners.relay_documents",
    "identity_file": "fieldctl.protocols.sdk.identity",
    "keep_identity": "fieldctl.protocols.sdk.identity",
    "recall_identity": "fieldctl.protocols.sdk.identity",
    "Effects": "fieldctl.protocols.sdk.machine",
    "Frame": "fieldctl.protocols.sdk.machine",
    "Machine": "fieldctl.protocols.sdk.machine",
    "publish_subscribe": "fieldctl.protocols.sdk.runners.publish_subscribe",
    "request_reply": "fieldctl.protocols.sdk.runners.request_reply",
    "stream_client": "fieldctl.protocols.sdk.runners.stream_client",
    "stream_server": "fieldctl.protocols.sdk.runners.stream_server",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(home)
    value = module if module.__name__.rpartition(".")[2] == name else getattr(module, name)
    globals()[name] = value
    return value
