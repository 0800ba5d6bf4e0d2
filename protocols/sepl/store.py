"""The connector's device store: the library's sqlite table (spec §10.3: same DDL and tags
column, table order = sync order) plus the gateway id, with parameterised SQL throughout, so
quotes or column names in values are just values. ':memory:' when no --store is given."""

from __future__ import annotations

import sqlite3

from fieldctl.protocols.core.errors import UsageError

from .codec import Device

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS devices (id TEXT PRIMARY KEY, type TEXT, name TEXT, tags TEXT)",
    "CREATE TABLE IF NOT EXISTS gateway (key TEXT PRIMARY KEY, value TEXT)",
)


class DeviceStore:
    def __init__(self, path: str = ":memory:") -> None:
        self.path = path
        try:
            self.db = sqlite3.connect(path)
            with self.db:
                for statement in SCHEMA:
                    self.db.execute(statement)
        except sqlite3.Error as exc:
            raise UsageError(f"--store {path}: {exc}") from None

    def devices(self) -> list[Device]:
        rows = self.db.execute("SELECT id, type, name, tags FROM devices ORDER BY rowid")
        return [Device(id_, type_, name, _tags(tags)) for id_, type_, name, tags in rows]

    def get(self, device_id: str) -> Device | None:
        return next((d for d in self.devices() if d.id == device_id), None)

    def put(self, device: Device) -> None:
        """Insert, or update in place (keeping the device's position in the sync order)."""
        tags = ";".join(device.tag_list)
        with self.db:
            updated = self.db.execute(
                "UPDATE devices SET type = ?, name = ?, tags = ? WHERE id = ?",
                (device.type, device.name, tags, device.id),
            ).rowcount
            if not updated:
                self.db.execute(
                    "INSERT INTO devices (id, type, name, tags) VALUES (?, ?, ?, ?)",
                    (device.id, device.type, device.name, tags),
                )

    def remove(self, device_id: str) -> None:
        with self.db:
            self.db.execute("DELETE FROM devices WHERE id = ?", (device_id,))

    @property
    def gid(self) -> str:
        row = self.db.execute("SELECT value FROM gateway WHERE key = 'gid'").fetchone()
        return row[0] if row else ""

    @gid.setter
    def gid(self, value: str) -> None:
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO gateway (key, value) VALUES ('gid', ?)", (value,))

    def close(self) -> None:
        self.db.close()


def _tags(text: str | None) -> dict[str, str]:
    tags: dict[str, str] = {}
    for item in (text or "").split(";"):
        tag_id, sep, tag = item.partition(":")
        if sep:
            tags[tag_id] = tag
    return tags
