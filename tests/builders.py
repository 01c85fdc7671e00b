"""Test data builders: the Turn a test stores, with only what the test is about spelled out."""

from __future__ import annotations

from typing import Any

from lmm.records import Turn


def make_turn(session: str, key: str, text: str, role: str = "user", **kw: Any) -> Turn:
    """A message turn of `session`; its uuid is the first of `uuids`, else its key."""
    kw.setdefault("uuid", kw["uuids"][0] if kw.get("uuids") else key)
    kw.setdefault("uuids", [kw["uuid"]])
    return Turn(session_id=session, key=key, role=role, kind="message", text=text, **kw)
