"""The JUnit report of `fieldctl check` stays valid XML whatever a wire put into a diff, and says
failures, errors and skips the way CI systems count them."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from fieldctl.cli.check.checkfile import Step
from fieldctl.cli.check.report import write_junit
from fieldctl.cli.check.runner import Result, exit_code


def result(number: int, status: str, code: int, file: str = "a.toml", **fields: object) -> Result:
    return Result(
        file,
        file.removesuffix(".toml"),
        Step(number, f"step {number}", "command", "x"),
        status,
        code,
        seconds=0.25,
        **fields,
    )  # type: ignore[arg-type]


def test_hostile_text_is_escaped_and_the_counts_add_up(tmp_path: Path) -> None:
    hostile = 'data.name: expected "a", got "\x1b]0;owned\x07\ud800\uffff<b>&"'
    results = [
        result(1, "passed", 0),
        result(2, "failed", 1, diff=[hostile], detail="get-status: success"),
        result(3, "error", 4, detail="no reply within 5 s"),
        result(4, "skipped", 0, detail="not run"),
        result(1, "passed", 0, file="b.toml"),
    ]
    report = tmp_path / "report.xml"
    write_junit(results, report)
    root = ET.parse(report).getroot()
    assert [root.get(key) for key in ("tests", "failures", "errors", "skipped")] == ["5", "1", "1", "1"]
    first, second = root.findall("testsuite")
    assert (first.get("name"), first.get("tests"), second.get("name"), second.get("tests")) == ("a", "4", "b", "1")
    failure = first.find("testcase/failure")
    assert failure is not None and failure.text == 'data.name: expected "a", got "\\x1b]0;owned\\x07\\ud800\\uffff<b>&"'
    error = first.find("testcase/error")
    assert error is not None and error.get("type") == "exit 4" and error.get("message") == "no reply within 5 s"
    assert first.find("testcase/skipped") is not None


def test_the_exit_code_is_the_gravest_outcome() -> None:
    assert exit_code([result(1, "passed", 0)]) == 0
    assert exit_code([result(1, "failed", 1), result(2, "error", 4)]) == 4
    assert exit_code([result(1, "error", 4), result(2, "error", 3), result(3, "failed", 1)]) == 3


def test_the_report_replaces_a_link_at_its_name_instead_of_writing_through_it(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    report = tmp_path / "report.xml"
    report.symlink_to(victim)
    write_junit([result(1, "passed", 0)], report)
    assert victim.read_text() == "precious\n"
    assert not report.is_symlink() and ET.parse(report).getroot().get("tests") == "1"
