"""`fieldctl listen --fleet FILE`: every target of a fleet file followed at once, as the board
(board.py) or as NDJSON with a `target` field; --count, --timeout, --idle, --duration and
--filter (with `target=GLOB` and `group=GLOB` besides, which pick the targets followed) mean what
they mean for one device."""

from __future__ import annotations

from typing import IO, TYPE_CHECKING, Any

from fieldctl.cli.framework.vocabulary import FILTER_KEYS, FLEET_FILTER_KEYS
from fieldctl.cli.views.stream import Filters, Sink
from fieldctl.protocols.core.errors import UsageError

if TYPE_CHECKING:
    from fieldctl.cli.fleet.board import FleetBoard
    from fieldctl.cli.views.stats import Stats
    from fieldctl.protocols.core.message import Message


class FleetFilters(Filters):
    """listen's filters plus `target=GLOB` and `group=GLOB`, which pick the targets followed at all."""

    KEYS = (*FILTER_KEYS, *FLEET_FILTER_KEYS)

    def __init__(self, specs: list[str] | None) -> None:
        super().__init__(specs)
        self.targets = self.wanted.pop("target", None)
        self.groups = self.wanted.pop("group", None)


class FleetSink(Sink):
    """listen's Sink (filters, counting, scrubbing, NDJSON, --count) for a fleet's messages, each
    given with its target (Sink.tagged): each NDJSON line gets its target as the first field, each
    board row its target."""

    def __init__(
        self, stats: Stats, *, out: IO[str] | None, board: FleetBoard | None, filters: Filters, count: int | None
    ) -> None:
        super().__init__(stats, out=out, view=self if board is not None else None, filters=filters, count=count)
        self.board = board

    def add(self, msg: Message) -> None:
        """The view hook Sink calls with each shown (scrubbed) message; it is this sink only with a board."""
        assert self.board is not None
        self.board.add(self.target or "", msg)


def listen_fleet(
    path: str,
    group: str | None,
    *,
    sets: list[str],
    files: list[Any],
    count: int | None,
    timeout: float | None,
    idle: float | None,
    duration: float | None,
    filters_spec: list[str] | None,
    as_json: bool,
) -> None:
    import asyncio
    import contextlib
    import sys

    from fieldctl.cli.fleet.follower import FleetFollower
    from fieldctl.cli.views.stats import Stats
    from fieldctl.cli.views.stream import run_stream, stream_ended

    filters = FleetFilters(filters_spec)
    fleet = FleetFollower.load(
        path, group, filters.targets, groups=filters.groups, quiet=not as_json, sets=sets, profile_files=files
    )
    fleet.reserve_open_files(path)
    board = None
    live: Any = contextlib.nullcontext()
    keys: Any = None
    if not as_json:
        from fieldctl.cli.fleet.board import FleetBoard
        from fieldctl.cli.views.keys import Keys

        beat_channels = {m.profile.heartbeat.channel for m in fleet.members}
        board = FleetBoard(
            fleet,
            f"fieldctl listen --fleet {path}" + (f" --group {group}" if group else ""),
            show_heartbeats=bool(filters.channels and filters.channels & beat_channels),
        )
        live = board.live()
        keys = Keys()
    sink = FleetSink(Stats(), out=sys.stdout if as_json else None, board=board, filters=filters, count=count)
    if board is not None:
        board.on_quit = sink.done.set  # `q` ends the stream as Ctrl-C does: exit 0

    async def main() -> str:
        reading = keys.reading(board.key) if keys is not None and board is not None else contextlib.nullcontext()
        with reading:
            return await run_stream(
                fleet.follow(sink.tagged, filters.channels), sink, timeout=timeout, duration=duration, idle=idle
            )

    # The terminal is quiet (no echo) before the board first draws, and itself again after it.
    with keys or contextlib.nullcontext(), live:
        reason = asyncio.run(main())
    if reason == "finished":
        raise UsageError("no target of the fleet can listen")
    stream_ended("listen", reason, sink, count, timeout, idle)
