"""`fieldctl profiles list|show|validate`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fieldctl.cli.framework.common import JsonOpt, ProfileArg, ProfileFileOpt

app = typer.Typer(help="List, show and validate profiles.", no_args_is_help=True)


@app.command("list")
def list_profiles(profile_file: ProfileFileOpt = None, json_: JsonOpt = False) -> None:
    """Built-in profiles, then yours from $XDG_CONFIG_HOME/fieldctl/profiles/."""
    import json
    import sys

    from fieldctl.cli.framework.common import json_mode
    from fieldctl.profiles import available_profiles
    from fieldctl.profiles.files import BUILTIN_DIR, ProfileError
    from fieldctl.profiles.loader import load_profile

    rows = []
    for name, path in available_profiles(profile_file or []).items():
        try:
            prof = load_profile(name, profile_files=profile_file or [])
            rows.append(
                {"name": name, "protocol": prof.protocol, "source": prof.source, "description": prof.description}
            )
        except ProfileError as exc:
            source = "built-in" if path.parent == BUILTIN_DIR else str(path)
            rows.append({"name": name, "protocol": "?", "source": source, "description": f"BROKEN: {exc}"})
    if json_mode(json_):
        for row in rows:
            sys.stdout.write(json.dumps(row) + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    from fieldctl.cli.framework.escape import cell

    table = Table(box=None, header_style="bold")
    for column in ("name", "protocol", "source", "description"):
        table.add_column(column)
    for row in rows:  # a profile file's text, shown as text: no markup, no control character
        table.add_row(*map(cell, row.values()), style="red" if row["description"].startswith("BROKEN") else None)
    Console().print(table)


@app.command("show")
def show(profile: ProfileArg, profile_file: ProfileFileOpt = None, json_: JsonOpt = False) -> None:
    """Endpoints, channels, commands, events and heartbeat expectations of one profile."""
    import json
    import sys

    from fieldctl.cli.framework.common import json_mode
    from fieldctl.profiles import load_profile

    prof = load_profile(profile, profile_files=profile_file or [])
    if json_mode(json_):
        sys.stdout.write(json.dumps(prof.data, indent=2) + "\n")
        return
    from rich.console import Console
    from rich.table import Table

    from fieldctl.cli.framework.escape import cell

    console = Console(highlight=False)  # every text below is the profile file's, shown as text
    console.print(cell(prof.name, "bold"), cell(f" ({prof.protocol}, {prof.source}): {prof.description}"), sep="")
    table = Table(title="endpoints", box=None, title_justify="left")
    for name, url in prof.endpoints.items():
        table.add_row(cell(name), cell(url))
    console.print(table)
    hb = prof.heartbeat
    if hb.channel:
        console.print(
            cell(f"heartbeat: channel {hb.channel}, every {hb.interval_s:g} s, stale after {hb.stale_after_s:g} s")
        )
    commands = Table(title="commands", box=None, title_justify="left", header_style="bold")
    for column in ("name", "code", "payload", "help"):
        commands.add_column(column)
    for spec in prof.commands.values():
        payload = ", ".join(f"{k}: {v}" for k, v in spec.payload.items())
        commands.add_row(*map(cell, (spec.name, spec.code, payload, spec.help)))
    console.print(commands)
    if prof.events:
        console.print(cell("events: " + ", ".join(f"{name} ({code})" for name, code in prof.events.items())))


@app.command("validate")
def validate(path: Annotated[Path, typer.Argument(metavar="FILE", help="profile TOML file")]) -> None:
    """Check a profile file; every problem on its own line (file: field: reason), exit 2 if any."""
    from fieldctl.cli.framework.escape import stderr_line
    from fieldctl.profiles.loader import check_file
    from fieldctl.protocols.runtime.registry import declared_settings

    problems = check_file(path, declared_settings)
    for line in problems:  # a key or a value of the file may hold control characters
        typer.echo(stderr_line(line), err=True)
    if problems:
        raise typer.Exit(2)
    typer.echo(stderr_line(f"{path}: ok"))
