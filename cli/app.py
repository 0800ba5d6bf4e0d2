"""The `fieldctl` command: subcommands, and the one place exceptions become exit codes."""

from __future__ import annotations

import contextlib
import os
import sys

import typer
from typer.core import TyperGroup

from fieldctl import __version__
from fieldctl.cli.check import check
from fieldctl.cli.console import console
from fieldctl.cli.fleet import export
from fieldctl.cli.framework.lazy_group import LazyGroup, root_command
from fieldctl.cli.framework.protocol_options import CONTEXT
from fieldctl.cli.roles import bench, demo
from fieldctl.cli.roles.verbs import register as register_verbs
from fieldctl.cli.setup import completion, profiles, target

# Typer converts the values of the invoked subcommand through pydantic (importing it and building
# the adapters: about 80 ms of a one-shot `fieldctl command`, bench/commands.py) and has no public
# hook to skip that where nothing needs converting: its parameter classes and their coercion are
# private, so fieldctl leaves conversion as Typer does it.
app = typer.Typer(
    name="fieldctl",
    cls=LazyGroup,  # a subcommand's click command is built only when it is used (cli/framework/lazy_group.py)
    help="Operations toolkit for the messaging interfaces of lab and IoT devices.",
    invoke_without_command=True,  # no arguments: the short usage of _root, not the whole help
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    # help=False: an absent --help is otherwise None, which Typer coerces through pydantic (~80 ms
    # of imports) before `SUBCOMMAND --help` or a completion request gets past the root.
    context_settings={"help_option_names": ["-h", "--help"], "default_map": {"help": False}},
)

register_verbs(app)  # listen, register, command, publish, simulate, probe, proxy: the table in cli/roles/verbs.py
app.command(cls=bench.BenchCommand, context_settings=CONTEXT)(bench.bench)
app.command()(check.check)
app.command()(demo.demo)
app.command()(console.console)
app.add_typer(profiles.app, name="profiles")
app.add_typer(target.app, name="target")
app.add_typer(completion.app, name="completion")
app.add_typer(export.app, name="export")
# More subcommands: one line each, here.


def _version(value: bool) -> None:
    if value:
        typer.echo(f"fieldctl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Operations toolkit for the messaging interfaces of lab and IoT devices."""
    if ctx.invoked_subcommand is None:  # `fieldctl` alone: a usage error, told in three lines
        assert isinstance(ctx.command, TyperGroup), "the root is a group (LazyGroup)"
        names = " ".join(ctx.command.list_commands(ctx))
        typer.echo(
            f"usage: fieldctl [--version] [--help] COMMAND [ARGS]...\ncommands: {names}\n"
            "`fieldctl --help` describes them, `fieldctl COMMAND --help` one of them.",
            err=True,
        )
        raise typer.Exit(2)


def _fail(text: str, code: int, where: str = "fieldctl") -> int:
    """The one error line: secrets masked and control characters escaped, whatever the peer sent."""
    from fieldctl.cli.framework.escape import stderr_line

    with contextlib.suppress(BrokenPipeError):
        sys.stderr.write(f"{where}: {stderr_line(text)}\n")
    return code


def _flush_quietly() -> None:
    """A reader that went away (`| head`) is not an error; later flushes must not say otherwise."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def main(argv: list[str] | None = None) -> None:
    """Every failure is one line on stderr and an exit code from the README's table."""
    import signal
    import warnings

    from typer.exceptions import TyperException

    from fieldctl.cli.framework.private_folder import TERMINATED, Terminated, on_sigterm
    from fieldctl.protocols.core.errors import FieldctlError

    args = sys.argv[1:] if argv is None else argv
    before = signal.getsignal(signal.SIGTERM)
    if before is signal.SIG_DFL:  # left as it is where someone chose otherwise
        with contextlib.suppress(ValueError):  # main() outside the main thread: signals are not ours
            signal.signal(signal.SIGTERM, on_sigterm)
    try:
        result = root_command(app).main(args=args, prog_name="fieldctl", standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except typer.Exit as exc:
        code = exc.exit_code
    except typer.Abort:
        code = _fail("aborted", 130)
    except FieldctlError as exc:
        code = _fail(str(exc), int(exc.exit_code))
    except TyperException as exc:
        from fieldctl.cli.framework.bad_values import message

        ctx = getattr(exc, "ctx", None)
        where = ctx.command_path if ctx is not None else "fieldctl"
        probe_usage = ctx is not None and ctx.info_name == "probe"
        code = _fail(message(exc), 3 if probe_usage else getattr(exc, "exit_code", 2), where)
    except KeyboardInterrupt:
        code = 130
    except Terminated:
        code = TERMINATED
        # what the signal cut short (a coroutine never started, a loop never closed) is not worth a line
        sys.unraisablehook = lambda unraisable: None
        warnings.filterwarnings("ignore", category=RuntimeWarning)
    except BrokenPipeError:
        code = 0
    except Exception as exc:  # a bug: still one line, never a traceback, unless asked for one
        if os.environ.get("FIELDCTL_DEBUG"):
            raise
        code = _fail(f"internal error: {type(exc).__name__}: {exc} (FIELDCTL_DEBUG=1 shows where)", 1)
    _flush_quietly()
    sys.exit(code)
