"""The counters a stream's views show: kept by the stream's sink, never by a driver."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Stats:
    received: int = 0
    malformed: int = 0
    #: Messages a role heard again and did not pass on (a device's re-sent emergency).
    duplicates: int = 0
    sent: int = 0
    #: Frames a fault rule touched (dropped, delayed, ...): `proxy` and `simulate --fault`.
    faults: int = 0
