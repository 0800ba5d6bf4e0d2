"""How `register vantiq` answers a query: rows from a data file (JSON, NDJSON or CSV, filtered by
the query's parameters) or from a command (parameters on stdin as JSON, rows on stdout). Both end
as (status, body) frames: partial (100) chunks, then 200, 204, or one 400 error."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import os
import shlex
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

from fieldctl.protocols.core import redact
from fieldctl.protocols.core.errors import UsageError
from fieldctl.protocols.core.limits import loads
from fieldctl.protocols.transport import within

from . import codec

Frame = tuple[int, Any]


def chunked(rows: list[Any], size: int) -> list[Frame]:
    """All rows but the last chunk go as partial (100) frames; no rows at all is a 204."""
    if not rows:
        return [(codec.EMPTY, None)]
    chunks = [rows[i : i + size] for i in range(0, len(rows), size)]
    return [(codec.PARTIAL, chunk) for chunk in chunks[:-1]] + [(codec.COMPLETE, chunks[-1])]


def load_rows(path: str) -> list[dict[str, Any]]:
    """Rows from .csv, .ndjson/.jsonl (one object a line) or .json (a list, or one object)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--data-file {path}: cannot read: {exc.strerror}") from None
    try:
        if path.endswith(".csv"):
            return [dict(row) for row in csv.DictReader(io.StringIO(text))]
        if path.endswith((".ndjson", ".jsonl")):
            rows = [loads(line) for line in text.splitlines() if line.strip()]
        else:
            rows = codec.rows_of(loads(text))
    except ValueError as exc:
        raise UsageError(f"--data-file {path}: not valid JSON: {exc}") from None
    if not all(isinstance(row, dict) for row in rows):
        raise UsageError(f"--data-file {path}: every row must be a JSON object")
    return rows


class DataFileAnswers:
    """Each query parameter naming a column keeps the rows whose value equals it (CSV values
    compare as text); a parameter naming no column is a query error listing the allowed ones."""

    def __init__(self, path: str, chunk_rows: int) -> None:
        self.rows, self.chunk_rows = load_rows(path), chunk_rows
        self.columns = sorted({key for row in self.rows for key in row})

    async def frames(self, source: str, params: Any) -> AsyncIterator[Frame]:
        for frame in self.answer(params):
            yield frame

    def answer(self, params: Any) -> list[Frame]:
        params = params if isinstance(params, dict) else {}
        unknown = sorted(key for key in params if key not in self.columns)
        if unknown:
            return [
                (
                    codec.QUERY_ERROR,
                    codec.query_error(
                        "fieldctl.query.unknownParameter",
                        "Unsupported query parameter {0}; allowed: {1}",
                        [unknown[0], self.columns],
                    ),
                )
            ]
        rows = [row for row in self.rows if all(_same(row.get(key), value) for key, value in params.items())]
        return chunked(rows, self.chunk_rows)


def _same(cell: Any, wanted: Any) -> bool:
    return cell == wanted or (isinstance(cell, str) and not isinstance(wanted, str) and cell == json.dumps(wanted))


def child_environment(secret_variables: Iterable[str]) -> dict[str, str]:
    """Our environment for an --answer-with command, less every secret: the variables meant to
    hold the access token, and any variable whose value holds a secret fieldctl knows of. The
    command answers queries from their parameters; it has no use for the server's credentials,
    and its environment is readable in /proc by every process of the same user."""
    hidden = set(secret_variables)
    return {
        name: value for name, value in os.environ.items() if name not in hidden and redact.scrub_text(value) == value
    }


class CommandAnswers:
    """Runs CMD (split like a shell would, no shell) per query with the parameters on stdin, in
    `env` (see child_environment) with VANTIQ_SOURCE set; stdout lines are rows (objects) or
    lists of rows, streamed in chunks. A non-zero exit is a query error: the last stdout line
    when it is a {messageCode, ...} object, else the exit status and the last line of stderr."""

    def __init__(self, command: str, chunk_rows: int, timeout_s: float, env: dict[str, str]) -> None:
        try:
            self.argv = shlex.split(command)
        except ValueError as exc:
            raise UsageError(f"--answer-with: {exc}") from None
        if not self.argv:
            raise UsageError("--answer-with needs a command")
        self.chunk_rows, self.timeout_s, self.env = chunk_rows, timeout_s, env

    async def frames(self, source: str, params: Any) -> AsyncIterator[Frame]:
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env={**self.env, "VANTIQ_SOURCE": source},
            )
        except OSError as exc:
            yield codec.QUERY_ERROR, command_failed("cannot start", exc.strerror or str(exc))
            return
        try:
            assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
            proc.stdin.write(json.dumps(params).encode() + b"\n")
            with contextlib.suppress(ConnectionError):
                await proc.stdin.drain()
            proc.stdin.close()
            stderr = asyncio.ensure_future(proc.stderr.read())
            pending: list[Any] = []
            last_error: Any = None
            deadline = asyncio.get_running_loop().time() + self.timeout_s
            while True:
                remaining = deadline - asyncio.get_running_loop().time()
                line = await within(proc.stdout.readline(), max(0.0, remaining))
                if not line:
                    break
                rows, error = _rows_or_error(line)
                last_error = error
                pending.extend(rows)
                while len(pending) > self.chunk_rows:
                    yield codec.PARTIAL, pending[: self.chunk_rows]
                    pending = pending[self.chunk_rows :]
            code = await within(proc.wait(), max(0.0, deadline - asyncio.get_running_loop().time()))
            if code != 0:
                tail = (await stderr).decode("utf-8", "replace").strip().splitlines()
                yield codec.QUERY_ERROR, last_error or command_failed(f"exited with {code}", tail[-1] if tail else "")
            elif pending:
                yield codec.COMPLETE, pending
            else:
                yield codec.EMPTY, None
        except TimeoutError:
            yield codec.QUERY_ERROR, command_failed(f"gave no answer within {self.timeout_s:g} s", "")
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


def _rows_or_error(line: bytes) -> tuple[list[Any], Any]:
    try:
        value = codec.parse(line)
    except ValueError:
        return [], None  # not a row: ignored (a command may print progress on stdout)
    if isinstance(value, dict) and "messageCode" in value:
        return [], value
    return codec.rows_of(value), None


def command_failed(what: str, detail: str) -> dict[str, Any]:
    return codec.query_error("fieldctl.query.commandFailed", "The query command {0}: {1}", [what, detail])


def unanswerable(source: str) -> list[Frame]:
    """No data file and no command: answer at once, as the Java SDK does, instead of letting the
    server wait for its timeout as the Python SDK does (spec §12 #13)."""
    return [
        (
            codec.QUERY_ERROR,
            codec.query_error(
                "io.vantiq.extjsdk.unsetQueryHandler",
                "Queries are not supported for source {0}. No handler has been set.",
                [source],
            ),
        )
    ]
