"""Migrations upgrade a store in place: M005 (deferred indexing) on a store written at M004."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import pytest

from builders import make_turn
from lmm.records import SessionInfo, Turn
from lmm.store import migrations
from lmm.store.db import Store

WHEN = "2026-03-05T10:00:00Z"


@pytest.fixture
def v4_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A store written by lmm at schema version 4, holding three turns."""
    path = tmp_path / "lmm.db"
    with monkeypatch.context() as m:
        m.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:4])
        with Store(path) as store:
            store.add_session(SessionInfo("s1", "claude", project="/work/app"))
            store.add_turns(
                [
                    make_turn("s1", "u0", "please profile the ingest", "user", timestamp=WHEN),
                    make_turn("s1", "msg_1", "the writer is slow", "assistant", uuid="a1",
                              timestamp=WHEN),
                    make_turn("s1", "u2", "delete me later", "user", timestamp=WHEN),
                ]
            )  # fmt: skip
            assert store.db.execute("PRAGMA user_version").fetchone()[0] == 4
    return path


def _keys(store: Store) -> list[tuple[object, ...]]:
    for table in ("turns_fts", "turn_keys"):
        store.db.execute(f"INSERT INTO {table} ({table}, rank) VALUES ('integrity-check', 1)")
    rows = store.db.execute("SELECT speaker, text, context, day FROM turn_keys ORDER BY rowid")
    return [tuple(r) for r in rows]


def test_m005_keeps_every_row_and_the_indexes_stay_exact(v4_store: Path) -> None:
    with Store(v4_store) as store:
        db = store.db
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(migrations.MIGRATIONS)
        assert [r[0] for r in db.execute("SELECT key FROM turns ORDER BY id")] == [
            "u0", "msg_1", "u2"]  # fmt: skip
        for table in ("turns_fts", "turn_keys"):
            config = dict(db.execute(f"SELECT k, v FROM {table}_config").fetchall())
            assert config["hashsize"] == 16777216
        # the new triggers keep old turns' indexes exact on a merge and on a delete
        more = make_turn("s1", "msg_1", "because of FTS5 flushes", "assistant", uuid="a2",
                         timestamp=WHEN)  # fmt: skip
        store.add_turns([more])
        db.execute("DELETE FROM turns WHERE key = 'u2'")
        assert _keys(store) == [
            ("user", "please profile the ingest", "", "5 March 2026"),
            (
                "assistant",
                "the writer is slow\nbecause of FTS5 flushes",
                "user: please profile the ingest",
                "5 March 2026",
            ),
        ]
        assert [h.text for h in store.search("flushes")] == [
            "the writer is slow\nbecause of FTS5 flushes"]  # fmt: skip
        assert store.search("delete") == []


def _open_at_once(path: str, barrier: Any, errors: Any) -> None:
    barrier.wait()
    try:
        Store(Path(path)).close()
    except Exception as exc:  # reported to the parent, which fails the test
        errors.put(f"{type(exc).__name__}: {exc}")


def test_processes_opening_a_new_store_at_once_all_succeed(tmp_path: Path) -> None:
    """Each migration re-reads the schema version under the write lock, so racing openers of a
    new store skip what another already applied instead of failing on 'table already exists'."""
    ctx = multiprocessing.get_context("fork")
    for round_ in range(4):
        path = tmp_path / f"lmm{round_}.db"
        barrier, errors = ctx.Barrier(4), ctx.Queue()
        procs = [
            ctx.Process(target=_open_at_once, args=(str(path), barrier, errors)) for _ in range(4)
        ]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        failures = [errors.get() for _ in range(errors.qsize())] if not errors.empty() else []
        assert failures == [] and all(p.exitcode == 0 for p in procs)
        with Store(path) as store:
            assert store.db.execute("PRAGMA user_version").fetchone()[0] == len(
                migrations.MIGRATIONS
            )


def test_statements_keep_trigger_bodies_and_quoted_semicolons_whole() -> None:
    script = """
    CREATE TABLE t (a TEXT);
    -- a comment; with a semicolon
    CREATE TRIGGER t_ai AFTER INSERT ON t BEGIN
        INSERT INTO t (a) SELECT 'x;y' WHERE 0;
        DELETE FROM t WHERE a = ';';
    END;
    INSERT INTO t VALUES ('a;b');
    """
    parts = migrations.statements(script)
    assert len(parts) == 3
    assert "CREATE TRIGGER" in parts[1] and "x;y" in parts[1]
    assert parts[1].rstrip().endswith("END;") and parts[2] == "INSERT INTO t VALUES ('a;b');"
    with pytest.raises(ValueError, match="incomplete"):
        migrations.statements("CREATE TRIGGER t_ad AFTER DELETE ON t BEGIN DELETE FROM t;")


def test_every_released_migration_splits_into_statements_that_rebuild_the_schema(
    tmp_path: Path,
) -> None:
    import sqlite3

    whole = sqlite3.connect(":memory:")
    for m in migrations.MIGRATIONS:
        whole.executescript(m)
    with Store(tmp_path / "lmm.db") as store:
        split = sorted(
            tuple(r) for r in store.db.execute("SELECT type, name, sql FROM sqlite_master")
        )
    assert split == sorted(
        tuple(r) for r in whole.execute("SELECT type, name, sql FROM sqlite_master")
    )


def test_m006_gives_cognitions_the_project_they_were_learned_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lmm.store import cognitions
    from lmm.store.cognitions import Cognition, SourceRef

    path = tmp_path / "lmm.db"
    with monkeypatch.context() as m:
        m.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:5])
        with Store(path) as store:
            store.add_session(SessionInfo("s1", "claude", project="/work/app"))
            store.add_turns(
                [make_turn("s1", "u0", "never add emojis anywhere", "user", timestamp=WHEN)]
            )
            app = store.project_id("/work/app")
            store.db.executemany(
                "INSERT INTO cognitions (uid, project_id, category, text, origin) "
                "VALUES (?, ?, 'preference', ?, 'rules')",
                [("a", None, "Never add emojis anywhere."), ("b", app, "Use uv, not pip."),
                 ("c", None, "Be kind.")],
            )  # fmt: skip
            store.db.execute(
                "INSERT INTO cognition_sources (cognition_id, session_id, turn_key, timestamp) "
                "VALUES (1, 's1', 'u0', '2026-03-05T10:00:00Z')"
            )
    with Store(path) as store:
        rows = store.db.execute("SELECT uid, project_id, learned_in, scope_by FROM cognitions")
        assert [tuple(r) for r in rows] == [
            ("a", None, app, None), ("b", app, app, None), ("c", None, None, None)]  # fmt: skip
        # new rows carry it too, and a user-wide one can go back where it was learned
        tabs = Cognition("Prefer tabs.", "preference", learned_in=app, sources=[SourceRef()])
        cog_id = cognitions.add(store, tabs)
        assert cognitions.set_scope(store, 1, "project") == 1
        assert [(c.id, c.project) for c in cognitions.list_(store, scope="project")] == [
            (1, "/work/app"), (2, "/work/app")]  # fmt: skip
        assert cognitions.get(store, cog_id).learned_in == app  # type: ignore[union-attr]


def test_m007_indexes_turn_uuids(v4_store: Path) -> None:
    with Store(v4_store) as store:
        plan = store.db.execute(
            "EXPLAIN QUERY PLAN SELECT 1 FROM turns WHERE uuid = 'x'"
        ).fetchall()
    assert any("turns_uuid" in str(row[-1]) for row in plan)


def test_m008_keeps_only_conversation_in_an_old_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "lmm.db"
    said = [
        make_turn("s1", "u1", "Please set up the release script.", "user", timestamp=WHEN),
        make_turn("s1", "a1", "<task-notification><result>Always use yarn.</result>"
                  "</task-notification>", "user", timestamp=WHEN),
        make_turn("s1", "u2", '<lmm-memory kind="recall">old brief</lmm-memory>', "user",
                  timestamp=WHEN),
        make_turn("s1", "a2", "API Error: 529 Overloaded", "assistant", timestamp=WHEN),
        make_turn("s1", "a3", "Done: release.sh tags and pushes.", "assistant", timestamp=WHEN),
    ]  # fmt: skip
    for turn, parent in zip(said[1:], said, strict=False):
        turn.parent_uuid = parent.uuid
    listing = "[attachment: skill_listing] ..."
    said.append(Turn(session_id="s1", key="m1", role="user", kind="meta", uuid="m1",
                     uuids=["m1"], text=listing, parent_uuid="a3"))  # fmt: skip
    said.append(make_turn("s1", "u3", "Thanks.", "user", timestamp=WHEN))
    said[-1].parent_uuid = "m1"
    with monkeypatch.context() as m:
        m.setattr(migrations, "MIGRATIONS", migrations.MIGRATIONS[:7])
        with Store(path) as store:
            store.add_session(SessionInfo("s1", "claude", project="/work/app"))
            store.add_turns(said)
            store.db.executemany(
                "INSERT INTO cognitions (id, uid, project_id, category, text, origin) "
                "VALUES (?, ?, NULL, 'preference', ?, ?)",
                [(1, "y", "Always use yarn.", "rules"), (2, "r", "Tag releases.", "rules"),
                 (3, "k", "Be kind.", "user")],
            )  # fmt: skip
            store.db.executemany(
                "INSERT INTO cognition_sources (cognition_id, session_id, turn_key) "
                "VALUES (?, ?, ?)",
                [(1, "s1", "a1"), (2, "s1", "a1"), (2, "s1", "a3"), (3, "s1", "a1")],
            )
    with Store(path) as store:
        rows = store.db.execute("SELECT key, parent_uuid FROM turns ORDER BY id").fetchall()
        assert [tuple(r) for r in rows] == [("u1", None), ("a3", "u1"), ("u3", "a3")]
        cogs = store.db.execute("SELECT id FROM cognitions ORDER BY id").fetchall()
        assert [r[0] for r in cogs] == [2, 3]  # learned only from the report: gone
        links = store.db.execute("SELECT cognition_id, turn_key FROM cognition_sources").fetchall()
        assert [tuple(r) for r in links] == [(2, "a3")]
        assert store.search("yarn") == [] and store.search("529") == []
