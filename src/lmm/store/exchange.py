"""Export and import the store as JSONL: a lossless round trip, so a memory can move machines."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from lmm import __version__
from lmm.errors import InputError
from lmm.store.cognitions import safe_keywords
from lmm.store.db import Store
from lmm.text.redact import redact

FORMAT = "lmm-export"
VERSION = 1

# Tables in dependency order, with the columns that travel (integer ids are re-derived on import).
_SESSION_COLS = ["id", "source", "title", "parent_session_id", "started_at", "ended_at", "extra"]
_TURN_COLS = [
    "session_id", "key", "uuid", "parent_uuid", "uuids", "message_id", "role", "kind", "text",
    "thinking", "tools", "timestamp", "cwd", "git_branch", "line_no", "is_sidechain", "agent_id",
    "parent_tool_use_id", "dia_id", "speaker", "files", "extra",
]  # fmt: skip


def _rows(store: Store) -> Iterator[dict[str, Any]]:
    db = store.db
    for r in db.execute("SELECT path, name, created_at FROM projects ORDER BY id"):
        yield {"table": "projects", **dict(r)}
    for r in db.execute(
        "SELECT s.path, s.format, s.size, s.mtime_ns, s.head_hash, s.offset, s.line_no, "
        "s.malformed, s.skipped FROM sources s ORDER BY id"
    ):
        yield {"table": "sources", **dict(r)}
    cols = ", ".join(f"s.{c}" for c in _SESSION_COLS)
    for r in db.execute(
        f"SELECT {cols}, p.path AS project FROM sessions s "
        "LEFT JOIN projects p ON p.id = s.project_id ORDER BY s.rowid"
    ):
        yield {"table": "sessions", **dict(r)}
    cols = ", ".join(f"t.{c}" for c in _TURN_COLS)
    for r in db.execute(
        f"SELECT {cols}, p.path AS project, src.path AS source FROM turns t "
        "LEFT JOIN projects p ON p.id = t.project_id LEFT JOIN sources src ON src.id = t.source_id "
        "ORDER BY t.id"
    ):
        yield {"table": "turns", **dict(r)}
    for r in db.execute("SELECT * FROM agent_links ORDER BY rowid"):
        yield {"table": "agent_links", **dict(r)}
    for r in db.execute(
        "SELECT src.path AS source, i.line_no, i.reason FROM parse_issues i "
        "JOIN sources src ON src.id = i.source_id ORDER BY i.id"
    ):
        yield {"table": "parse_issues", **dict(r)}
    yield from _extra_rows(db)


# Derived tables, rebuilt rather than carried: vectors by `lmm embed`, the rest by their owners.
EXPORT_SKIP = {"vectors", "embedders", "extraction_state"}
_CORE = {"projects", "sources", "sessions", "turns", "agent_links", "parse_issues"}


def _extra_tables(db: sqlite3.Connection) -> list[str]:
    """Plain tables added by later migrations: FTS tables and their shadow tables excluded."""
    rows = db.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "ORDER BY rowid"
    ).fetchall()
    virtual = [r[0] for r in rows if (r[1] or "").upper().startswith("CREATE VIRTUAL")]
    return [
        r[0]
        for r in rows
        if r[0] not in _CORE
        and r[0] not in EXPORT_SKIP
        and r[0] not in virtual
        and not any(r[0].startswith(v + "_") for v in virtual)
    ]


def _extra_rows(db: sqlite3.Connection) -> Iterator[dict[str, Any]]:
    """Rows of later tables, with integer ids replaced by natural keys (project path, uid)."""
    projects = {r[0]: r[1] for r in db.execute("SELECT id, path FROM projects")}
    uids = {r[0]: r[1] for r in db.execute("SELECT id, uid FROM cognitions")}
    for table in _extra_tables(db):
        for r in db.execute(f"SELECT * FROM {table} ORDER BY rowid"):
            row = {k: _plain(r[k]) for k in r.keys()}  # noqa: SIM118
            if "project_id" in row:
                row["project"] = projects.get(row.pop("project_id"))
            if table == "cognitions":
                row.pop("id")
                row["superseded_by"] = uids.get(row["superseded_by"])
                if "learned_in" in row:  # a project id too (migration M006)
                    row["learned_in"] = projects.get(row["learned_in"])
            elif table == "cognition_sources":
                row["cognition_id"] = uids.get(row["cognition_id"])
            yield {"table": table, **row}


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"$bytes": value.hex()}
    return value


def export_jsonl(store: Store, out: IO[bytes]) -> int:
    """Write the whole store to `out`. Returns the number of rows written."""
    header = {"format": FORMAT, "version": VERSION, "lmm": __version__,
              "schema_version": store.db.execute("PRAGMA user_version").fetchone()[0]}  # fmt: skip
    out.write(orjson.dumps(header) + b"\n")
    n = 0
    for row in _rows(store):
        out.write(orjson.dumps(row) + b"\n")
        n += 1
    return n


MAX_LINE = 256 << 20  # one row of an export; a longer line is not one lmm wrote


def _read_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        f = path.open("rb")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    with f:
        if not path.is_file():
            raise InputError(f"{path} is not a regular file; pass an `lmm export` file")
        header = _loads(f.readline(MAX_LINE))
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise InputError(
                f"{path} is not an lmm export (its first line is not an {FORMAT} header); "
                "to read Claude Code transcripts or chat logs use `lmm ingest` instead"
            )
        version = header.get("version", 0)
        if not isinstance(version, int) or version < 1:
            raise InputError(f"{path}: the header's version is not a number lmm knows")
        if version > VERSION:
            raise InputError(f"{path} was written by a newer lmm; upgrade lmm to import it")
        line_no = 1
        while line := f.readline(MAX_LINE + 1):
            line_no += 1
            if len(line) > MAX_LINE:
                raise InputError(
                    f"{path}:{line_no}: a line longer than {MAX_LINE >> 20} MiB is not an lmm "
                    "export row; nothing was imported"
                )
            if not line.strip():
                continue
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise InputError(
                    f"{path}:{line_no}: not valid JSON ({exc}); nothing was imported"
                ) from exc
            if not isinstance(row, dict) or not isinstance(row.get("table"), str):
                raise InputError(f"{path}:{line_no}: a row without a 'table'; nothing was imported")
            yield line_no, row


def _loads(line: bytes) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        return None


# The keys each core table's rows may carry: what `_rows` writes, nothing else (a key becomes a
# column name in SQL, so only known names pass).
_CORE_KEYS = {
    "projects": {"path", "name", "created_at"},
    "sources": {"path", "format", "size", "mtime_ns", "head_hash", "offset", "line_no",
                "malformed", "skipped"},
    "sessions": {*_SESSION_COLS, "project"},
    "turns": {*_TURN_COLS, "project", "source"},
    "agent_links": {"session_id", "agent_id", "tool_use_id"},
    "parse_issues": {"source", "line_no", "reason"},
}  # fmt: skip
_INT64 = 1 << 63


def _allowed_keys(db: sqlite3.Connection) -> dict[str, set[str]]:
    """Per table, the keys its rows may carry: later tables' own columns as `_extra_rows`
    writes them (`project` for `project_id`, no integer `id` for cognitions)."""
    allowed = dict(_CORE_KEYS)
    for table in _extra_tables(db):
        cols = {r[1] for r in db.execute("SELECT * FROM pragma_table_info(?)", (table,))}
        if "project_id" in cols:
            cols = (cols - {"project_id"}) | {"project"}
        if table == "cognitions":
            cols.discard("id")
        allowed[table] = cols
    return allowed


def _check_row(table: str, row: dict[str, Any], allowed: dict[str, set[str]]) -> str | None:
    """Why `row` cannot be imported, or None: an unknown table or key, a value not a scalar."""
    keys = allowed.get(table)
    if keys is None:
        return f"unknown table {table!r}"
    unknown = sorted(row.keys() - keys)
    if unknown:
        return f"unknown column {unknown[0]!r} for table {table!r}"
    for k, v in row.items():
        if isinstance(v, dict) and table not in _CORE_KEYS and v.keys() == {"$bytes"}:
            v = v["$bytes"]
            if not isinstance(v, str) or len(v) % 2 or not all(c in _HEX for c in v):
                return f"{k!r} is not hex bytes"
        elif isinstance(v, int) and not -_INT64 <= v < _INT64:
            return f"{k!r} is out of range for an integer column"
        elif v is not None and not isinstance(v, str | int | float):
            return f"{k!r} is a {type(v).__name__}, not text or a number"
        if k in ("project", "source") and v is not None and not isinstance(v, str):
            return f"{k!r} is not a path"
    return None


_HEX = frozenset("0123456789abcdefABCDEF")


def import_jsonl(store: Store, path: Path) -> dict[str, int]:
    """Merge an export into `store` in one transaction (all or nothing). Returns rows per table.

    Raises InputError, with the file and line, for anything that is not a row lmm wrote: an
    unknown table or column, a nested value, a number out of range, a malformed line."""
    counts: dict[str, int] = {}
    db = store.db
    extra = set(_extra_tables(db))  # once, not per row
    allowed = _allowed_keys(db)
    pending: list[tuple[str, str]] = []  # (uid, uid of the row superseding it)
    with store.transaction():
        last_turn = db.execute("SELECT coalesce(max(id), 0) FROM turns").fetchone()[0]
        for line_no, row in _read_lines(path):
            table = row.pop("table")
            problem = _check_row(table, row, allowed)
            if problem is not None:
                raise InputError(f"{path}:{line_no}: {problem}; nothing was imported")
            _redact_row(table, row)
            try:
                _import_row(store, table, row, extra, pending)
            except (sqlite3.Error, KeyError, TypeError, ValueError) as exc:
                raise InputError(
                    f"{path}:{line_no}: cannot import this {table} row ({exc}); "
                    "nothing was imported"
                ) from exc
            counts[table] = counts.get(table, 0) + 1
        _link_cognitions(store, pending)
        store.index_new_turns(last_turn)
        db.execute("INSERT INTO turns_fts(turns_fts) VALUES ('integrity-check')")
    return counts


def _redact_row(table: str, row: dict[str, Any]) -> None:
    """Redact every string of `row` in place. A cognition's keywords are checked against its
    unredacted text and subject too: a lowercased piece of a secret does not look like one."""
    if table == "cognitions" and isinstance(row.get("keywords"), str):
        try:
            keywords = orjson.loads(row["keywords"])
        except orjson.JSONDecodeError:
            keywords = None
        if isinstance(keywords, list) and all(isinstance(k, str) for k in keywords):
            origin = f"{row.get('text') or ''}\n{row.get('subject') or ''}"
            row["keywords"] = orjson.dumps(safe_keywords(origin, keywords)).decode()
    for k, v in row.items():
        if isinstance(v, str):
            row[k] = redact(v)


def _source_id(store: Store, path: str | None) -> int | None:
    if path is None:
        return None
    row = store.db.execute("SELECT id FROM sources WHERE path = ?", (path,)).fetchone()
    return None if row is None else int(row[0])


def _insert(db: sqlite3.Connection, table: str, row: dict[str, Any]) -> None:
    cols = list(row)
    marks = ", ".join("?" * len(cols))
    db.execute(
        f"INSERT OR IGNORE INTO {table} ({', '.join(map(_quoted, cols))}) VALUES ({marks})",
        [row[c] for c in cols],
    )


def _import_row(
    store: Store,
    table: str,
    row: dict[str, Any],
    extra: set[str],
    pending: list[tuple[str, str]],
) -> None:
    db = store.db
    if table == "projects":
        db.execute(
            "INSERT OR IGNORE INTO projects (path, name, created_at) VALUES (?, ?, ?)",
            (row["path"], row["name"], row["created_at"]),
        )
    elif table == "sources":
        _insert(db, "sources", row)
    elif table == "sessions":
        project = row.pop("project")
        row["project_id"] = store.project_id(project) if project else None
        _insert(db, "sessions", row)
    elif table == "turns":
        project, source = row.pop("project"), row.pop("source")
        row["project_id"] = store.project_id(project) if project else None
        row["source_id"] = _source_id(store, source)
        _insert(db, "turns", row)
    elif table == "agent_links":
        db.execute(
            "INSERT OR IGNORE INTO agent_links VALUES (?, ?, ?)",
            (row["session_id"], row["agent_id"], row["tool_use_id"]),
        )
    elif table == "parse_issues":
        sid = _source_id(store, row["source"])
        if sid is not None:
            db.execute(
                "INSERT OR IGNORE INTO parse_issues (source_id, line_no, reason) VALUES (?, ?, ?)",
                (sid, row["line_no"], row["reason"]),
            )
    else:
        _import_extra_row(store, table, row, extra, pending)


def _import_extra_row(
    store: Store,
    table: str,
    row: dict[str, Any],
    extra: set[str],
    pending: list[tuple[str, str]],
) -> None:
    """Rows of later tables, natural keys mapped back to this store's ids; idempotent."""
    if table not in extra:
        raise KeyError(f"unknown table {table!r}")
    values: dict[str, Any] = {
        k: bytes.fromhex(v["$bytes"]) if isinstance(v, dict) and "$bytes" in v else v
        for k, v in row.items()
    }
    if "project" in values:
        project = values.pop("project")
        values["project_id"] = store.project_id(project) if project else None
    if table == "cognitions":
        if values.get("learned_in") is not None:
            values["learned_in"] = store.project_id(values["learned_in"])
        superseded_by = values.pop("superseded_by", None)
        _insert(store.db, table, values)
        if superseded_by:  # may point at a row further down: resolved by `_link_cognitions`
            pending.append((values["uid"], superseded_by))
        return
    if table == "cognition_sources":
        values["cognition_id"] = _cognition_id(store, values["cognition_id"])
    _insert_absent(store.db, table, values)


def _insert_absent(db: sqlite3.Connection, table: str, row: dict[str, Any]) -> None:
    """Insert unless an equal row exists (NULLs compare equal here, unlike in UNIQUE keys)."""
    cols = list(row)
    same = " AND ".join(f"{_quoted(c)} IS ?" for c in cols)
    values = [row[c] for c in cols]
    db.execute(
        f"INSERT OR IGNORE INTO {table} ({', '.join(map(_quoted, cols))}) "
        f"SELECT {', '.join('?' * len(cols))} "
        f"WHERE NOT EXISTS (SELECT 1 FROM {table} WHERE {same})",
        values + values,
    )


def _quoted(column: str) -> str:
    """A column name as an SQL identifier (names were checked against the schema already)."""
    return '"' + column.replace('"', '""') + '"'


def _cognition_id(store: Store, uid: str | None) -> int | None:
    if uid is None:
        return None
    row = store.db.execute("SELECT id FROM cognitions WHERE uid = ?", (uid,)).fetchone()
    return None if row is None else int(row[0])


def _link_cognitions(store: Store, pending: list[tuple[str, str]]) -> None:
    for uid, newer in pending:
        store.db.execute(
            "UPDATE cognitions SET superseded_by = ? WHERE uid = ? AND superseded_by IS NULL",
            (_cognition_id(store, newer), uid),
        )
