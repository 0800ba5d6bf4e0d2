"""Options every subcommand shares, and the few helpers they all use. Light imports only:
this module is on the path of `--help` and of shell completion."""

from __future__ import annotations

import copy
import functools
import inspect
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from fieldctl.cli.framework.completers import profile_names
from fieldctl.cli.framework.protocol_options import GIVEN, Given, sign

if TYPE_CHECKING:
    import asyncio

    from fieldctl.profiles import Profile
    from fieldctl.protocols.sdk.contract import BaseDriver

ProfileArg = Annotated[
    str,
    typer.Argument(help="profile name (see: fieldctl profiles list)", show_default=False, autocompletion=profile_names),
]
#: Wherever a subcommand takes a PROFILE: a profile or a saved target, else $FIELDCTL_TARGET or the
#: current target (`target use`; with_profile).
ProfileOrTargetArg = Annotated[
    str | None,
    typer.Argument(
        help="profile or saved target name (default: $FIELDCTL_TARGET, else the current target of "
        "`fieldctl target use`; see: fieldctl profiles list, fieldctl target list)",
        metavar="PROFILE",
        show_default=False,
        autocompletion=profile_names,
    ),
]
HostOpt = Annotated[
    str | None, typer.Option("--host", help="The device's host name or address, put into the profile's endpoints.")
]
EndpointOpt = Annotated[
    list[str] | None, typer.Option("--endpoint", metavar="NAME=URL", help="Override one endpoint (repeatable).")
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", metavar="KEY=VALUE", help="Override a profile value, e.g. heartbeat.interval_s=1."),
]
ProfileFileOpt = Annotated[
    list[Path] | None, typer.Option("--profile-file", metavar="PATH", help="Load a profile from this TOML file.")
]
ViaOpt = Annotated[
    str | None,
    typer.Option(
        "--via",
        metavar="SOCKET",
        help="Ask the simulator listening on this control socket to do it (simulate --control).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="NDJSON on stdout (the default when stdout is not a terminal).")]
LinesOpt = Annotated[
    bool,
    typer.Option(
        "--lines",
        help="One line per message (time, direction, channel, kind, summary), kept in the scrollback; "
        "the default when the terminal is too small for the live table.",
    ),
]
FormatOpt = Annotated[
    str | None,
    typer.Option(
        "--format",
        metavar="TEMPLATE",
        help="One line per message from TEMPLATE: Message fields as NDJSON names them and payload paths, "
        "e.g. '{ts:%H:%M:%S} {kind} {payload.mode}'; 'json' or 'ndjson': NDJSON as --json.",
    ),
]


class ProfileOptions:
    """The override options, bundled so subcommands pass them on in one piece, with what the
    line gave the protocol."""

    def __init__(
        self,
        name: str | None,
        host: str | None,
        endpoint: list[str] | None,
        set_: list[str] | None,
        profile_file: list[Path] | None,
        given: Given | None = None,
        typed: bool = True,
    ) -> None:
        self.name, self.host = name, host
        #: The name was on the command line, not $FIELDCTL_TARGET's (a --fleet takes no PROFILE, yet
        #: the default target stays set).
        self.typed = typed and name is not None
        self.endpoints, self.sets, self.files = endpoint or [], set_ or [], profile_file or []
        self.given = given or Given()

    def options(self, role: str, driver: BaseDriver) -> dict[str, Any]:
        """The protocol's own options for this role, checked against the driver's protocol."""
        return self.given.options(role, driver.profile)

    def load(self) -> Profile:
        """The profile, or the saved target of that name, with the command line's overrides on top."""
        from fieldctl.profiles.targets import resolve
        from fieldctl.protocols.core.errors import UsageError

        if self.name is None:
            raise UsageError(MISSING_PROFILE)
        return resolve(self.name, profile_files=self.files, host=self.host, endpoints=self.endpoints, sets=self.sets)


_OVERRIDES = [
    inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None, annotation=annotation)
    for name, annotation in (
        ("host", HostOpt),
        ("endpoint", EndpointOpt),
        ("set_", SetOpt),
        ("profile_file", ProfileFileOpt),
    )
]


def with_profile(func: Callable[..., None]) -> Callable[..., None]:
    """Gives a subcommand the PROFILE argument and the shared overrides (--host, --endpoint,
    --set, --profile-file); the function receives them bundled as its first argument, together
    with what the line gave the protocol (see protocol_options.ProtocolCommand)."""
    signature = inspect.signature(func, eval_str=True)
    rest = [_optional_positional(param) for param in list(signature.parameters.values())[1:]]
    positionals = [param.name for param in rest if _argument(param) is not None]
    required = [
        param.name
        for param in signature.parameters.values()
        if param.name in positionals and param.default is inspect.Parameter.empty
    ]
    context = inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context)
    profile = inspect.Parameter(
        "profile", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None, annotation=ProfileOrTargetArg
    )
    parameters = [context, profile, *rest, *_OVERRIDES]

    @functools.wraps(func)
    def command(**kwargs: Any) -> None:
        ctx = kwargs.pop("ctx")
        name, values, typed = _fill_positionals(
            ctx,
            [kwargs.pop("profile"), *(kwargs[key] for key in positionals)],
            required,
            positionals,
            kwargs["profile_file"] or [],
        )
        kwargs.update(zip(positionals, values, strict=True))
        options = ProfileOptions(
            name,
            kwargs.pop("host"),
            kwargs.pop("endpoint"),
            kwargs.pop("set_"),
            kwargs.pop("profile_file"),
            ctx.meta.get(GIVEN),
            typed,
        )
        func(options, **kwargs)

    sign(command, signature.replace(parameters=parameters))
    return command


def _argument(param: inspect.Parameter) -> Any:
    """The typer.Argument of a parameter, if it is a positional one."""
    from typer.models import ArgumentInfo

    return next(
        (info for info in getattr(param.annotation, "__metadata__", ()) if isinstance(info, ArgumentInfo)), None
    )


def _optional_positional(param: inspect.Parameter) -> inspect.Parameter:
    """A required positional argument made optional for the parser (named by its metavar in the
    help), so that with PROFILE left out for $FIELDCTL_TARGET the values can move one place right;
    _fill_positionals then checks that it was given."""
    info = _argument(param)
    if info is None or param.default is not inspect.Parameter.empty:
        return param
    info = copy.copy(info)
    info.metavar = info.metavar or param.name.upper()
    annotated: Any = param.annotation.__origin__  # the argument's type, known only at run time
    annotation = Annotated[annotated | None, info]
    return param.replace(default=None, annotation=annotation)


MISSING_PROFILE = (
    "missing PROFILE: name a profile or a saved target, set FIELDCTL_TARGET, or choose one: fieldctl target use NAME"
)


def _fill_positionals(
    ctx: typer.Context, given: list[Any], required: list[str], names: list[str], profile_files: list[Path]
) -> tuple[str | None, list[Any], bool]:
    """PROFILE and the positionals after it. When PROFILE is left out (a default target, and
    either the values are too few for the required arguments or the first names no profile or
    target), the values move one place right and the default target takes the first place. The
    last value says whether PROFILE was typed (not the default)."""
    values = [value for value in given if value is not None]  # the parser fills left to right
    from fieldctl.profiles.targets import default_target

    default = default_target()
    typed = True
    if default and len(values) <= len(names) and (len(values) <= len(required) or not _known(values[0], profile_files)):
        values, typed = [default, *values], False
    if not values and not required:
        return None, [None] * len(names), False  # a --fleet may stand in for it; else ProfileOptions.load says so
    if not values:
        ctx.fail(MISSING_PROFILE)
    if len(values) < 1 + len(required):
        ctx.fail(f"missing argument {required[len(values) - 1].upper()}")
    values += [None] * (1 + len(names) - len(values))
    return values[0], values[1:], typed


def _known(name: str, profile_files: list[Path]) -> bool:
    """Whether a profile or a saved target has this name; a targets.toml that cannot be read
    holds none (resolving the default target then says what is wrong with it)."""
    from fieldctl.profiles import ProfileError, available_profiles
    from fieldctl.profiles.targets import saved_targets

    if name in available_profiles(profile_files):
        return True
    try:
        return name in saved_targets()
    except ProfileError:
        return False


def warn(text: str) -> None:
    """A role's warning: one line on stderr, secrets masked and control characters escaped."""
    from fieldctl.cli.framework.escape import stderr_line

    sys.stderr.write(f"warning: {stderr_line(text)}\n")
    sys.stderr.flush()


def driver(profile: Profile) -> BaseDriver:
    from fieldctl.protocols.runtime.registry import driver_for

    return driver_for(profile, warn)


def json_mode(flag: bool) -> bool:
    return flag or not sys.stdout.isatty()


def read_data(value: str | None, option: str = "--data") -> Any:
    """--data JSON, @FILE or @- (stdin, read only when asked)."""
    import json

    from fieldctl.protocols.core.errors import UsageError
    from fieldctl.protocols.core.limits import loads

    if value is None:
        return None
    source = option
    if value.startswith("@"):
        path = value[1:]
        source = f"{option} {value}"
        try:
            value = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"{source}: cannot read: {exc.strerror}") from None
    try:
        return loads(value)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        received = _received(value, option if source == option else None)
        raise UsageError(f"{source}: not JSON ({exc.msg} at {where}): {received}") from None
    except ValueError as exc:
        raise UsageError(f"{source}: {exc}") from None


#: How much of a value that is not JSON an error line repeats.
RECEIVED_CHARS = 60


def _received(value: str, typed: str | None) -> str:
    """What arrived, escaped and clipped; when the shell took the quotes off a value `typed` on
    the line (`--data {"mode":1}`), how to keep them."""
    import re

    from fieldctl.cli.framework.escape import visible

    clipped = value if len(value) <= RECEIVED_CHARS else value[: RECEIVED_CHARS - 1] + "…"
    said = f"received {visible(clipped)}"
    # The keys given their quotes back, as the line probably had them.
    quoted = re.sub(r"([{,]\s*)([A-Za-z_][\w.-]*)(\s*:)", r'\1"\2"\3', value)
    if typed and quoted != value and clipped == value and not {'"', "'"} & set(value):
        said += f" — quote it: {typed} '{visible(quoted)}'"
    return said


def read_messages(path: str, default_profile: str) -> list[Any]:
    """NDJSON Messages from a file or '-' (stdin), as `listen --json` writes them."""
    from fieldctl.protocols.core.errors import UsageError
    from fieldctl.protocols.core.message import read_ndjson

    try:
        if path == "-":
            return list(read_ndjson(sys.stdin, source="stdin", default_profile=default_profile))
        with open(path, encoding="utf-8") as handle:
            return list(read_ndjson(handle, source=path, default_profile=default_profile))
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror}") from None


async def wait_while_running(task: asyncio.Future[Any], awaitable: Awaitable[Any], timeout: float | None) -> bool:
    """Waits for `awaitable` while `task` runs, at most `timeout` seconds (None: no limit); whether
    it finished in time. It is cancelled if not. How `task` ended is the caller's to judge: a run
    raises its failure, a check reports it as the file's result."""
    import asyncio

    waiter = asyncio.ensure_future(awaitable)
    try:
        await asyncio.wait({task, waiter}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    return waiter.done() and not waiter.cancelled()


def rtt_text(rtt_s: float | None) -> str:
    """' (12.3 ms)': how long the answer took, when one came."""
    from fieldctl.protocols.core.readable import duration_text

    return "" if rtt_s is None else f" ({duration_text(rtt_s)})"
