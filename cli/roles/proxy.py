"""`fieldctl proxy PROFILE`: stand between a real client and the real device or server, relay
every frame both ways unchanged, and show both directions decoded (`in`: from upstream, `out`:
to it), as `listen` shows one; with --fault, make the link slow, lossy or flaky on purpose."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from fieldctl.cli.framework.common import FormatOpt, JsonOpt, LinesOpt, ProfileOptions, with_profile
from fieldctl.cli.roles.fault_options import FaultOpt, FaultsFileOpt, SeedOpt, faults_from
from fieldctl.cli.roles.listen import CountOpt, DurationOpt, FilterOpt, IdleOpt, RecordOpt, TimeoutOpt, follow

if TYPE_CHECKING:
    from fieldctl.cli.views.stream import Filters
    from fieldctl.protocols.sdk.contract import BaseDriver, Context

UpstreamOpt = Annotated[
    str | None,
    typer.Option(
        "--upstream",
        metavar="HOST",
        help="The real device's or server's host, put into the profile's endpoints on the upstream side.",
    ),
]
UpstreamEndpointOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--upstream-endpoint",
        metavar="NAME=URL",
        help="Where one endpoint's real device or server is (repeatable; over --upstream).",
    ),
]


#: Where the proxy's own side is when --host does not say: never where a target's device is.
LOOPBACK = "127.0.0.1"


def own_side(profile: ProfileOptions) -> ProfileOptions:
    """The proxy's own endpoints: the profile's with --host and --endpoint, on 127.0.0.1 unless
    --host says otherwise (a saved target's host, or a profile's own, is the upstream's)."""
    return ProfileOptions(
        profile.name,
        profile.host or LOOPBACK,
        profile.endpoints,
        profile.sets,
        profile.files,
        profile.given,
        profile.typed,
    )


def upstream_endpoints(profile: ProfileOptions, host: str | None, overrides: list[str] | None) -> dict[str, str]:
    """Endpoint name -> the URL the proxy connects to: the profile (or saved target) resolved
    with --upstream and --upstream-endpoint instead of --host and --endpoint. An endpoint the
    other side binds that would relay to the very address the proxy binds is a usage error,
    before anything runs."""
    from fieldctl.profiles.schema import did_you_mean
    from fieldctl.profiles.targets import resolve
    from fieldctl.protocols.core.errors import UsageError

    local = own_side(profile).load()
    assert profile.name is not None  # load() refuses a missing PROFILE
    for override in overrides or ():
        name, sep, url = override.partition("=")
        if not (sep and url):
            raise UsageError(f"--upstream-endpoint {override!r}: expected NAME=URL")
        if name not in local.endpoints:
            known = ", ".join(local.endpoints)
            hint = did_you_mean(name, local.endpoints) or f" (endpoints: {known})"
            raise UsageError(f"--upstream-endpoint {name}: profile {local.name} has no such endpoint{hint}")
    upstream = resolve(
        profile.name, profile_files=profile.files, host=host, endpoints=overrides or (), sets=profile.sets
    )
    for name, url in local.endpoints.items():
        if local.topology(name) == "simulator" and upstream.endpoints[name] == url:
            raise UsageError(
                f"proxy: {name} would relay {url} to itself: give the real one with --upstream HOST "
                f"or --upstream-endpoint {name}=URL (and move the proxy's own with --host or --endpoint {name}=URL)"
            )
    return dict(upstream.endpoints)


@with_profile
def proxy(
    profile: ProfileOptions,
    upstream: UpstreamOpt = None,
    upstream_endpoint: UpstreamEndpointOpt = None,
    fault: FaultOpt = None,
    faults_file: FaultsFileOpt = None,
    seed: SeedOpt = None,
    count: CountOpt = None,
    timeout: TimeoutOpt = None,
    idle: IdleOpt = None,
    duration: DurationOpt = None,
    filter_: FilterOpt = None,
    record: RecordOpt = None,
    json_: JsonOpt = False,
    lines: LinesOpt = False,
    format_: FormatOpt = None,
) -> None:
    """Relay between clients on the profile's endpoints (127.0.0.1 unless --host says otherwise) and
    the real device or server (--upstream), unchanged, and show both directions decoded."""
    from fieldctl.cli.views.lines import choose_output

    output = choose_output(json_, lines, format_)
    faults = faults_from(fault, faults_file, seed)
    urls = upstream_endpoints(profile, upstream, upstream_endpoint)

    async def relay(drv: BaseDriver, context: Context, filters: Filters) -> None:
        await drv.proxy(context, upstream=urls, faults=faults)

    follow("proxy", own_side(profile), count, timeout, idle, duration, filter_, record, output, relay)
