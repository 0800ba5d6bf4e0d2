"""A real Prometheus server (the Debian package `prometheus`) on loopback, for the monitoring round trip
(a site, and a central one federating it).

The test starts it as a plain process: a generated config (scrape every second, one job), a temp data
dir, a free loopback port; no systemd. `query` asks its HTTP API, `wait_for` polls a query until the
answer satisfies the test (scrapes and rule evaluations happen on their own clock)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.ports import free_port

Series = list[dict[str, Any]]


def prometheus_tool(name: str) -> str:
    """/usr/bin/prometheus or promtool. Missing means apt-get could not install them: a skip that says
    so, except under CI, where the round trip must run."""
    path = shutil.which(name)
    if path is None:
        reason = f"{name} not found: install the Debian package prometheus (make test does, as root)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return path


class Prometheus:
    """One server scraping `targets` (host:port) as job `job`, evaluating `rule_files` every second;
    `site` is its external label, `federate` the match[] selectors of a central pulling /federate."""

    def __init__(
        self,
        folder: Path,
        targets: Sequence[str],
        job: str,
        rule_files: Sequence[Path] = (),
        site: str | None = None,
        federate: Sequence[str] = (),
    ) -> None:
        self.folder = folder
        self.job = job
        self.url = f"http://127.0.0.1:{free_port()}"
        self.address = self.url.removeprefix("http://")
        scrape: dict[str, Any] = {"job_name": job, "static_configs": [{"targets": list(targets)}]}
        if federate:
            scrape.update(honor_labels=True, metrics_path="/federate", params={"match[]": list(federate)})
        config = {  # JSON is YAML: no quoting rules to get wrong
            "global": {
                "scrape_interval": "1s",
                "scrape_timeout": "1s",
                "evaluation_interval": "1s",
                "external_labels": {"site": site} if site else {},
            },
            "rule_files": [str(path) for path in rule_files],
            "scrape_configs": [scrape],
        }
        self.config = folder / "prometheus.yml"
        self.config.write_text(json.dumps(config, indent=2))
        self.log = folder / "prometheus.log"
        with self.log.open("wb") as log:  # a file, not a pipe: nobody has to drain it
            self.popen = subprocess.Popen(
                [
                    prometheus_tool("prometheus"),
                    f"--config.file={self.config}",
                    f"--storage.tsdb.path={folder / 'data'}",
                    f"--web.listen-address={self.address}",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def _get(self, path: str, timeout: float = 5) -> bytes:
        with urllib.request.urlopen(self.url + path, timeout=timeout) as response:
            return response.read()

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.popen.poll() is not None:
                raise AssertionError(f"prometheus ended (rc={self.popen.returncode}):\n{self.log_tail()}")
            try:
                self._get("/-/ready", timeout=2)
                return
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    raise AssertionError(f"prometheus not ready within {timeout} s:\n{self.log_tail()}") from None
                time.sleep(0.1)

    def query(self, promql: str) -> Series:
        """An instant query: the result vector, each entry {"metric": labels, "value": float}."""
        answer = json.loads(self._get("/api/v1/query?" + urllib.parse.urlencode({"query": promql})))
        assert answer["status"] == "success", answer
        assert answer["data"]["resultType"] == "vector", answer
        return [{"metric": entry["metric"], "value": float(entry["value"][1])} for entry in answer["data"]["result"]]

    def values(self, promql: str, label: str = "target") -> dict[str, float]:
        """The result as label value -> sample value (one series per value of `label`)."""
        return {entry["metric"].get(label, ""): entry["value"] for entry in self.query(promql)}

    def wait_for(
        self, promql: str, predicate: Callable[[dict[str, float]], bool], timeout: float = 30, label: str = "target"
    ) -> dict[str, float]:
        """Polls `values(promql)` until `predicate` holds: scrapes and rules run on Prometheus' clock."""
        deadline = time.monotonic() + timeout
        while True:
            seen = self.values(promql, label)
            if predicate(seen):
                return seen
            if time.monotonic() > deadline:
                raise AssertionError(f"{promql} -> {seen} within {timeout} s; scrapes: {self.scrapes()}")
            time.sleep(0.25)

    def scrapes(self) -> list[tuple[str, str, str]]:
        """(scrape URL, health, last error) per target: why a series is missing."""
        active = json.loads(self._get("/api/v1/targets"))["data"]["activeTargets"]
        return [(target["scrapeUrl"], target["health"], target["lastError"]) for target in active]

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM, as a service manager would: Prometheus closes its TSDB and says goodbye."""
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout)
                raise AssertionError(f"prometheus did not stop within {timeout} s of SIGTERM") from None


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[..., Prometheus]]:
    """start(targets, job="fieldctl", rule_files=(), site=None, federate=()) -> a ready Prometheus;
    every one stopped afterwards."""
    started: list[Prometheus] = []

    def start(
        targets: Sequence[str],
        job: str = "fieldctl",
        rule_files: Sequence[Path] = (),
        site: str | None = None,
        federate: Sequence[str] = (),
    ) -> Prometheus:
        folder = tmp_path / f"prometheus-{len(started)}"
        folder.mkdir()
        server = Prometheus(folder, targets, job, rule_files, site, federate)
        started.append(server)
        server.wait_ready()
        return server

    yield start
    for server in started:
        server.stop()
