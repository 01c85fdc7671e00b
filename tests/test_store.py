"""The store: schema, permissions, merge-on-upsert, redaction on write, search scope."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest

from lmm import migrations
from lmm.errors import StoreError
from lmm.records import SessionInfo, ToolCall, Turn
from lmm.store import Store, quote_fts


def _turn(key: str, text: str, *, uuids: list[str] | None = None, **kw: object) -> Turn:
    uuids = uuids or [key]
    return Turn(session_id="s1", key=key, role="assistant", kind="message", text=text,
                uuid=uuids[0], uuids=uuids, **kw)  # type: ignore[arg-type]  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "lmm.db")
    s.add_session(SessionInfo("s1", "claude", project="/work/app"))
    return s


def test_new_store_is_private_wal_and_fully_migrated(store: Store) -> None:
    mode = stat.S_IMODE(store.path.stat().st_mode)
    assert mode == 0o600
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == len(migrations.MIGRATIONS)


def test_store_newer_than_code_fails_with_advice(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "lmm.db")
    db.execute("PRAGMA user_version = 999")
    db.close()
    with pytest.raises(StoreError, match="upgrade lmm"):
        Store(tmp_path / "lmm.db")


def test_split_assistant_turn_merges_once(store: Store) -> None:
    first = _turn("msg_1", "part one", uuids=["u1", "u2"],
                  tool_calls=[ToolCall("t1", "Bash", '{"command":"ls"}')])  # fmt: skip
    second = _turn("msg_1", "part two", uuids=["u3"])
    store.add_turns([first])
    store.add_turns([second])
    store.add_turns([second])  # the same piece again changes nothing
    row = store.db.execute("SELECT text, uuids, tools FROM turns WHERE key = 'msg_1'").fetchone()
    assert row["text"] == "part one\npart two"
    assert row["uuids"] == '["u1","u2","u3"]'
    assert (
        row["tools"]
        == '[{"type":"call","id":"t1","name":"Bash","input":"{\\"command\\":\\"ls\\"}"}]'
    )


def test_full_reread_replaces_a_partial_turn(store: Store) -> None:
    store.add_turns([_turn("msg_1", "part one", uuids=["u1"])])
    store.add_turns([_turn("msg_1", "part one\npart two", uuids=["u1", "u2"])])
    store.add_turns([_turn("msg_1", "part one", uuids=["u1"])])
    row = store.db.execute("SELECT text, uuids FROM turns WHERE key = 'msg_1'").fetchone()
    assert (row["text"], row["uuids"]) == ("part one\npart two", '["u1","u2"]')
    assert store.search("two")[0].text == "part one\npart two"


def test_secrets_never_reach_the_database_file(store: Store) -> None:
    key = "sk-ant-api03-" + "Q" * 40
    call = ToolCall("t", "Bash", f'{{"command": "echo {key}"}}')
    turn = _turn("u9", f"export ANTHROPIC_API_KEY={key}", thinking=f"the key {key}")
    turn.tool_calls = [call]
    store.add_turns([turn])
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    raw = b"".join(p.read_bytes() for p in store.path.parent.iterdir() if p.is_file())
    assert key.encode() not in raw
    assert b"[REDACTED:" in raw


def test_search_scopes_by_full_project_path(tmp_path: Path) -> None:
    s = Store(tmp_path / "lmm.db")
    for sid, cwd in [("a", "/w/app"), ("b", "/w/app/packages/api"), ("c", "/w/app2"),
                     ("d", "/other/app")]:  # fmt: skip
        s.add_session(SessionInfo(sid, "claude", project=cwd))
        s.add_turns([Turn(session_id=sid, key=sid, role="user", kind="message",
                          text=f"deploy the gateway from {cwd}", cwd=cwd)])  # fmt: skip
    in_app = sorted(h.session_id for h in s.search("gateway", project="/w/app"))
    assert in_app == ["a", "b"]  # the monorepo package is inside; the sibling /w/app2 is not
    assert sorted(h.session_id for h in s.search("gateway")) == ["a", "b", "c", "d"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("database is locked", '"database" "is" "locked"'),
        ('say "hi" OR NOT x*', '"say" """hi""" "OR" "NOT" "x*"'),
        ("   ", ""),
    ],
)
def test_quote_fts_neutralises_syntax(query: str, expected: str) -> None:
    assert quote_fts(query) == expected


def test_fts_syntax_in_a_query_is_plain_text(store: Store) -> None:
    store.add_turns([_turn("u1", 'the test said NOT "ready" (yet)')])
    assert [h.text for h in store.search('NOT "ready" (yet)')] == [
        'the test said NOT "ready" (yet)'
    ]
