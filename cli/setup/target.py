"""`fieldctl target add|list|show|remove|use`: named targets (a profile plus its overrides) kept in
$XDG_CONFIG_HOME/fieldctl/targets.toml, usable wherever a PROFILE is; `use` makes one the current
target, the one a command given no PROFILE acts on (as `nats context select` does)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from fieldctl.cli.framework.common import EndpointOpt, HostOpt, JsonOpt, ProfileFileOpt, SetOpt
from fieldctl.cli.framework.completers import profile_names, target_names

if TYPE_CHECKING:
    from fieldctl.profiles.targets import Target

app = typer.Typer(
    help="Save, list, show, remove and choose named targets (a profile plus its overrides).", no_args_is_help=True
)

TargetArg = Annotated[str, typer.Argument(help="target name", show_default=False, autocompletion=target_names)]


def _pairs(items: list[str] | None, option: str) -> dict[str, str]:
    """NAME=VALUE options as a dict, in order; the loader checks them when the target is resolved."""
    from fieldctl.protocols.core.errors import UsageError

    pairs: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value:
            raise UsageError(f"{option} {item!r}: expected NAME=VALUE")
        pairs[key.strip()] = value
    return pairs


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="the new target's name", show_default=False)],
    profile: Annotated[
        str, typer.Argument(help="profile it is made of", show_default=False, autocompletion=profile_names)
    ],
    host: HostOpt = None,
    endpoint: EndpointOpt = None,
    set_: SetOpt = None,
    group: Annotated[
        list[str] | None, typer.Option("--group", metavar="LABEL", help="A group label (repeatable).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a saved target of that name.")] = False,
) -> None:
    """Save a target; the profile must exist and the overrides must apply to it."""
    from fieldctl.profiles import available_profiles, load_profile
    from fieldctl.profiles.files import targets_path
    from fieldctl.profiles.targets import Target, check_name, check_sets, saved_targets, write_fleet
    from fieldctl.protocols.core.errors import UsageError
    from fieldctl.protocols.runtime.registry import check_settings

    check_name(name)
    if name in available_profiles():
        raise UsageError(f"target {name!r}: a profile has that name, and a target may not shadow it")
    saved = saved_targets()
    if name in saved and not force:
        raise UsageError(f"target {name!r} exists (target remove {name}, or --force to replace it)")
    labels = tuple(group or [])
    for label in labels:
        check_name(label, "group label")
    sets = _pairs(set_, "--set")
    check_sets(f"target {name}", sets)
    target = Target(name, profile, host, _pairs(endpoint, "--endpoint"), sets, labels)
    # the profile exists and every override applies, or a usage error now (told as the --set's)
    check_settings(load_profile(profile, host=host, endpoints=endpoint or [], sets=set_ or []))
    saved[name] = target
    write_fleet(targets_path(), saved.values())
    typer.echo(f"saved target {name} ({profile}) in {targets_path()}", err=True)


@app.command("list")
def list_targets(json_: JsonOpt = False) -> None:
    """The saved targets: a table on a terminal, JSON lines otherwise."""
    import json
    import sys

    from fieldctl.cli.framework.common import json_mode
    from fieldctl.profiles.targets import chosen_targets, saved_targets

    current, _ = chosen_targets()
    rows = [{**_row(target), "current": target.name == current} for target in saved_targets().values()]
    if json_mode(json_):
        for row in rows:
            sys.stdout.write(json.dumps(row) + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    from fieldctl.cli.framework.escape import visible

    table = Table(box=None, header_style="bold")
    for column in ("", "name", "profile", "host", "groups", "overrides"):
        table.add_column(column)
    for row in rows:
        overrides = [f"{key}={value}" for key, value in {**row["endpoints"], **row["set"]}.items()]
        table.add_row(
            *(
                visible(text)
                for text in (
                    "*" if row["current"] else "",
                    row["name"],
                    row["profile"],
                    row["host"] or "",
                    ",".join(row["groups"]),
                    " ".join(overrides),
                )
            )
        )
    Console().print(table)


def _row(target: Target) -> dict[str, Any]:
    return {
        "name": target.name,
        "profile": target.profile,
        "host": target.host,
        "groups": list(target.groups),
        "endpoints": dict(target.endpoints),
        "set": dict(target.sets),
    }


@app.command("show")
def show(name: TargetArg, profile_file: ProfileFileOpt = None, json_: JsonOpt = False) -> None:
    """The target resolved: its profile, host and endpoints; secrets stay references."""
    import json
    import sys

    from fieldctl.cli.framework.common import json_mode
    from fieldctl.protocols.core.redact import scrub_value

    target = _saved(name)
    prof = target.load(profile_files=profile_file or [])
    shown = {
        **scrub_value(
            {
                **_row(target),
                "protocol": prof.protocol,
                "resolved_host": prof.host,
                "resolved_endpoints": prof.endpoints,
            }
        ),
        "auth": {key: ref.describe() for key, ref in prof.auth.items()},
    }  # references, never values
    if json_mode(json_):
        sys.stdout.write(json.dumps(shown) + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    from fieldctl.cli.framework.escape import visible

    console = Console(highlight=False)
    groups = f", groups {', '.join(shown['groups'])}" if shown["groups"] else ""
    console.print(
        visible(f"{name}: profile {shown['profile']} ({shown['protocol']}), host {shown['resolved_host']}{groups}")
    )
    table = Table(title="endpoints", box=None, title_justify="left")
    for endpoint, url in shown["resolved_endpoints"].items():
        table.add_row(visible(endpoint), visible(url))
    console.print(table)
    for key, value in shown["set"].items():
        console.print(visible(f"set {key} = {value}"))
    for key, ref in shown["auth"].items():
        console.print(visible(f"auth {key}: {ref}"))


@app.command("remove")
def remove(name: TargetArg) -> None:
    """Forget a saved target."""
    from fieldctl.profiles.files import targets_path
    from fieldctl.profiles.targets import choose_target, chosen_targets, saved_targets, write_fleet

    saved = saved_targets()
    _saved(name, saved)
    del saved[name]
    write_fleet(targets_path(), saved.values())
    if chosen_targets()[0] == name:
        choose_target(None)  # no current target rather than one that names nothing
    typer.echo(f"removed target {name}", err=True)


@app.command("use")
def use(
    name: Annotated[
        str | None,
        typer.Argument(
            help="target (or profile) to make current; '-': the previous one; none: show the current one",
            show_default=False,
            autocompletion=profile_names,
        ),
    ] = None,
    clear: Annotated[bool, typer.Option("--clear", help="No current target any more.")] = False,
) -> None:
    """Choose the current target: commands given no PROFILE act on it ($FIELDCTL_TARGET wins over it)."""
    from fieldctl.profiles import available_profiles
    from fieldctl.profiles.files import current_target_path
    from fieldctl.profiles.schema import did_you_mean
    from fieldctl.profiles.targets import choose_target, chosen_targets, saved_targets
    from fieldctl.protocols.core.errors import UsageError

    current, previous = chosen_targets()
    if clear or name is None:
        if name is not None:
            raise UsageError("target use: NAME or --clear, not both")
        if clear:
            choose_target(None)
        typer.echo(current if current and not clear else "no current target", err=not current or clear)
        return
    if name == "-":
        if previous is None:
            raise UsageError("target use -: no previous target")
        name = previous
    known = [*saved_targets(), *available_profiles()]
    if name not in known:
        raise UsageError(
            f"unknown target or profile {name!r}{did_you_mean(name, known) or ' (see: fieldctl target list)'}"
        )
    choose_target(name)
    typer.echo(f"current target: {name} (in {current_target_path()})", err=True)


def _saved(name: str, saved: dict[str, Target] | None = None) -> Target:
    from fieldctl.profiles.targets import saved_targets
    from fieldctl.protocols.core.errors import UsageError

    saved = saved_targets() if saved is None else saved
    if name not in saved:
        known = ", ".join(saved) or "none"
        raise UsageError(f"no saved target {name!r} (saved: {known})")
    return saved[name]
