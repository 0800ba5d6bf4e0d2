"""The exit-code contract, shared by every subcommand and every protocol.

Protocol code raises these; the CLI turns each into one line on stderr and its exit code.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    REMOTE_FAILED = 1
    USAGE = 2
    CONNECT = 3
    TIMEOUT = 4
    PROTOCOL = 5


class NagiosCode(IntEnum):
    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


class FieldctlError(Exception):
    """Base for every error that ends a command with a known exit code."""

    exit_code: ExitCode = ExitCode.USAGE


class UsageError(FieldctlError):
    """Bad arguments, bad input files, unknown profile or command."""

    exit_code = ExitCode.USAGE


class RemoteFailure(FieldctlError):
    """The remote side answered, and refused or failed."""

    exit_code = ExitCode.REMOTE_FAILED


class ConnectFailure(FieldctlError):
    """The remote side cannot be reached, or refused our credentials."""

    exit_code = ExitCode.CONNECT


class AddressInUse(ConnectFailure):
    """Another process holds the address this role binds (often a simulator already running there)."""


class Timeout(FieldctlError):
    exit_code = ExitCode.TIMEOUT


class ProtocolFailure(FieldctlError):
    """The remote side sent something the protocol does not allow."""

    exit_code = ExitCode.PROTOCOL


class Unsupported(UsageError):
    """A profile's protocol does not offer this role."""


_BY_CODE: dict[int, type[FieldctlError]] = {
    cls.exit_code: cls for cls in (RemoteFailure, UsageError, ConnectFailure, Timeout, ProtocolFailure)
}


def error_for(code: int, text: str) -> FieldctlError:
    """The error another fieldctl process reported with this exit code (control path)."""
    return _BY_CODE.get(code, RemoteFailure)(text)
