"""Every shell example in README.md and docs/ runs, as written, against the simulators.

A ```sh block runs as one bash script (`set -e -o pipefail`): every line must succeed, a line
whose comment says "Ctrl-C ends it" gets Ctrl-C (SIGINT) after a few seconds and must then exit 0,
and a background job (`&`) must not have failed by the end (one ended by `kill` or Ctrl-C is
fine). A ```console block runs its `$ ` lines the same way and expects each line shown under one
in that command's output.
A block after the comment `<!-- not run: REASON -->` is reported as skipped with that reason: it
needs a real device or a whole build. One after `<!-- with: COMMAND -->` runs with COMMAND first
(a simulator in the background that the text around the block already started). Each block runs
in an empty directory with a home, config, state and runtime directory of its own, `fieldctl`
first on the PATH, and `examples/` beside it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
_NOT_RUN = re.compile(r"<!-- not run: (.+?) -->\s*$")
_WITH = re.compile(r"<!-- with: (.+?) -->\s*$")
#: Long enough for a live view to show something, short enough for a suite.
INTERRUPT_AFTER_S = 4
BLOCK_DEADLINE_S = 120
#: A background job ended by the session's own `kill` (SIGTERM) or by Ctrl-C.
_ENDED_ON_PURPOSE = "0|130|143"


@dataclass(frozen=True)
class Example:
    document: Path
    line: int
    language: str
    text: str
    not_run: str | None
    setup: str | None

    @property
    def name(self) -> str:
        return f"{self.document.relative_to(ROOT)}:{self.line}"


def examples() -> list[Example]:
    found = []
    for document in DOCUMENTS:
        text = document.read_text(encoding="utf-8")
        for fence in _FENCE.finditer(text):
            language = fence.group(1)
            if language not in ("sh", "console"):
                continue
            before = text[: fence.start()].rstrip("\n").rsplit("\n", 1)[-1]
            not_run, setup = _NOT_RUN.search(before), _WITH.search(before)
            line = text.count("\n", 0, fence.start()) + 1
            found.append(
                Example(
                    document,
                    line,
                    language,
                    fence.group(2),
                    not_run.group(1) if not_run else None,
                    setup.group(1) if setup else None,
                )
            )
    return found


def logical_lines(text: str) -> list[str]:
    """Lines with their backslash continuations joined, as the shell reads them."""
    return text.replace("\\\n", " ").splitlines()


def sh_script(text: str, setup: str | None = None) -> str:
    lines = [] if setup is None else [setup]
    for line in logical_lines(text):
        comment = line.partition(" #")[2]
        interrupted = "Ctrl-C ends it" in comment
        lines.append(f"timeout --preserve-status -s INT {INTERRUPT_AFTER_S} {line}" if interrupted else line)
    return "\n".join(
        [
            "set -e -o pipefail",
            "trap 'kill $(jobs -p) 2>/dev/null || true; wait' EXIT",  # `|| true`: -e holds in a trap too
            *lines,
            # Jobs still running are the session's servers; one that has ended must have ended well.
            "for job in $(jobs -p); do",
            '  if ! kill -0 "$job" 2>/dev/null; then',
            '    status=0; wait "$job" || status=$?',
            f"    case $status in {_ENDED_ON_PURPOSE}) ;;",
            '      *) echo "background job ended with $status" >&2; exit 97;;',
            "    esac",
            "  fi",
            "done",
        ]
    )


def console_steps(text: str) -> list[tuple[str, list[str]]]:
    """`$ command` lines, each with the output lines shown under it."""
    steps: list[tuple[str, list[str]]] = []
    for line in logical_lines(text):
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif steps and line.strip():
            steps[-1][1].append(line.strip())
    return steps


def console_script(text: str, setup: str | None = None) -> str:
    """A console block as a script: a step shown with no output must succeed; one shown with
    output must show each of its lines (its exit code is the text's business)."""
    lines = []
    for command, expected in console_steps(text):
        if not expected:
            lines.append(command)
            continue
        lines.append(f"shown=$({command} 2>&1 || true)")
        for line in expected:
            said = shlex.quote(f"`{command}` did not show: {line}")
            missing = f'{{ echo {said}; echo "$shown"; exit 98; }}'
            lines.append(f'grep -qF -- {shlex.quote(line)} <<<"$shown" || {missing}')
    return sh_script("\n".join(lines), setup)


def session_env(home: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("FIELDCTL_", "XDG_"))}
    env.pop("NO_COLOR", None)
    for name, sub in (
        ("HOME", "home"),
        ("XDG_CONFIG_HOME", "home/.config"),
        ("XDG_STATE_HOME", "home/.local/state"),
        ("XDG_CACHE_HOME", "home/.cache"),
        ("XDG_RUNTIME_DIR", "run"),
        ("TMPDIR", "tmp"),
    ):
        (home / sub).mkdir(parents=True, exist_ok=True)
        env[name] = str(home / sub)
    (home / "run").chmod(0o700)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_bash(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """bash in a session of its own, so a deadline takes every job it started with it. The script
    is a file, as a pasted session is read line by line: under `bash -c`, a background job that
    has ended is no longer listed by `jobs`, and its failure would go unseen."""
    path = cwd.parent / "example.sh"
    path.write_text(script, encoding="utf-8")
    with subprocess.Popen(
        ["bash", str(path)],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            out, _ = process.communicate(timeout=BLOCK_DEADLINE_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            out, _ = process.communicate()
            pytest.fail(f"still running after {BLOCK_DEADLINE_S} s:\n{out}")
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
    return subprocess.CompletedProcess(script, process.returncode, out, "")


@pytest.mark.parametrize("example", examples(), ids=lambda example: example.name)
def test_shell_example_runs_as_written(example: Example, tmp_path: Path) -> None:
    if example.not_run:
        pytest.skip(f"not run: {example.not_run}")
    work = tmp_path / "work"
    work.mkdir()
    (work / "examples").symlink_to(ROOT / "examples")
    env = session_env(tmp_path)
    script = (sh_script if example.language == "sh" else console_script)(example.text, example.setup)
    done = run_bash(script, work, env)
    assert done.returncode == 0, f"{example.name} failed with {done.returncode}:\n{done.stdout}"


def test_every_example_is_found() -> None:
    """The parser sees the README's blocks: a fence it missed would never run."""
    fences = sum(
        len(re.findall(r"^```(?:sh|console)$", document.read_text(encoding="utf-8"), re.MULTILINE))
        for document in DOCUMENTS
    )
    assert fences == len(examples()) > 5


def test_a_not_run_block_says_why() -> None:
    for example in examples():
        if example.not_run is not None:
            assert len(example.not_run.split()) >= 3, f"{example.name}: say why it is not run"


def test_ctrl_c_lines_are_interrupted_and_setup_comes_first() -> None:
    script = sh_script("fieldctl listen x    # live (Ctrl-C ends it)\n", "fieldctl simulate x &")
    lines = script.splitlines()
    assert shlex.split(lines[0]) == ["set", "-e", "-o", "pipefail"] and lines[2] == "fieldctl simulate x &"
    interrupted = f"timeout --preserve-status -s INT {INTERRUPT_AFTER_S} fieldctl listen x"
    assert lines[3] == f"{interrupted}    # live (Ctrl-C ends it)"


@pytest.mark.parametrize(
    ("script", "code"),
    [
        ("false", 1),
        ("(exit 3) &\nwhile kill -0 $! 2>/dev/null; do :; done", 97),  # a job that failed on its own
        ("sleep 30 &\nkill %1", 0),  # one the session ended
        ("true | false | true", 1),
    ],
)
def test_a_failing_line_or_background_job_fails_the_block(script: str, code: int, tmp_path: Path) -> None:
    """The harness itself: nothing that fails may pass unseen."""
    work = tmp_path / "work"
    work.mkdir()
    assert run_bash(sh_script(script), work, session_env(tmp_path)).returncode == code
