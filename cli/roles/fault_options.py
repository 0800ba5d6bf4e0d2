"""--fault, --faults and --seed: the fault rules `proxy` and `simulate` take
(protocols/sdk/faults.py, docs/faults.md), checked before anything binds or connects."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from fieldctl.protocols.sdk.faults import Faults

FaultOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--fault",
        metavar="RULE",
        help="Inject a fault into the relayed traffic: 'delay 200ms', 'delay 50-400ms', 'drop rate=0.1', "
        "'drop channel=heartbeat', 'duplicate rate=0.05', 'corrupt rate=0.01', 'disconnect every=60s', "
        "'stall channel=heartbeat after=10s for=20s'; direction=in|out limits one to one way "
        "(repeatable; docs/faults.md).",
    ),
]
FaultsFileOpt = Annotated[
    str | None,
    typer.Option(
        "--faults",
        metavar="FILE",
        help="Fault rules from FILE, one a line ('#' comments); from=S and until=S schedule each over time.",
    ),
]
SeedOpt = Annotated[
    int | None,
    typer.Option("--seed", metavar="N", help="Repeat every random choice of the fault rules (rate=, jitter)."),
]

#: A faults file is a few lines a person wrote: more characters than this is not one.
MAX_FAULTS_FILE_CHARS = 1024 * 1024


def faults_from(rules: list[str] | None, file: str | None, seed: int | None) -> Faults:
    """The run's fault rules from the command line and the faults file; a usage error (exit 2)
    names the first rule that does not parse."""
    from fieldctl.protocols.core.errors import UsageError
    from fieldctl.protocols.sdk.faults import Faults, parse_rule, parse_rules

    try:
        parsed = [parse_rule(rule) for rule in rules or []]
    except ValueError as exc:
        raise UsageError(f"--fault {exc}") from None
    if file is not None:
        try:
            with open(file, encoding="utf-8") as handle:
                text = handle.read(MAX_FAULTS_FILE_CHARS + 1)
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise UsageError(f"--faults {file}: cannot read: {reason}") from None
        if len(text) > MAX_FAULTS_FILE_CHARS:
            raise UsageError(f"--faults {file}: more than {MAX_FAULTS_FILE_CHARS} characters")
        try:
            parsed += parse_rules(text, file)
        except ValueError as exc:
            raise UsageError(f"--faults {exc}") from None
    if seed is not None and not parsed:
        raise UsageError("--seed: there is no fault rule to seed (give --fault RULE or --faults FILE)")
    return Faults(parsed, seed)
