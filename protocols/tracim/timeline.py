"""The built-in Tracim activity `simulate tracim` relays: a small team editing a workspace,
with the entities and `fields` keys of Tracim's live messages (spec §4.9)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

AUTHORS = [
    {"user_id": 7, "username": "jdoe", "public_name": "John Doe"},
    {"user_id": 8, "username": "zoe", "public_name": "Zoé Martin"},
]
WORKSPACE = {"workspace_id": 3, "label": "R&D <team>", "is_deleted": False}


def _content(content_id: int, label: str, content_type: str, raw: str = "") -> dict[str, Any]:
    return {
        "content_id": content_id,
        "label": label,
        "content_type": content_type,
        "raw_content": raw,
        "workspace_id": WORKSPACE["workspace_id"],
        "parent_id": None,
    }


def events() -> Iterator[tuple[str, dict[str, Any]]]:
    """(event_type, fields) forever, in a believable order."""
    note = _content(12, "Café notes", "html-document", "<p>Hello & welcome</p>")
    thread = _content(13, "Weekly sync", "thread")
    comment = _content(14, "", "comment", "<p>Agreed, see you Monday</p>")
    one_round = [
        ("content.created.html-document", {"author": AUTHORS[0], "workspace": WORKSPACE, "content": note}),
        ("content.modified.html-document", {"author": AUTHORS[1], "workspace": WORKSPACE, "content": note}),
        ("content.created.thread", {"author": AUTHORS[1], "workspace": WORKSPACE, "content": thread}),
        ("content.created.comment", {"author": AUTHORS[0], "workspace": WORKSPACE, "content": comment}),
        (
            "reaction.created",
            {
                "author": AUTHORS[1],
                "workspace": WORKSPACE,
                "content": comment,
                "user": AUTHORS[1],
                "reaction": {"reaction_id": 5, "value": "👍", "content_id": 14},
            },
        ),
        (
            "workspace_member.modified",
            {
                "author": AUTHORS[0],
                "workspace": WORKSPACE,
                "user": AUTHORS[1],
                "member": {"role": "content-manager", "do_notify": True},
            },
        ),
        ("user.modified", {"author": AUTHORS[1], "user": AUTHORS[1]}),
    ]
    yield from itertools.cycle(one_round)
