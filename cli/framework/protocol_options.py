"""Protocol options as real options of the subcommands: built from what every installed protocol
declares (fieldctl.protocols.sdk.options, read without importing a driver), listed in `--help` under
their protocol's name, completed by the shells and the console, and converted for the role once
the profile, and so its protocol, is known. Light imports: this is on the `--help` and
completion paths, and it builds the options only when a subcommand is parsed or helped."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import typer
from typer.core import TyperCommand

from fieldctl.cli.framework.metavars import KINDS, named_after

if TYPE_CHECKING:
    import typer._click as click  # Typer exports no public name for its vendored click's classes

    from fieldctl.profiles import Profile
    from fieldctl.protocols.sdk.options import OptionSpec

#: Subcommands keep what they do not know: extra positional arguments for the protocols that take
#: them, and unknown options, reported with a did-you-mean once the profile's protocol is known.
CONTEXT = {"allow_extra_args": True, "ignore_unknown_options": True}
#: The key in ctx.meta under which a parsed line leaves its protocol options (a Given).
GIVEN = "fieldctl.protocol-options"
_PREFIX = "protocol__"


@functools.cache
def declarations(*roles: str) -> dict[str, list[tuple[str, OptionSpec]]]:
    """ "--flag" (or PARAMS) -> [(protocol, its declaration)] for these roles (a subcommand may play
    several: bench plays command and listen), over every installed protocol. A protocol whose
    declarations cannot be read is left out here; it reports itself with one clear line when a
    role of it runs."""
    from fieldctl.protocols.core.errors import UsageError
    from fieldctl.protocols.runtime.registry import declared_options, protocol_names

    flags: dict[str, list[tuple[str, OptionSpec]]] = {}
    for protocol in protocol_names():
        try:
            declared = declared_options(protocol)
        except UsageError:
            continue
        for role in roles:
            for flag, spec in declared.get(role, {}).items():
                owners = flags.setdefault(flag, [])
                if all(owner != protocol for owner, _ in owners):
                    owners.append((protocol, spec))
    return flags


def _label(owners: list[tuple[str, OptionSpec]]) -> str:
    """'[sepl, vantiq] text', one bracket per distinct help text."""
    texts: dict[str, list[str]] = {}
    for protocol, spec in owners:
        texts.setdefault(spec.help, []).append(protocol)
    return "; ".join(f"[{', '.join(protocols)}] {text}".rstrip() for text, protocols in texts.items())


def sign(func: Callable[..., None], signature: inspect.Signature) -> None:
    """Gives `func` the parameters Typer is to read (inspect.signature honours __signature__), and
    their annotations."""
    func.__signature__ = signature  # type: ignore[attr-defined]  # a function attribute typeshed does not declare
    func.__annotations__ = {p.name: p.annotation for p in signature.parameters.values()}


@functools.cache
def click_options(roles: tuple[str, ...], taken: frozenset[str] = frozenset()) -> list[click.Parameter]:
    """The roles' protocol options as click parameters, made by Typer from a synthetic signature;
    a flag the subcommand has itself (`taken`) stays the subcommand's. Values are kept as text:
    what they mean depends on the protocol, known only once the profile is."""
    from fieldctl.protocols.sdk.options import PARAMS

    parameters = []
    for flag, owners in declarations(*roles).items():
        if flag == PARAMS or flag in taken:
            continue
        if owners[0][1].kind == "flag":
            annotation: Any = Annotated[bool, typer.Option(flag, help=_label(owners))]
            default: Any = False
        else:
            metavar = KINDS.get(owners[0][1].kind) or named_after(flag)
            annotation = Annotated[list[str] | None, typer.Option(flag, metavar=metavar, help=_label(owners))]
            default = None
        name = _PREFIX + flag.lstrip("-").replace("-", "_")
        parameters.append(
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
        )

    def declared() -> None:
        """The protocol options of one role."""

    sign(declared, inspect.Signature(parameters))
    info = typer.models.CommandInfo(name=roles[0], callback=declared)
    return list(typer.main.get_command_from_info(info, pretty_exceptions_short=True, rich_markup_mode=None).params)


def is_protocol_option(param: click.Parameter) -> bool:
    return bool(param.name and param.name.startswith(_PREFIX))


@dataclass
class Given:
    """What one command line gave the protocol: its options (flag -> True or the texts, in
    order), the arguments the subcommand did not know, and the subcommand's own flags (for a
    did-you-mean)."""

    values: dict[str, Any] = field(default_factory=dict)
    extras: list[str] = field(default_factory=list)
    own: list[str] = field(default_factory=list)

    def options(self, role: str, profile: Profile) -> dict[str, Any]:
        """The options dict the role receives: checked against the profile's protocol (an option
        of another protocol is a usage error that names it) and converted as declared."""
        from fieldctl.profiles.schema import did_you_mean
        from fieldctl.protocols.core.errors import UsageError
        from fieldctl.protocols.runtime.registry import declared_options
        from fieldctl.protocols.sdk.options import PARAMS

        specs = declared_options(profile.protocol).get(role, {})
        where = f"{role} {profile.name}"
        flags = [flag for flag in specs if flag != PARAMS]
        known = ", ".join(flags) or "none"
        for arg in self.extras:
            if arg.startswith("--"):
                flag = arg.partition("=")[0]
                hint = did_you_mean(flag, [*self.own, *flags])
                raise UsageError(f"{where}: no such option {flag}{hint or f' (protocol options: {known})'}")
        result: dict[str, Any] = {}
        for arg in self.extras:
            if PARAMS not in specs:
                raise UsageError(f"{where}: unexpected argument {arg!r}")
            result.setdefault(PARAMS, []).append(arg)
        for flag, value in self.values.items():
            spec = specs.get(flag)
            if spec is None:
                owners = " and ".join(protocol for protocol, _ in declarations(role).get(flag, []))
                whose = f"an option of {owners}, not of {profile.protocol}" if owners else f"not a {role} option"
                raise UsageError(f"{where}: {flag} is {whose} ({profile.protocol}'s {role} options: {known})")
            if spec.kind == "flag":
                result[spec.name] = True
            elif spec.repeat:
                result[spec.name] = [_convert(spec, text, f"{where}: {flag}") for text in value]
            else:
                result[spec.name] = _convert(spec, value[-1], f"{where}: {flag}")  # the last one given wins
        return result

    def risks(self, role: str, profile: Profile) -> list[str]:
        """'--flag what it risks' for each option given whose declaration names a risk (it runs a
        program, unpickles freely ...): what a check file may not ask for unless allowed."""
        from fieldctl.protocols.runtime.registry import declared_options

        specs = declared_options(profile.protocol).get(role, {})
        return [f"{flag} {specs[flag].risk}" for flag in self.values if flag in specs and specs[flag].risk]


def _convert(spec: OptionSpec, text: str, flag: str) -> Any:
    import math

    from fieldctl.cli.framework.bounded import SECONDS
    from fieldctl.protocols.core.errors import UsageError

    try:
        if spec.kind == "int":
            return int(text)
        if spec.kind == "float":
            number = float(text)
            if not math.isfinite(number):
                raise UsageError(f"{flag}: expected a finite number, got {text!r}")
            return number
        if spec.kind == "seconds":
            return SECONDS.parse(text)
        if spec.kind == "json":
            from fieldctl.protocols.core.limits import loads

            return loads(text)
    except ValueError as exc:
        if spec.kind in ("json", "seconds"):
            said = "not JSON within limits: " if spec.kind == "json" else ""
            raise UsageError(f"{flag}: {said}{exc}") from None
        raise UsageError(f"{flag}: expected {spec.kind}, got {text!r}") from None
    return text


def own_flags(command: click.Command, ctx: click.Context) -> list[str]:
    """The subcommand's own --options (help included), for a did-you-mean."""
    return [
        opt
        for param in TyperCommand.get_params(command, ctx)
        if param.param_type_name == "option"
        for opt in param.opts
        if opt.startswith("--")
    ]


def protocol_of(ctx: click.Context) -> str | None:
    """The protocol of the profile named so far on the line, if it loads; for completion."""
    from fieldctl.profiles import ProfileError
    from fieldctl.profiles.targets import resolve
    from fieldctl.protocols.core.errors import FieldctlError

    name = ctx.params.get("profile")
    if not name:
        return None
    try:
        return resolve(name, profile_files=ctx.params.get("profile_file") or []).protocol
    except (ProfileError, FieldctlError, OSError):
        return None


class ProtocolCommand(TyperCommand):
    """A subcommand that plays a protocol role (its name is the role, unless `roles` says which):
    its own options, then every installed protocol's options for those roles, parsed by click
    like its own."""

    #: The roles whose protocol options it takes; empty: the one its name says.
    roles: ClassVar[tuple[str, ...]] = ()
    #: (the context settings it depends on, the parser): see make_parser.
    _parser: tuple[tuple[Any, ...], Any] | None = None

    def played(self) -> tuple[str, ...]:
        return self.roles or (self.name or "",)

    def make_parser(self, ctx: click.Context) -> Any:  # click's parser class is private: no public name to give
        """Built once and reused with each line's context: the console parses every line with the
        same command, and building the parser was a good part of a line's time."""
        key = (ctx.allow_interspersed_args, ctx.ignore_unknown_options, ctx.token_normalize_func)
        if self._parser is None or self._parser[0] != key:
            self._parser = (key, super().make_parser(ctx))
        parser = self._parser[1]
        parser.ctx = ctx
        return parser

    def _taken(self) -> frozenset[str]:
        return frozenset(opt for param in self.params for opt in param.opts)

    def protocol_params(self) -> list[click.Parameter]:
        return click_options(self.played(), self._taken())

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        params = super().get_params(ctx)  # its own, then --help
        return [*self.params, *self.protocol_params(), *params[len(self.params) :]]

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Parses as click does, then moves the protocol's part out of ctx.params into ctx.meta:
        the callback takes only the subcommand's own parameters."""
        rest = self._texts(ctx, args) if ctx.resilient_parsing else super().parse_args(ctx, args)
        values = {}
        for param in self.protocol_params():
            value = ctx.params.pop(param.name or "", None)
            if value:
                values[param.opts[0]] = value
        ctx.meta[GIVEN] = Given(values, list(ctx.args), own_flags(self, ctx))
        return rest

    def _texts(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Completion's parse (click's resilient parsing): every value as typed, unconverted. The
        completers need the texts only, and Typer's conversion imports pydantic (~90 ms of every
        <TAB>). A line that ends in an option waiting for its value (the one being completed) is
        parsed without it: click's parser stops there, before the arguments (PROFILE) are taken."""
        if args and any(args[-1] in p.opts and not getattr(p, "is_flag", True) for p in self.get_params(ctx)):
            args = args[:-1]
        opts, rest, _ = self.make_parser(ctx).parse_args(args=args)
        rest = list(rest)
        for param in self.get_params(ctx):
            if param.expose_value and param.name:
                value, source = param.consume_value(ctx, opts)
                ctx.set_parameter_source(param.name, source)  # which arguments are typed already
                ctx.params[param.name] = value
        ctx.args = rest
        return rest

    def collect_usage_pieces(self, ctx: click.Context) -> list[str]:
        from fieldctl.protocols.sdk.options import PARAMS

        pieces = super().collect_usage_pieces(ctx)
        return [*pieces, "[ARGS]..."] if PARAMS in declarations(*self.played()) else pieces

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Its own arguments and options, then the protocol options, each labelled with the
        protocols that have it."""
        from fieldctl.protocols.sdk.options import PARAMS

        own = [p for p in self.get_params(ctx) if not is_protocol_option(p)]
        theirs = [p.get_help_record(ctx) for p in self.protocol_params()]
        extra = declarations(*self.played()).get(PARAMS)
        if extra:
            theirs.append(("[ARGS]...", _label(extra)))
        sections = {
            "Arguments": [p.get_help_record(ctx) for p in own if p.param_type_name == "argument"],
            "Options": [p.get_help_record(ctx) for p in own if p.param_type_name == "option"],
            "Protocol options (for a profile of the protocol named)": theirs,
        }
        for title, records in sections.items():
            rows = [record for record in records if record is not None]
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[Any]:
        """Once the profile is named, only its protocol's options are offered."""
        results = super().shell_complete(ctx, incomplete)
        protocol = protocol_of(ctx) if incomplete.startswith("-") else None
        if protocol is None:
            return results
        foreign = {
            flag
            for flag, owners in declarations(*self.played()).items()
            if protocol not in (name for name, _ in owners)
        }
        return [item for item in results if item.value not in foreign]


def parse_given(role: str, args: list[str]) -> Given:
    """Protocol options written as a list of arguments (a check file's `options`), parsed by the
    same click parameters as a command line of that role."""
    from fieldctl.cli.framework.bad_values import message
    from fieldctl.protocols.core.errors import UsageError

    command = ProtocolCommand(role, context_settings=CONTEXT)
    try:
        given: Given = command.make_context(role, list(args)).meta[GIVEN]
    except typer.TyperException as exc:  # the public base of click's usage errors in Typer
        raise UsageError(message(exc)) from None
    return given


def role_options(role: str, args: list[str], profile: Profile) -> dict[str, Any]:
    """The options dict a role receives from arguments written in a file, for this profile."""
    return parse_given(role, args).options(role, profile)
