"""The store: schema, permissions, merge-on-upsert, redaction on write, search scope."""

from __future__ import annotations

import contextlib
import sqlite3
import stat
from pathlib import Path

import pytest

from builders import make_turn
from lmm.errors import StoreError
from lmm.records import SessionInfo, ToolCall, Turn
from lmm.store import migrations
from lmm.store.db import Store, quote_fts


@pytest.fixture
def session_store(store: Store) -> Store:
    """Session s1 of /work/app, no turns yet."""
    store.add_session(SessionInfo("s1", "claude", project="/work/app"))
    return store


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


def test_split_assistant_turn_merges_once(session_store: Store) -> None:
    first = make_turn("s1", "msg_1", "part one", "assistant", uuids=["u1", "u2"],
                      tool_calls=[ToolCall("t1", "Bash", '{"command":"ls"}')])  # fmt: skip
    second = make_turn("s1", "msg_1", "part two", "assistant", uuids=["u3"])
    session_store.add_turns([first])
    session_store.add_turns([second])
    session_store.add_turns([second])  # the same piece again changes nothing
    row = session_store.db.execute(
        "SELECT text, uuids, tools FROM turns WHERE key = 'msg_1'"
    ).fetchone()
    assert row["text"] == "part one\npart two"
    assert row["uuids"] == '["u1","u2","u3"]'
    assert (
        row["tools"]
        == '[{"type":"call","id":"t1","name":"Bash","input":"{\\"command\\":\\"ls\\"}"}]'
    )


def test_full_reread_replaces_a_partial_turn(session_store: Store) -> None:
    session_store.add_turns([make_turn("s1", "msg_1", "part one", "assistant", uuids=["u1"])])
    session_store.add_turns(
        [make_turn("s1", "msg_1", "part one\npart two", "assistant", uuids=["u1", "u2"])]
    )
    session_store.add_turns([make_turn("s1", "msg_1", "part one", "assistant", uuids=["u1"])])
    row = session_store.db.execute("SELECT text, uuids FROM turns WHERE key = 'msg_1'").fetchone()
    assert (row["text"], row["uuids"]) == ("part one\npart two", '["u1","u2"]')
    assert session_store.search("two")[0].text == "part one\npart two"


def test_secrets_never_reach_the_database_file(session_store: Store) -> None:
    key = "sk-ant-api03-" + "Q" * 40
    call = ToolCall("t", "Bash", f'{{"command": "echo {key}"}}')
    turn = make_turn(
        "s1", "u9", f"export ANTHROPIC_API_KEY={key}", "assistant", thinking=f"the key {key}"
    )
    turn.tool_calls = [call]
    session_store.add_turns([turn])
    session_store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    session_store.close()
    raw = b"".join(p.read_bytes() for p in session_store.path.parent.iterdir() if p.is_file())
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


def test_fts_syntax_in_a_query_is_plain_text(session_store: Store) -> None:
    session_store.add_turns([make_turn("s1", "u1", 'the test said NOT "ready" (yet)', "assistant")])
    assert [h.text for h in session_store.search('NOT "ready" (yet)')] == [
        'the test said NOT "ready" (yet)'
    ]


# ---- deferred indexing (Store.bulk): the indexes end up exactly as with per-batch indexing


def _history(store: Store, bulk: bool) -> None:
    """Turns arriving in pieces: merges into a turn written moments earlier (same transaction),
    into a committed turn, a turn whose text starts empty, and a turn deleted before commit."""
    first = [
        make_turn("s1", "u0", "please build the parser", "user"),
        make_turn("s1", "msg_1", "first part about sqlite", "assistant", uuid="a1"),
        make_turn("s1", "r1", "tool output lexer", "user"),
        make_turn("s1", "msg_2", "", "assistant", uuid="b1"),
    ]
    second = [
        make_turn("s1", "msg_1", "second part about fts5", "assistant", uuid="a2"),
        make_turn("s1", "msg_2", "now with words", "assistant", uuid="b2"),
    ]
    third = [
        make_turn("s1", "msg_1", "third part", "assistant", uuid="a3"),
        make_turn("s1", "u9", "a turn to delete", "user"),
    ]
    with store.bulk() if bulk else contextlib.nullcontext():
        for batches in ([first, second], [third]):
            if bulk:
                store.db.execute("BEGIN IMMEDIATE")
            for batch in batches:
                store.add_turns(batch)
            if batches[0] is third:
                store.db.execute("DELETE FROM turns WHERE key = 'u9'")
            if bulk:
                store.commit()


def _indexes(store: Store) -> tuple[list[tuple[object, ...]], ...]:
    """Every term instance of both FTS indexes and the keys' columns, after integrity checks
    that compare each index with its content."""
    db = store.db
    for table in ("turns_fts", "turn_keys"):
        db.execute(f"INSERT INTO {table} ({table}, rank) VALUES ('integrity-check', 1)")
        db.execute(f"CREATE VIRTUAL TABLE temp.{table}_v USING fts5vocab(main, {table}, instance)")
    return tuple(
        [tuple(r) for r in db.execute(sql)]
        for sql in (
            "SELECT * FROM temp.turns_fts_v ORDER BY 1, 2, 3, 4",
            "SELECT * FROM temp.turn_keys_v ORDER BY 1, 2, 3, 4",
            "SELECT rowid, speaker, text, context, day FROM turn_keys ORDER BY rowid",
            "SELECT * FROM turns_fts_docsize ORDER BY id",
        )
    )


def test_bulk_indexes_exactly_as_per_batch_indexing(tmp_path: Path) -> None:
    stores = []
    for bulk in (False, True):
        s = Store(tmp_path / f"bulk{bulk}.db")
        s.add_session(SessionInfo("s1", "claude", project="/work/app"))
        _history(s, bulk)
        stores.append(s)
    keys = [tuple(r) for r in stores[1].db.execute(
        "SELECT speaker, text, context FROM turn_keys ORDER BY rowid")]  # fmt: skip
    assert keys == [
        ("user", "please build the parser", ""),
        (
            "assistant",
            "first part about sqlite\nsecond part about fts5\nthird part",
            "user: please build the parser",
        ),
        # indexed before msg_1's second part arrived: its context keeps the first part only
        ("user", "tool output lexer", "assistant: first part about sqlite"),
        ("assistant", "now with words", "user: tool output lexer"),
    ]
    assert _indexes(stores[1]) == _indexes(stores[0])
    assert [h.text for h in stores[1].search("fts5")] == [keys[1][1]]


def test_bulk_rolls_back_unfinished_work_and_restores_the_connection(session_store: Store) -> None:
    settings = ("cache_size", "wal_autocheckpoint", "temp_store")
    before = [session_store.db.execute(f"PRAGMA {p}").fetchone()[0] for p in settings]
    with pytest.raises(KeyboardInterrupt), session_store.bulk():
        session_store.db.execute("BEGIN IMMEDIATE")
        session_store.add_turns([make_turn("s1", "u1", "never committed", "user")])
        raise KeyboardInterrupt
    assert session_store.db.execute("SELECT count(*) FROM turns").fetchone()[0] == 0
    assert session_store.db.execute("SELECT name FROM sqlite_temp_master").fetchall() == []
    assert [session_store.db.execute(f"PRAGMA {p}").fetchone()[0] for p in settings] == before
    # indexed at once again
    session_store.add_turns([make_turn("s1", "u1", "written after", "user")])
    assert [h.text for h in session_store.search("written")] == ["written after"]


def test_bulk_starts_outside_a_transaction(store: Store) -> None:
    store.db.execute("BEGIN")
    with pytest.raises(StoreError, match="outside a transaction"), store.bulk():
        pass


def test_bulk_never_leaves_committed_turns_unindexed(session_store: Store) -> None:
    with session_store.bulk():
        # no transaction: at once
        session_store.add_turns([make_turn("s1", "u1", "autocommit write", "user")])
        assert [h.text for h in session_store.search("autocommit")] == ["autocommit write"]
        session_store.db.execute("BEGIN IMMEDIATE")
        session_store.add_turns([make_turn("s1", "u2", "bare commit write", "user")])
        session_store.db.execute("COMMIT")  # not Store.commit: indexed when the bulk run ends
    assert [h.text for h in session_store.search("bare")] == ["bare commit write"]
    assert len(_indexes(session_store)[2]) == 2  # both in turn_keys; integrity checks pass


def test_search_shows_each_saying_once_without_terminal_escapes(session_store: Store) -> None:
    from lmm.records import Turn
    from lmm.store.db import MATCH_END, MATCH_START

    noisy = "\x1b[31mFAILED\x1b[0m test_gateway \x1b]0;title\x07 timed out\r\n"
    turns = [
        Turn(
            session_id=f"s{i}",
            key=f"k{i}",
            role="user",
            kind="tool_result",
            text=noisy,
            timestamp=f"2026-01-0{i}T00:00:00Z",
            cwd="/w/app",
        )
        for i in range(1, 7)
    ]
    turns.append(Turn(session_id="s9", key="k9", role="user", kind="prompt",
                      text="why does test_gateway time out?", cwd="/w/app"))  # fmt: skip
    with session_store.transaction():
        session_store.add_turns(turns)
    hits = session_store.search("test_gateway")
    assert len(hits) == 2  # the six copies of one tool output count once
    for h in hits:
        assert "\x1b" not in h.snippet and "\x07" not in h.snippet and "\r" not in h.snippet
        assert MATCH_START in h.snippet and MATCH_END in h.snippet
