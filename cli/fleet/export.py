"""`fieldctl export prometheus --fleet FILE`: a long-lived exporter of a fleet's state for
Prometheus. It follows every target as `listen --fleet` does (follower.py), probes each every
--probe-interval seconds, and serves the FleetState at /metrics, rendered at scrape time on the loop
that feeds it (metrics.py), through a server made for hostile clients (transport/http_server.py).
Loopback by default: any other address needs --listen-public as well."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from fieldctl.cli.framework.bounded import Bounded
from fieldctl.protocols.core.limits import MAX_SECONDS

if TYPE_CHECKING:
    from fieldctl.cli.fleet.follower import FleetFollower, Member
    from fieldctl.protocols.transport.http_server import Pages

app = typer.Typer(help="Serve a fleet's state to a monitoring system.", no_args_is_help=True)
PROBE_INTERVAL = Bounded(float, 0.1, MAX_SECONDS, " of seconds")


#: Seconds a rendered /metrics is served again: a burst of scrapes costs one rendering.
METRICS_REUSED_FOR_S = 0.5


def parse_listen(value: str) -> tuple[str, int]:
    """HOST:PORT ([::1]:PORT for IPv6; an empty host is 127.0.0.1)."""
    from fieldctl.protocols.core.errors import UsageError

    host, sep, port = value.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"--listen {value!r}: expected HOST:PORT, e.g. 127.0.0.1:9464")
    return host, int(port)


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: reachable from this machine only."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may name any interface


def metrics_pages(fleet: FleetFollower) -> Pages:
    """/metrics, and a pointer to it at /."""
    from fieldctl.cli.fleet.metrics import exposition
    from fieldctl.cli.framework.exposition import CONTENT_TYPE
    from fieldctl.protocols.transport.http_server import Page, reused

    index = Page("text/plain; charset=utf-8", b"fieldctl exporter: the metrics are at /metrics\n")
    return {
        "/metrics": reused(lambda: Page(CONTENT_TYPE, exposition(fleet.state)), METRICS_REUSED_FOR_S),
        "/": lambda: index,
    }


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
            help="Where to serve /metrics (port 0: any free one); an address beyond loopback needs --listen-public.",
        ),
    ] = "127.0.0.1:9464",
    listen_public: Annotated[
        bool,
        typer.Option(
            "--listen-public",
            help="Serve on a --listen address other machines can reach, with no authentication of its own "
            "(put a reverse proxy with TLS and a password in front).",
        ),
    ] = False,
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
    import sys

    from fieldctl.cli.fleet.follower import FleetFollower
    from fieldctl.cli.framework.common import wait_while_running
    from fieldctl.cli.views.stream import stop_on_signals
    from fieldctl.protocols.core.errors import UsageError
    from fieldctl.protocols.transport import together
    from fieldctl.protocols.transport.http_server import HttpLimits, serve_http

    host, port = parse_listen(listen)
    if not listen_public and not is_loopback(host):
        raise UsageError(
            f"--listen {listen}: other machines could read /metrics, unauthenticated; "
            "add --listen-public to mean it (README: exposing the exporter)"
        )
    fleet = FleetFollower.load(fleet_file, group)
    fleet.reserve_open_files(fleet_file, probing=True, serving=HttpLimits().max_connections)

    async def main() -> None:
        with stop_on_signals() as stop:
            server = await serve_http(host, port, metrics_pages(fleet))
            try:
                bound_host, bound_port = server.addresses[0]
                shown_host = f"[{bound_host}]" if ":" in bound_host else bound_host
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
            finally:
                await server.close()
        if not work.cancelled():
            work.result()  # a loop's failure is the exporter's

    asyncio.run(main())
