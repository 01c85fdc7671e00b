"""The local memory store: one SQLite file (WAL, mode 0600), schema under numbered migrations."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sqlite3
import stat
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from lmm.errors import StoreError
from lmm.records import SessionInfo, Turn
from lmm.store import migrations
from lmm.text.redact import clip, redact, redact_cut

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 30_000
BULK_CACHE_KIB = 65_536  # page cache while ingesting (`Store.bulk`)
BULK_CHECKPOINT_PAGES = 10_000  # WAL pages between automatic checkpoints while ingesting
TOOL_INPUT_MAX = 4_000  # characters of a tool call's input kept in the tools column
TURN_HEAD, TURN_TAIL = 80_000, 20_000  # a longer turn keeps its head and tail (pasted dumps)


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) the SQLite file at `path`: WAL, busy timeout, mode 0600, in a
    folder only its owner can enter (see `_private_folder`)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    _private_folder(path.parent)
    if not path.exists():
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)
    try:
        db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        _set_wal(db)
        db.execute("PRAGMA synchronous = NORMAL")
    except sqlite3.DatabaseError as exc:
        raise StoreError(
            f"cannot open the store at {path}: {exc}. If the file is damaged, move it aside "
            "and run `lmm import` on your latest export, or `lmm ingest` again."
        ) from exc
    with contextlib.suppress(OSError):
        os.chmod(path, 0o600)
    db.row_factory = sqlite3.Row
    return db


def _private_folder(folder: Path) -> None:
    """The store's folder holds the transcripts: one that others can read or enter is made 0700
    with a warning when it is this user's own folder (not shared like /tmp, not the home folder);
    otherwise the warning says what to do."""
    try:
        st = folder.stat()
    except OSError:
        return
    if not st.st_mode & 0o077 or not hasattr(os, "getuid"):
        return
    mode = stat.S_IMODE(st.st_mode)
    if st.st_uid == os.getuid() and not st.st_mode & stat.S_ISVTX and folder != Path.home():
        with contextlib.suppress(OSError):
            os.chmod(folder, 0o700)
            log.warning("%s was open to other users (mode %o); made it 0700", folder, mode)
            return
    log.warning(
        "%s is open to other users (mode %o) and holds your transcripts: run `chmod 700 %s` "
        "or set LMM_HOME to a private folder",
        folder,
        mode,
        folder,
    )


def _set_wal(db: sqlite3.Connection) -> None:
    """Switch to WAL. SQLite answers a racing switch (several processes opening a new store at
    once) with an immediate 'database is locked' that skips the busy handler, so retry it."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if not ("locked" in str(exc) or "busy" in str(exc)) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def quote_fts(query: str) -> str:
    """Quote every word of user text so FTS5 reads it as plain terms, never as syntax."""
    words = [w for w in query.replace("\x00", " ").split() if w.strip()]
    return " ".join('"' + w.replace('"', '""') + '"' for w in words)


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


# The upsert merges a turn that arrives in pieces (an assistant response whose lines were split
# by an interleaved tool result, or by an incremental read) and ignores pieces already stored.
_PRESENT = "instr(turns.uuids, json_quote(excluded.uuid)) > 0"
_LONGER = "json_array_length(excluded.uuids) > json_array_length(turns.uuids)"


def _merge_text(col: str, sep: str = "char(10)") -> str:
    return (
        f"CASE WHEN {_PRESENT} THEN excluded.{col} "
        f"WHEN turns.{col} = '' THEN excluded.{col} WHEN excluded.{col} = '' THEN turns.{col} "
        f"ELSE turns.{col} || {sep} || excluded.{col} END"
    )


def _merge_json(col: str) -> str:
    return (
        f"CASE WHEN {_PRESENT} THEN excluded.{col} ELSE (SELECT json_group_array("
        "CASE WHEN type IN ('object', 'array') THEN json(value) ELSE value END) "
        f"FROM (SELECT value, type FROM json_each(turns.{col}) UNION ALL "
        f"SELECT value, type FROM json_each(excluded.{col}))) END"
    )


_TURN_COLUMNS = (
    "session_id, key, uuid, parent_uuid, uuids, message_id, role, kind, text, thinking, tools, "
    "timestamp, cwd, git_branch, project_id, source_id, line_no, is_sidechain, agent_id, "
    "parent_tool_use_id, dia_id, speaker, files, extra"
)
_INSERT_TURN = f"""
INSERT INTO turns ({_TURN_COLUMNS}) VALUES ({", ".join("?" * 24)})
ON CONFLICT (session_id, key) DO UPDATE SET
    text = {_merge_text("text")},
    thinking = {_merge_text("thinking")},
    tools = {_merge_json("tools")},
    uuids = {_merge_json("uuids")},
    files = {_merge_json("files")},
    agent_id = coalesce(turns.agent_id, excluded.agent_id),
    parent_tool_use_id = coalesce(turns.parent_tool_use_id, excluded.parent_tool_use_id)
WHERE NOT ({_PRESENT}) OR ({_LONGER})
"""


def _tools_json(turn: Turn) -> str:
    items: list[dict[str, Any]] = [
        {"type": "call", "id": c.id, "name": c.name, "input": redact_cut(c.input, TOOL_INPUT_MAX)}
        for c in turn.tool_calls
    ]
    items += [
        {"type": "result", "tool_use_id": r.tool_use_id, "is_error": r.is_error}
        for r in turn.tool_results
    ]
    return _json(items)


@dataclass(frozen=True)
class PreparedTurns:
    """Turn rows ready for the database: redacted and serialised, made by `prepare_turns` only.

    Pure data, so ingest workers can build them in other processes; the project column holds the
    turn's cwd until `Store.add_prepared` resolves it to an id.
    """

    rows: list[tuple[Any, ...]]
    links: list[tuple[str, str, str]]


def prepare_turns(turns: Iterable[Turn]) -> PreparedTurns:
    """Redact and serialise turns into rows (in `_TURN_COLUMNS` order)."""
    rows = []
    links = []
    for t in turns:
        uuid = t.uuid or t.key
        rows.append(
            (
                t.session_id,
                t.key,
                uuid,
                t.parent_uuid,
                _json(t.uuids or [uuid]),
                t.message_id,
                t.role,
                t.kind,
                redact(clip(t.text, TURN_HEAD, TURN_TAIL)),
                redact(clip(t.thinking, TURN_HEAD, TURN_TAIL)),
                _tools_json(t),
                t.timestamp,
                t.cwd,
                t.git_branch,
                t.cwd,  # project: resolved to an id by the writer
                None,  # source id: set by the writer
                t.line_no,
                int(t.is_sidechain),
                t.agent_id,
                t.parent_tool_use_id,
                t.dia_id,
                t.speaker,
                _json(t.files),
                _json({k: redact(v) for k, v in t.extra.items()}) if t.extra else "{}",
            )
        )
        if "agent_id" in t.extra and "tool_use_id" in t.extra:
            links.append((t.session_id, t.extra["agent_id"], t.extra["tool_use_id"]))
    return PreparedTurns(rows, links)


@dataclass
class KeywordHit:
    """One keyword-search result."""

    turn_id: int
    session_id: str
    role: str
    kind: str
    text: str
    timestamp: str | None
    project: str | None
    score: float
    snippet: str


class Store:
    """A connection to the store plus small caches of project and source ids."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = connect(path)
        try:
            migrations.apply(self.db)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot migrate the store at {path}: {exc}") from exc
        self._projects: dict[str, int] = {}
        self._deferring = False  # inside `bulk`: new turns are indexed by `commit`
        self._unindexed_after: int | None = None  # turns with a larger id await indexing
        self.turns_inserted = 0  # new turn rows this connection wrote (merges not counted)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def in_transaction(self) -> bool:
        return self.db.in_transaction

    def begin(self) -> None:
        """BEGIN IMMEDIATE: a transaction that holds the write lock from its start."""
        self.db.execute("BEGIN IMMEDIATE")

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT; rolls back on any error so nothing half-written stays."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.rollback()
            raise
        self.commit()

    def commit(self) -> None:
        """COMMIT the open transaction, first indexing the turns `bulk` left for it."""
        if self.db.in_transaction:
            self.index_pending()
            self.db.execute("COMMIT")

    def rollback(self) -> None:
        if self.db.in_transaction:
            self.db.execute("ROLLBACK")
            self._unindexed_after = None
            self._projects.clear()  # ids handed out inside the transaction are gone

    @contextlib.contextmanager
    def bulk(self) -> Iterator[None]:
        """A long run of writes (ingest). New turns are indexed once per transaction, by `commit`
        (see migrations.M005_DEFERRED_INDEX), and the connection gets a bigger page cache, a WAL
        checkpoint every ~40 MB instead of every ~4 MB (the index and FTS5 pages that many commits
        touch are copied into the database once) and, when it holds no temporary objects yet,
        temporary tables and statement journals in memory. Durability is unchanged (WAL,
        synchronous=NORMAL). Commit with `commit`; a transaction still open at the end is rolled
        back (its turns are not indexed). Settings are restored after it."""
        db = self.db
        if db.in_transaction:
            raise StoreError("Store.bulk() starts outside a transaction; commit or roll back first")
        cache = int(db.execute("PRAGMA cache_size").fetchone()[0])
        checkpoint = int(db.execute("PRAGMA wal_autocheckpoint").fetchone()[0])
        temp_store = int(db.execute("PRAGMA temp_store").fetchone()[0])
        # a new temp_store drops every temporary object: only switch on a connection without any
        switch_temp = db.execute("SELECT count(*) FROM sqlite_temp_master").fetchone()[0] == 0
        db.execute(f"PRAGMA cache_size = {-BULK_CACHE_KIB}")
        db.execute(f"PRAGMA wal_autocheckpoint = {BULK_CHECKPOINT_PAGES}")
        if switch_temp:
            db.execute("PRAGMA temp_store = MEMORY")
        for sql in migrations.BULK_INDEX_SETUP:
            db.execute(sql)
        self._deferring = True
        try:
            yield
        finally:
            self._deferring = False
            self.rollback()
            self.index_pending()  # turns a bare COMMIT let through are indexed all the same
            for sql in migrations.BULK_INDEX_TEARDOWN:
                db.execute(sql)
            db.execute(f"PRAGMA cache_size = {cache}")
            db.execute(f"PRAGMA wal_autocheckpoint = {checkpoint}")
            if switch_temp:
                db.execute(f"PRAGMA temp_store = {temp_store}")

    # ---- projects and sessions

    def project_id(self, path: str) -> int:
        """The id of the project at `path` (a full directory path), created on first use."""
        if (pid := self._projects.get(path)) is not None:
            return pid
        name = path.rstrip("/").rsplit("/", 1)[-1] or path
        self.db.execute("INSERT OR IGNORE INTO projects (path, name) VALUES (?, ?)", (path, name))
        pid = int(self.db.execute("SELECT id FROM projects WHERE path = ?", (path,)).fetchone()[0])
        self._projects[path] = pid
        return pid

    def add_session(self, info: SessionInfo) -> None:
        pid = self.project_id(info.project) if info.project else None
        extra = {k: redact(v) for k, v in info.extra.items()}
        if info.agent_id:
            extra["agent_id"] = info.agent_id
        if info.parent_tool_use_id:
            extra["parent_tool_use_id"] = info.parent_tool_use_id
        self.db.execute(
            """INSERT INTO sessions (id, project_id, source, title, parent_session_id, extra)
            VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (id) DO UPDATE SET
                project_id = coalesce(sessions.project_id, excluded.project_id),
                title = coalesce(excluded.title, sessions.title),
                parent_session_id = coalesce(sessions.parent_session_id, excluded.parent_session_id)
            """,
            (
                info.session_id,
                pid,
                info.source,
                redact(info.title) if info.title else None,
                info.parent_session_id,
                _json(extra),
            ),
        )

    def copied_uuids(self, rows: list[tuple[Any, ...]]) -> set[str]:
        """The uuids of prepared turn rows that are already stored under another session: a
        `--fork-session` (or an old CLI's resume) copies the records it continues from, uuids
        included; the first session stored keeps them."""
        by_session: dict[str, list[str]] = {}
        for row in rows:
            session_id, uuid, role = row[0], row[2], row[6]
            if uuid and role != "summary":
                by_session.setdefault(session_id, []).append(uuid)
        copied: set[str] = set()
        for session_id, uuids in by_session.items():
            for at in range(0, len(uuids), 500):
                batch = uuids[at : at + 500]
                marks = ", ".join("?" * len(batch))
                copied.update(
                    r[0]
                    for r in self.db.execute(
                        f"SELECT uuid FROM turns WHERE uuid IN ({marks}) AND session_id != ?",
                        (*batch, session_id),
                    )
                )
        return copied

    def has_project(self, path: str) -> bool:
        """Whether a project at `path` is stored (`project_id` creates one)."""
        return (
            self.db.execute("SELECT 1 FROM projects WHERE path = ?", (path,)).fetchone() is not None
        )

    def project_path(self, project_id: int | None) -> str | None:
        """The path of project `project_id` (None: no id, or no such project)."""
        if project_id is None:
            return None
        row = self.db.execute("SELECT path FROM projects WHERE id = ?", (project_id,)).fetchone()
        return None if row is None else str(row[0])

    def has_session(self, session_id: str) -> bool:
        return (
            self.db.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone()
            is not None
        )

    def session_with_project(self, session_id: str) -> sqlite3.Row | None:
        """The session's `project_id` and its project's `path` (None: no such session)."""
        row: sqlite3.Row | None = self.db.execute(
            "SELECT s.project_id, p.path FROM sessions s "
            "LEFT JOIN projects p ON p.id = s.project_id WHERE s.id = ?",
            (session_id,),
        ).fetchone()
        return row

    def unrefreshed_sessions(self) -> set[str]:
        """Sessions with turns but no first timestamp: an earlier, killed ingest wrote their turns
        and never got to `refresh_sessions`."""
        return {r[0] for r in self.db.execute(
            "SELECT id FROM sessions s WHERE started_at IS NULL "
            "AND EXISTS (SELECT 1 FROM turns t WHERE t.session_id = s.id)"
        )}  # fmt: skip

    def session_project(self, session_id: str) -> int | None:
        row = self.db.execute(
            "SELECT project_id FROM sessions WHERE id = ?", (session_id,)
        ).fetchone()
        return None if row is None else row[0]

    def refresh_sessions(self, session_ids: Iterable[str]) -> None:
        """Recompute each session's first and last timestamps from its turns."""
        self.db.executemany(
            """UPDATE sessions SET
                started_at = (SELECT min(timestamp) FROM turns WHERE session_id = sessions.id),
                ended_at = (SELECT max(timestamp) FROM turns WHERE session_id = sessions.id)
            WHERE id = ?""",
            [(s,) for s in session_ids],
        )

    # ---- turns

    def add_turns(self, turns: Iterable[Turn], source_id: int | None = None) -> int:
        """Insert or merge turns (redacted). Returns how many rows were inserted or changed."""
        return self.add_prepared(prepare_turns(turns), source_id)

    def add_prepared(self, prepared: PreparedTurns, source_id: int | None = None) -> int:
        """Write rows made by `prepare_turns` (which redacted them), resolving project ids."""
        rows = []
        for row in prepared.rows:
            cwd, session_id = row[14], row[0]
            pid = self.project_id(cwd) if cwd else self.session_project(session_id)
            rows.append((*row[:14], pid, source_id, *row[16:]))
        before = self.db.total_changes
        # A key seen twice in one batch is a merge into a row this batch inserted: index the
        # rows so far first, so the update trigger always finds indexed content to replace.
        start, seen = 0, set[tuple[str, str]]()
        for i, row in enumerate(rows):
            key = (row[0], row[1])
            if key in seen:
                self._insert_indexed(rows[start:i])
                start, seen = i, set()
            seen.add(key)
        self._insert_indexed(rows[start:])
        changed = self.db.total_changes - before
        if prepared.links:
            self.db.executemany(
                "INSERT OR IGNORE INTO agent_links VALUES (?, ?, ?)", prepared.links
            )
        return changed

    def _insert_indexed(self, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        last = self.db.execute("SELECT coalesce(max(id), 0) FROM turns").fetchone()[0]
        deferred = self._deferring and self.db.in_transaction  # autocommit: nothing to wait for
        self.db.executemany(_INSERT_TURN, rows)
        # rows with a larger id are this call's (the write lock is held): new rows, not merges
        self.turns_inserted += self.db.execute(
            "SELECT count(*) FROM turns WHERE id > ?", (last,)
        ).fetchone()[0]
        if not deferred:
            self.index_new_turns(last)
            return
        # what index_new_turns would read now and could not read later: the previous turns' text
        self.db.execute(migrations.TURN_KEY_CONTEXTS_FOR_NEW, (last,))
        if self._unindexed_after is None:
            self._unindexed_after = last

    def index_pending(self) -> None:
        """Index the turns that `bulk` left for the end of the transaction (no-op outside it)."""
        if self._unindexed_after is None:
            return
        self.db.execute(migrations.TURN_TEXT_FOR_NEW, (self._unindexed_after,))
        self.db.execute(migrations.TURN_KEYS_FROM_CONTEXTS)
        self.db.execute("DELETE FROM temp.turn_key_context")
        self._unindexed_after = None

    def index_new_turns(self, after_id: int) -> None:
        """Add turns with id > `after_id` to the FTS index (no trigger indexes new rows)."""
        self.db.execute(migrations.TURN_TEXT_FOR_NEW, (after_id,))
        self.db.execute(migrations.TURN_KEYS_FOR_NEW, (after_id,))

    def link_subagents(self) -> int:
        """Hang sub-agent turns under the parent tool call that started them."""
        cur = self.db.execute(
            """UPDATE turns SET parent_tool_use_id = (
                SELECT tool_use_id FROM agent_links l
                WHERE l.session_id = turns.session_id AND l.agent_id = turns.agent_id)
            WHERE agent_id IS NOT NULL AND parent_tool_use_id IS NULL AND EXISTS (
                SELECT 1 FROM agent_links l
                WHERE l.session_id = turns.session_id AND l.agent_id = turns.agent_id)"""
        )
        return cur.rowcount

    def session_turns(self, session_id: str) -> list[Turn]:
        """A session's turns in conversation order (the uuid/parentUuid graph)."""
        from lmm.conversation import conversation_order

        rows = self.session_turn_rows(session_id)
        return conversation_order([row_to_turn(r) for r in rows])

    def session_turn_rows(self, session_id: str) -> list[sqlite3.Row]:
        """A session's turn rows in file order (`row_to_turn` reads one)."""
        return self.db.execute(
            "SELECT * FROM turns WHERE session_id = ? ORDER BY source_id, line_no, id",
            (session_id,),
        ).fetchall()

    def turn_count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM turns").fetchone()[0])

    def session_turn_count(self, session_id: str) -> int:
        row = self.db.execute("SELECT count(*) FROM turns WHERE session_id = ?", (session_id,))
        return int(row.fetchone()[0])

    def newest_turn_id(self, session_id: str) -> int | None:
        """The largest turn row id of the session (None: it has no turns)."""
        newest: int | None = self.db.execute(
            "SELECT max(id) FROM turns WHERE session_id = ?", (session_id,)
        ).fetchone()[0]
        return newest

    # ---- sources (incremental ingest bookkeeping)

    def source(self, path: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM sources WHERE path = ?", (path,)).fetchone()

    def source_sizes(self) -> dict[str, tuple[int, int]]:
        """Each source path's size and mtime (ns) when it was last read."""
        return {r[0]: (r[1], r[2]) for r in self.db.execute(
            "SELECT path, size, mtime_ns FROM sources")}  # fmt: skip

    def upsert_source(self, path: str, fmt: str, **fields: Any) -> int:
        self.db.execute(
            "INSERT INTO sources (path, format) VALUES (?, ?) ON CONFLICT (path) DO NOTHING",
            (path, fmt),
        )
        if fields:
            sets = ", ".join(f"{k} = ?" for k in fields)
            self.db.execute(
                f"UPDATE sources SET {sets}, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') "
                "WHERE path = ?",
                (*fields.values(), path),
            )
        return int(self.db.execute("SELECT id FROM sources WHERE path = ?", (path,)).fetchone()[0])

    def add_issues(self, source_id: int, issues: Iterable[tuple[int, str]]) -> None:
        self.db.executemany(
            "INSERT OR REPLACE INTO parse_issues (source_id, line_no, reason) VALUES (?, ?, ?)",
            [(source_id, line, reason[:500]) for line, reason in issues],
        )

    # ---- reading

    def stats(self) -> dict[str, Any]:
        one = lambda sql: self.db.execute(sql).fetchone()[0]  # noqa: E731
        return {
            "projects": one("SELECT count(*) FROM projects"),
            "sessions": one("SELECT count(*) FROM sessions"),
            "turns": one("SELECT count(*) FROM turns"),
            "subagents": one(
                "SELECT count(*) FROM (SELECT DISTINCT session_id, agent_id FROM turns "
                "WHERE agent_id IS NOT NULL)"
            ),
            "sources": one("SELECT count(*) FROM sources"),
            "memories": one("SELECT count(*) FROM cognitions WHERE status = 'active'"),
            "memories_replaced": one("SELECT count(*) FROM cognitions WHERE status = 'superseded'"),
            "vectors": one("SELECT count(*) FROM vectors"),
            "embedders": ", ".join(r[0] for r in self.db.execute("SELECT model FROM embedders"))
            or None,
            "malformed_lines": one("SELECT count(*) FROM parse_issues"),
            "first_turn": one("SELECT min(timestamp) FROM turns"),
            "last_turn": one("SELECT max(timestamp) FROM turns"),
            "schema_version": one("PRAGMA user_version"),
            "db_bytes": self.path.stat().st_size if self.path.exists() else 0,
            "path": str(self.path),
        }

    def search(
        self, query: str, *, project: str | None = None, limit: int = 10
    ) -> list[KeywordHit]:
        """Keyword search (FTS5 BM25) over stored turns, optionally within a project's path."""
        match = quote_fts(query)
        if not match:
            return []
        sql = """
            SELECT t.id, t.session_id, t.role, t.kind, t.text, t.timestamp, p.path AS project,
                   bm25(turns_fts) AS score,
                   snippet(turns_fts, 0, char(2), char(3), ' … ', 16) AS snippet
            FROM turns_fts JOIN turns t ON t.id = turns_fts.rowid
            LEFT JOIN projects p ON p.id = t.project_id
            WHERE turns_fts MATCH ?"""
        params: list[Any] = [match]
        if project:
            sql += " AND (p.path = ? OR p.path LIKE ? ESCAPE '\\')"
            params += [project.rstrip("/"), like_prefix(project.rstrip("/")) + "/%"]
        sql += " ORDER BY score LIMIT ?"
        params.append(limit * 4)  # room for the repeats left out below
        hits: list[KeywordHit] = []
        seen: set[str] = set()
        for r in self.db.execute(sql, params):
            snippet = clean_snippet(r["snippet"])
            said = " ".join(snippet.replace(MATCH_START, "").replace(MATCH_END, "").split())
            if said in seen:  # the same words in another turn (a repeated tool output)
                continue
            seen.add(said)
            hits.append(KeywordHit(
                turn_id=r["id"], session_id=r["session_id"], role=r["role"], kind=r["kind"],
                text=r["text"], timestamp=r["timestamp"], project=r["project"],
                score=-float(r["score"]), snippet=snippet,
            ))  # fmt: skip
            if len(hits) == limit:
                break
        return hits


MATCH_START, MATCH_END = "\x02", "\x03"  # around matched words in `KeywordHit.snippet`
_TERMINAL = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
_CONTROL = re.compile(r"[\x00\x01\x04-\x08\x0b-\x1f\x7f]")


def clean_snippet(text: str) -> str:
    """A snippet without terminal escapes or control characters (a transcript's tool output
    holds colours and cursor moves), on one line; the match markers stay."""
    text = _CONTROL.sub(" ", _TERMINAL.sub("", text.replace("\n", " ").replace("\t", " ")))
    return " ".join(text.split(" ")).strip()


def like_prefix(text: str) -> str:
    """`text` with LIKE's wildcards escaped (ESCAPE '\\'), to match it as a literal prefix."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def row_to_turn(r: sqlite3.Row) -> Turn:
    from lmm.records import ToolCall, ToolResult

    tools = orjson.loads(r["tools"])
    return Turn(
        session_id=r["session_id"],
        key=r["key"],
        role=r["role"],
        kind=r["kind"],
        text=r["text"],
        uuid=r["uuid"],
        parent_uuid=r["parent_uuid"],
        uuids=orjson.loads(r["uuids"]),
        message_id=r["message_id"],
        thinking=r["thinking"],
        tool_calls=[ToolCall(t["id"], t["name"], t["input"]) for t in tools if t["type"] == "call"],
        tool_results=[
            ToolResult(t["tool_use_id"], "", t["is_error"]) for t in tools if t["type"] == "result"
        ],
        timestamp=r["timestamp"],
        cwd=r["cwd"],
        git_branch=r["git_branch"],
        is_sidechain=bool(r["is_sidechain"]),
        agent_id=r["agent_id"],
        parent_tool_use_id=r["parent_tool_use_id"],
        line_no=r["line_no"],
        dia_id=r["dia_id"],
        speaker=r["speaker"],
        files=orjson.loads(r["files"]),
        extra=orjson.loads(r["extra"]),
    )


def open_store(path: Path | None = None) -> Store:
    """The store at `path`, or at `$LMM_HOME/lmm.db`."""
    from lmm import paths

    return Store(path or paths.db_path())
