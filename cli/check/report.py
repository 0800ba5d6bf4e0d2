"""How `fieldctl check` reports: a rich table per file on a terminal, one NDJSON line per step
(and a closing summary line) with --json, JUnit XML with --junit (one testsuite per file, one
testcase per step). Every text that may come from a wire is scrubbed of known secrets and has its
control characters escaped (XML 1.0 cannot even carry most of them)."""

from __future__ import annotations

import json
import socket
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from fieldctl.cli.framework.escape import cell, stderr_line
from fieldctl.protocols.core.atomic import PUBLIC, write_atomically

if TYPE_CHECKING:
    from rich.console import Console

    from fieldctl.cli.check.runner import Result

MARKS = {"passed": ("✓", "green"), "failed": ("✗", "bold red"), "error": ("✗", "bold red"), "skipped": ("-", "dim")}


def ndjson_line(result: Result) -> None:
    sys.stdout.write(json.dumps(result.to_dict(), default=repr) + "\n")
    sys.stdout.flush()


def counts(results: list[Result]) -> Counter[str]:
    return Counter(result.status for result in results)


def summary_line(results: list[Result], code: int) -> None:
    """The closing NDJSON line: the totals and the exit code."""
    sys.stdout.write(json.dumps({"done": True, "exit": code, "steps": len(results), **counts(results)}) + "\n")


def print_table(results: list[Result], console: Console) -> None:
    """One file's steps: mark, number, name, time and what went wrong (the diff, one line each).
    On a narrow terminal the detail wraps, folding a long word, so the fact that matters (a typo
    in a field's name) is never cut; the mark, number, name and time stay whole."""
    from rich.table import Table
    from rich.text import Text

    from fieldctl.protocols.core.readable import duration_text

    if not results:
        return
    table = Table(
        title=cell(f"{results[0].suite} ({results[0].file})"),
        title_justify="left",
        box=None,
        header_style="bold",
        pad_edge=False,
    )
    for column in ("", "#", "step", "time"):
        table.add_column(column, justify="right" if column in ("#", "time") else "left", no_wrap=True)
    table.add_column("detail", overflow="fold", ratio=1)
    for result in results:
        mark, style = MARKS[result.status]
        detail = Text("\n").join(cell(stderr_line(line)) for line in [result.detail, *result.diff] if line)
        time_text = "" if result.status == "skipped" else duration_text(result.seconds)
        table.add_row(Text(mark, style=style), str(result.step.number), cell(result.step.name), time_text, detail)
    console.print(table)


def print_totals(results: list[Result], code: int, console: Console) -> None:
    from rich.text import Text

    total = counts(results)
    parts = [f"{total[status]} {status}" for status in ("passed", "failed", "error", "skipped") if total[status]]
    console.print(Text(", ".join(parts) or "no steps", style="bold green" if code == 0 else "bold red"))


def write_junit(results: list[Result], path: Path) -> None:
    """JUnit XML as CI systems read it: failures (an expectation not met) carry the diff, errors
    (timeout, cannot connect, protocol error) the reason."""
    import xml.etree.ElementTree as ET

    suites = ET.Element("testsuites", name="fieldctl check")
    by_file: dict[str, list[Result]] = {}
    for result in results:
        by_file.setdefault(result.file, []).append(result)
    host = socket.gethostname()
    for file, steps in by_file.items():
        total = counts(steps)
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=_xml(steps[0].suite),
            file=_xml(file),
            hostname=_xml(host),
            tests=str(len(steps)),
            failures=str(total["failed"]),
            errors=str(total["error"]),
            skipped=str(total["skipped"]),
            time=f"{sum(r.seconds for r in steps):.3f}",
        )
        for result in steps:
            case = ET.SubElement(
                suite,
                "testcase",
                name=_xml(f"{result.step.number}. {result.step.name}"),
                classname=_xml(result.suite),
                file=_xml(file),
                time=f"{result.seconds:.3f}",
            )
            text = "\n".join(_xml(line) for line in result.diff)
            if result.status == "failed":
                ET.SubElement(
                    case, "failure", message=_xml(result.diff[0] if result.diff else result.detail), type="expectation"
                ).text = text or _xml(result.detail)
            elif result.status == "error":
                ET.SubElement(case, "error", message=_xml(result.detail), type=f"exit {result.code}").text = _xml(
                    result.detail
                )
            elif result.status == "skipped":
                ET.SubElement(case, "skipped", message=_xml(result.detail))
    for key in ("tests", "failures", "errors", "skipped"):
        suites.set(key, str(sum(int(suite.get(key, 0)) for suite in suites)))
    ET.indent(suites)
    text = ET.tostring(suites, encoding="utf-8", xml_declaration=True).decode("utf-8")
    try:
        write_atomically(path, text, PUBLIC)
    except OSError as exc:
        from fieldctl.protocols.core.errors import UsageError

        raise UsageError(f"--junit {path}: cannot write: {exc.strerror}") from None


#: What XML 1.0 cannot carry beyond the control characters stderr_line writes out.
_NOT_XML = str.maketrans({0xFFFE: "\\ufffe", 0xFFFF: "\\uffff"})


def _xml(text: str) -> str:
    """Text XML 1.0 (in UTF-8) can carry: secrets masked, control characters, lone surrogates and
    the two non-characters written out as escapes."""
    safe = stderr_line(str(text)).translate(_NOT_XML)
    return safe.encode("utf-8", "backslashreplace").decode("utf-8")
