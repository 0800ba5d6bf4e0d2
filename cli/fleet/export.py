"""`fieldctl export prometheus --fleet FILE`: a long-lived exporter of a fleet's state for
Prometheus. It follows every target as `listen --fleet` does (fleet.py), probes each every
--probe-interval seconds, and serves the FleetState at /metrics through prometheus_client, read
at scrape time (fleet_metrics.py). Loopback by default: exposing it is a deliberate --listen."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from fieldctl.cli.framework.bounded import Bounded
from fieldctl.protocols.core.limits import MAX_SECONDS

if TYPE_CHECKING:
    from fieldctl.cli.fleet.follower import FleetFollower, Member

app = typer.Typer(help="Serve a fleet's state to a monitoring system.", no_args_is_help=True)
PROBE_INTERVAL = Bounded(float, 0.1, MAX_SECONDS, " of seconds")


def parse_listen(value: str) -> tuple[str, int]:
    """HOST:PORT ([::1]:PORT for IPv6; an empty host is 127.0.0.1)."""
    from fieldctl.protocols.core.errors import UsageError

    host, sep, port = value.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"--listen {value!r}: expected HOST:PORT, e.g. 127.0.0.1:9464")
    return host, int(port)


async def probe_forever(fleet: FleetFollower, interval: float) -> None:
    """Every target's probe, every `interval` seconds (from the start of one round to the next)."""
    import asyncio

    from fieldctl.cli.fleet.metrics import probe_rtt
    from fieldctl.protocols.sdk.probing import PROBES_AT_ONCE
    from fieldctl.protocols.transport import together

    gate = asyncio.Semaphore(PROBES_AT_ONCE)

    async def one(member: Member) -> None:
        async with gate:
            report = await fleet.probe(member)
        fleet.state.probed(member.name, int(report.status), report.metrics)
        trip = probe_rtt(report.metrics)
        if trip is not None:
            fleet.state.rtt(member.name, trip)

    loop = asyncio.get_running_loop()
    while True:
        started = loop.time()
        await together(*(one(member) for member in fleet.members))
        await asyncio.sleep(max(0.0, started + interval - loop.time()))


@app.command()
def prometheus(
    fleet_file: Annotated[
        str, typer.Option("--fleet", metavar="FILE", help="The fleet file whose targets to export.", show_default=False)
    ],
    group: Annotated[str | None, typer.Option("--group", metavar="G", help="Only the targets labelled G.")] = None,
    listen: Annotated[
        str,
        typer.Option(
            "--listen",
            metavar="HOST:PORT",
            help="Where to serve /metrics (loopback unless you say otherwise; port 0: any free one).",
        ),
    ] = "127.0.0.1:9464",
    probe_interval: Annotated[
        float,
        typer.Option(
            "--probe-interval", metavar="S", parser=PROBE_INTERVAL, help="Seconds between probes of each target."
        ),
    ] = 30.0,
) -> None:
    """Serve every target's link, heartbeat age, message counts, malformed frames, errors, round
    trip and probe status as Prometheus metrics, until SIGTERM or Ctrl-C."""
    import asyncio
    import errno
    import sys

    from fieldctl.cli.fleet.follower import FleetFollower
    from fieldctl.cli.framework.common import wait_while_running
    from fieldctl.cli.views.stream import stop_on_signals
    from fieldctl.protocols.core.errors import ConnectFailure, UsageError
    from fieldctl.protocols.transport import together

    host, port = parse_listen(listen)
    fleet = FleetFollower.load(fleet_file, group)
    from prometheus_client import start_http_server
    from prometheus_client.registry import CollectorRegistry

    from fieldctl.cli.fleet.metrics import FleetCollector

    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(fleet.state))
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ConnectFailure(f"cannot listen on {listen}: address already in use") from None
        raise UsageError(f"cannot listen on {listen}: {exc.strerror or exc}") from None
    bound_host, bound_port = server.server_address[:2]
    assert isinstance(bound_host, str), "an IP socket's getsockname() names its host as text"
    shown_host = f"[{bound_host}]" if ":" in bound_host else bound_host

    async def main() -> None:
        with stop_on_signals() as stop:
            # Announced once a signal ends it cleanly: whoever waits for this line may stop it at once.
            sys.stdout.write(f"serving http://{shown_host}:{bound_port}/metrics ({len(fleet.members)} targets)\n")
            sys.stdout.flush()
            # fleet.follow ends only when no target can listen; the probes (and the metrics) go on.
            # A failure of either ends both (together), and the exporter with it.
            work = asyncio.ensure_future(
                together(fleet.follow(lambda target, msg: None), probe_forever(fleet, probe_interval))
            )
            try:
                await wait_while_running(work, stop.wait(), None)
            finally:
                work.cancel()
                await asyncio.wait({work})
        if not work.cancelled():
            work.result()  # a loop's failure is the exporter's

    try:
        asyncio.run(main())
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
