"""Numbered schema migrations. The store applies the ones it has not yet applied, in order."""

from __future__ import annotations

import sqlite3

from lmm.errors import StoreError

# Each migration is one SQL script, applied inside one transaction.
M001_INITIAL = """
CREATE TABLE projects (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,      -- full path of the project directory (cwd)
    name TEXT NOT NULL,             -- last path component, for display only
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE sources (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,      -- the file a reader consumed
    format TEXT NOT NULL,           -- claude | generic | locomo | import
    size INTEGER NOT NULL DEFAULT 0,
    mtime_ns INTEGER NOT NULL DEFAULT 0,
    head_hash TEXT,                 -- hash of the first bytes: detects rewritten files
    offset INTEGER NOT NULL DEFAULT 0,  -- bytes consumed so far (a line boundary)
    line_no INTEGER NOT NULL DEFAULT 0,
    malformed INTEGER NOT NULL DEFAULT 0,
    skipped TEXT,                   -- why the whole file was dropped (warmup probe)
    updated_at TEXT
);

CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    project_id INTEGER REFERENCES projects(id),
    source TEXT NOT NULL,           -- claude | generic | locomo
    title TEXT,
    parent_session_id TEXT,
    started_at TEXT,
    ended_at TEXT,
    extra TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX sessions_project ON sessions(project_id);

CREATE TABLE turns (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES sessions(id),
    key TEXT NOT NULL,              -- message.id for assistant turns, else record uuid
    uuid TEXT,
    parent_uuid TEXT,
    uuids TEXT NOT NULL DEFAULT '[]',
    message_id TEXT,
    role TEXT NOT NULL,
    kind TEXT NOT NULL,
    text TEXT NOT NULL DEFAULT '',
    thinking TEXT NOT NULL DEFAULT '',
    tools TEXT NOT NULL DEFAULT '[]',  -- tool calls and results as JSON
    timestamp TEXT,
    cwd TEXT,
    git_branch TEXT,
    project_id INTEGER REFERENCES projects(id),
    source_id INTEGER REFERENCES sources(id),
    line_no INTEGER NOT NULL DEFAULT 0,
    is_sidechain INTEGER NOT NULL DEFAULT 0,
    agent_id TEXT,
    parent_tool_use_id TEXT,
    dia_id TEXT,
    speaker TEXT,
    files TEXT NOT NULL DEFAULT '[]',
    extra TEXT NOT NULL DEFAULT '{}',
    UNIQUE (session_id, key)
);
CREATE INDEX turns_project ON turns(project_id, timestamp);
CREATE INDEX turns_source ON turns(source_id);
CREATE INDEX turns_agent ON turns(agent_id) WHERE agent_id IS NOT NULL;

CREATE VIRTUAL TABLE turns_fts USING fts5(
    text, thinking, content='turns', content_rowid='id', tokenize='porter unicode61'
);
-- New turns are indexed by the store in one INSERT ... SELECT per batch (five times faster than
-- a per-row trigger); updates and deletes keep the index in step through these triggers.
CREATE TRIGGER turns_ad AFTER DELETE ON turns BEGIN
    INSERT INTO turns_fts(turns_fts, rowid, text, thinking)
    VALUES ('delete', old.id, old.text, old.thinking);
END;
CREATE TRIGGER turns_au AFTER UPDATE OF text, thinking ON turns BEGIN
    INSERT INTO turns_fts(turns_fts, rowid, text, thinking)
    VALUES ('delete', old.id, old.text, old.thinking);
    INSERT INTO turns_fts(rowid, text, thinking) VALUES (new.id, new.text, new.thinking);
END;

-- a parent session's tool call that started a sub-agent (2.x layouts link by agent id)
CREATE TABLE agent_links (
    session_id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    tool_use_id TEXT NOT NULL,
    PRIMARY KEY (session_id, agent_id)
);

CREATE TABLE parse_issues (
    id INTEGER PRIMARY KEY,
    source_id INTEGER NOT NULL REFERENCES sources(id),
    line_no INTEGER NOT NULL,
    reason TEXT NOT NULL,
    UNIQUE (source_id, line_no)
);
"""

# Cognitions: durable knowledge extracted from turns, with sources, merged and superseded.
M002_COGNITIONS = """
CREATE TABLE cognitions (
    id INTEGER PRIMARY KEY,
    uid TEXT NOT NULL UNIQUE,       -- stable id: hash of scope, category and normalised text
    project_id INTEGER REFERENCES projects(id),  -- NULL: applies to every project
    category TEXT NOT NULL,         -- preference | decision | fact | lesson | workflow | gotcha
    subject TEXT,                   -- what it is about ("package manager"); contradictions share it
    text TEXT NOT NULL,
    keywords TEXT NOT NULL DEFAULT '[]',
    salience REAL NOT NULL DEFAULT 0.5,
    evidence INTEGER NOT NULL DEFAULT 1,  -- how many source turns support it
    origin TEXT NOT NULL,           -- rules | lm | user | code
    status TEXT NOT NULL DEFAULT 'active',  -- active | superseded | forgotten
    superseded_by INTEGER REFERENCES cognitions(id),
    valid_from TEXT,                -- when it was first stated (its earliest source)
    valid_until TEXT,               -- when a newer cognition replaced it
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    extra TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX cognitions_scope ON cognitions(project_id, status, category);
CREATE INDEX cognitions_subject ON cognitions(project_id, subject) WHERE subject IS NOT NULL;

CREATE TABLE cognition_sources (
    cognition_id INTEGER NOT NULL REFERENCES cognitions(id) ON DELETE CASCADE,
    session_id TEXT,                -- NULL for code and user sources
    turn_key TEXT,
    uuid TEXT,                      -- the source record's uuid
    timestamp TEXT,
    file_path TEXT,                 -- for codebase knowledge: the file it came from
    line_no INTEGER,
    quote TEXT,                     -- the words of the source that support it
    UNIQUE (cognition_id, session_id, turn_key, file_path)
);
CREATE INDEX cognition_sources_turn ON cognition_sources(session_id, turn_key);

CREATE VIRTUAL TABLE cognitions_fts USING fts5(
    text, keywords, content='cognitions', content_rowid='id', tokenize='porter unicode61'
);
CREATE TRIGGER cognitions_ai AFTER INSERT ON cognitions BEGIN
    INSERT INTO cognitions_fts(rowid, text, keywords) VALUES (new.id, new.text, new.keywords);
END;
CREATE TRIGGER cognitions_ad AFTER DELETE ON cognitions BEGIN
    INSERT INTO cognitions_fts(cognitions_fts, rowid, text, keywords)
    VALUES ('delete', old.id, old.text, old.keywords);
END;
CREATE TRIGGER cognitions_au AFTER UPDATE OF text, keywords ON cognitions BEGIN
    INSERT INTO cognitions_fts(cognitions_fts, rowid, text, keywords)
    VALUES ('delete', old.id, old.text, old.keywords);
    INSERT INTO cognitions_fts(rowid, text, keywords) VALUES (new.id, new.text, new.keywords);
END;

-- how far each extractor has read each session (extraction is incremental and idempotent)
CREATE TABLE extraction_state (
    session_id TEXT NOT NULL,
    extractor TEXT NOT NULL,
    last_turn_id INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT,
    PRIMARY KEY (session_id, extractor)
);

-- codebase files already read by `lmm ingest-code` (re-runs read only changed files)
CREATE TABLE code_files (
    path TEXT PRIMARY KEY,
    project_id INTEGER REFERENCES projects(id),
    sha TEXT NOT NULL,
    updated_at TEXT
);
"""

# Dense vectors for turns and cognitions, tagged with the embedder that made them.
M003_VECTORS = """
CREATE TABLE vectors (
    item_kind TEXT NOT NULL,        -- turn | cognition
    item_id INTEGER NOT NULL,
    model TEXT NOT NULL,            -- embedder id
    dim INTEGER NOT NULL,
    vec BLOB NOT NULL,              -- float32, little-endian, L2-normalised
    PRIMARY KEY (item_kind, item_id, model)
);
CREATE TABLE embedders (
    model TEXT PRIMARY KEY,
    dim INTEGER NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
"""

# Retrieval keys of turns (retrieve/search.py): who spoke, what was said, the turn it follows,
# the day.
# BM25 over these columns finds Caroline's "Yes, it was so powerful!" for "When did Caroline go to
# the support group?". Kept in step with `turns` by triggers; turns_session makes the
# previous-turn lookup a seek.
_DAY = """CASE WHEN {ts} IS NULL THEN '' ELSE ltrim(strftime('%d', {ts}), '0') || ' ' ||
    CASE strftime('%m', {ts}) WHEN '01' THEN 'January' WHEN '02' THEN 'February'
    WHEN '03' THEN 'March' WHEN '04' THEN 'April' WHEN '05' THEN 'May' WHEN '06' THEN 'June'
    WHEN '07' THEN 'July' WHEN '08' THEN 'August' WHEN '09' THEN 'September'
    WHEN '10' THEN 'October' WHEN '11' THEN 'November' WHEN '12' THEN 'December' ELSE '' END
    || ' ' || strftime('%Y', {ts}) END"""
_INSERT_KEY = f"""
    INSERT INTO turn_keys (rowid, speaker, text, context, day)
    SELECT new.id, coalesce(new.speaker, new.role), new.text,
        coalesce((SELECT coalesce(p.speaker, p.role) || ': ' || p.text FROM turns p
                  WHERE p.session_id = new.session_id AND p.id < new.id AND length(p.text) > 0
                  ORDER BY p.id DESC LIMIT 1), ''),
        {_DAY.format(ts="new.timestamp")}
    WHERE length(new.text) > 0;"""
# The text index of turns with id > ? (no trigger indexes new rows): Store.index_new_turns after
# each batch, Store.index_pending once per bulk transaction.
TURN_TEXT_FOR_NEW = """
    INSERT INTO turns_fts (rowid, text, thinking)
    SELECT id, text, thinking FROM turns WHERE id > ?"""
# The same keys for turns with id > ?, written by Store.index_new_turns after each batch.
TURN_KEYS_FOR_NEW = f"""
    INSERT INTO turn_keys (rowid, speaker, text, context, day)
    SELECT t.id, coalesce(t.speaker, t.role), t.text,
        coalesce((SELECT coalesce(p.speaker, p.role) || ': ' || p.text FROM turns p
                  WHERE p.session_id = t.session_id AND p.id < t.id AND length(p.text) > 0
                  ORDER BY p.id DESC LIMIT 1), ''),
        {_DAY.format(ts="t.timestamp")}
    FROM turns t WHERE t.id > ? AND length(t.text) > 0"""
M004_TURN_KEYS = f"""
CREATE INDEX turns_session ON turns(session_id);
CREATE VIRTUAL TABLE turn_keys USING fts5(
    speaker, text, context, day, tokenize='porter unicode61'
);
INSERT INTO turn_keys (rowid, speaker, text, context, day)
SELECT id, who, text,
    coalesce(lag(who || ': ' || text) OVER (PARTITION BY session_id ORDER BY id), ''),
    {_DAY.format(ts="timestamp")}
FROM (SELECT id, session_id, coalesce(speaker, role) AS who, text, timestamp FROM turns
      WHERE length(text) > 0);
-- new turns get their keys from the store, in one INSERT ... SELECT per batch
-- (`TURN_KEYS_FOR_NEW`), as turns_fts does: a per-row trigger made ingest 2.5x slower
CREATE TRIGGER turn_keys_ad AFTER DELETE ON turns BEGIN
    DELETE FROM turn_keys WHERE rowid = old.id;
END;
CREATE TRIGGER turn_keys_au AFTER UPDATE OF text, speaker ON turns BEGIN
    DELETE FROM turn_keys WHERE rowid = old.id; {_INSERT_KEY}
END;
"""

# Deferred indexing. Inside `Store.bulk` (ingest) the turns of a transaction are indexed once,
# just before it commits, instead of after each batch: a merge into a turn indexed moments earlier
# made FTS5 flush its pending terms into a tiny segment (it must see rowids in order), and 1% of
# rows merging cost a fifth of the writer's time. The update and delete triggers therefore act
# only on indexed turns (those in turns_fts, whose docsize row exists); a turn still waiting keeps
# its turn_keys context in `temp.turn_key_context`, taken when the old per-batch indexing took it
# and re-taken by a temporary trigger where the per-batch trigger would have re-taken it, so the
# index ends up exactly as before. Deleting an absent turn_keys row is a no-op: turn_keys_ad stays.
# FTS5 also keeps up to 16 MB of pending terms in memory (default 1 MB) before it writes a segment:
# fewer, larger segments and less merging on big writes; queries read fewer segments too.
INDEXED = "EXISTS (SELECT 1 FROM turns_fts_docsize WHERE id = old.id)"
M005_DEFERRED_INDEX = f"""
DROP TRIGGER turns_ad;
DROP TRIGGER turns_au;
DROP TRIGGER turn_keys_au;
CREATE TRIGGER turns_ad AFTER DELETE ON turns WHEN {INDEXED} BEGIN
    INSERT INTO turns_fts(turns_fts, rowid, text, thinking)
    VALUES ('delete', old.id, old.text, old.thinking);
END;
CREATE TRIGGER turns_au AFTER UPDATE OF text, thinking ON turns WHEN {INDEXED} BEGIN
    INSERT INTO turns_fts(turns_fts, rowid, text, thinking)
    VALUES ('delete', old.id, old.text, old.thinking);
    INSERT INTO turns_fts(rowid, text, thinking) VALUES (new.id, new.text, new.thinking);
END;
CREATE TRIGGER turn_keys_au AFTER UPDATE OF text, speaker ON turns WHEN {INDEXED} BEGIN
    DELETE FROM turn_keys WHERE rowid = old.id; {_INSERT_KEY}
END;
INSERT INTO turns_fts(turns_fts, rank) VALUES ('hashsize', 16777216);
INSERT INTO turn_keys(turn_keys, rank) VALUES ('hashsize', 16777216);
"""
# The context of a turn, as TURN_KEYS_FOR_NEW and the turn_keys_au trigger compute it.
_CONTEXT = """coalesce((SELECT coalesce(p.speaker, p.role) || ': ' || p.text FROM turns p
                  WHERE p.session_id = {t}.session_id AND p.id < {t}.id AND length(p.text) > 0
                  ORDER BY p.id DESC LIMIT 1), '')"""
# Per connection, while `Store.bulk` defers indexing (created and dropped by the store).
BULK_INDEX_SETUP = (
    "CREATE TEMP TABLE IF NOT EXISTS turn_key_context (id INTEGER PRIMARY KEY, context TEXT)",
    f"""CREATE TEMP TRIGGER IF NOT EXISTS turn_key_context_au
    AFTER UPDATE OF text, speaker ON main.turns WHEN NOT {INDEXED} BEGIN
        DELETE FROM turn_key_context WHERE id = old.id;
        INSERT INTO turn_key_context (id, context) SELECT new.id, {_CONTEXT.format(t="new")}
        WHERE length(new.text) > 0;
    END""",
    f"""CREATE TEMP TRIGGER IF NOT EXISTS turn_key_context_ad
    AFTER DELETE ON main.turns WHEN NOT {INDEXED} BEGIN
        DELETE FROM turn_key_context WHERE id = old.id;
    END""",
)
BULK_INDEX_TEARDOWN = (
    "DROP TRIGGER IF EXISTS temp.turn_key_context_au",
    "DROP TRIGGER IF EXISTS temp.turn_key_context_ad",
    "DROP TABLE IF EXISTS temp.turn_key_context",
)
# The contexts of turns with id > ?, taken when TURN_KEYS_FOR_NEW would have run ...
TURN_KEY_CONTEXTS_FOR_NEW = f"""
    INSERT INTO turn_key_context (id, context)
    SELECT t.id, {_CONTEXT.format(t="t")} FROM turns t WHERE t.id > ? AND length(t.text) > 0"""
# ... and their keys, written just before the transaction commits.
TURN_KEYS_FROM_CONTEXTS = f"""
    INSERT INTO turn_keys (rowid, speaker, text, context, day)
    SELECT t.id, coalesce(t.speaker, t.role), t.text, c.context, {_DAY.format(ts="t.timestamp")}
    FROM turn_key_context c JOIN turns t ON t.id = c.id ORDER BY c.id"""

# Scope of cognitions. A user-wide cognition (project_id NULL: it applies in every project) keeps
# the project it was learned in, so moving it back to project scope needs no path; `scope_by`
# says why it has its scope. Existing user-wide rows take the project of their first source.
M006_SCOPE = """
ALTER TABLE cognitions ADD COLUMN learned_in INTEGER REFERENCES projects(id);
ALTER TABLE cognitions ADD COLUMN scope_by TEXT;  -- NULL: as stated | rule | repeated | user
UPDATE cognitions SET learned_in = coalesce(project_id, (
    SELECT s.project_id FROM cognition_sources cs JOIN sessions s ON s.id = cs.session_id
    WHERE cs.cognition_id = cognitions.id AND s.project_id IS NOT NULL
    ORDER BY cs.timestamp, cs.rowid LIMIT 1));
-- a statement said again in another project is found by its subject, in any project
CREATE INDEX cognitions_subject_any ON cognitions(subject, category)
    WHERE subject IS NOT NULL AND status = 'active';
"""

# A record's uuid, to find copies of it under another session (`--fork-session` copies the
# records it continues from, uuids included).
M007_TURN_UUIDS = """
CREATE INDEX turns_uuid ON turns(uuid);
"""

# Stores written before the reader kept only conversation (docs/claude-code.md) hold what it now
# leaves out: attachments and meta records (kind 'meta': skill listings, hook output, lmm's own
# injections), dropped system records, background agents' <task-notification> reports,
# interruption markers, lmm's injected memory, synthetic assistant records (API errors). They go,
# with their vectors and the source links of memories learned from them (a memory left with no
# source, unless the user typed it, goes too); a kept turn whose parent went gets the nearest
# kept ancestor, as the reader now links it.
M008_CONVERSATION_ONLY = """
CREATE TEMP TABLE m008_gone AS SELECT id, uuid, parent_uuid, session_id, key FROM turns WHERE
    kind = 'meta'
    OR (kind = 'system' AND json_valid(extra)
        AND json_extract(extra, '$.subtype') IN ('api_error', 'stop_hook_summary', 'turn_duration'))
    OR (role = 'user' AND kind = 'message' AND tools = '[]' AND (
        ltrim(text) LIKE '<task-notification>%' OR ltrim(text) LIKE '<lmm-memory%'
        OR text IN ('[Request interrupted by user]', '[Request interrupted by user for tool use]')))
    OR (role = 'assistant' AND tools = '[]' AND thinking = ''
        AND (text = 'No response requested.' OR text LIKE 'API Error: %'));
CREATE TEMP TABLE m008_up AS WITH RECURSIVE up(uuid, anc, depth) AS (
    SELECT uuid, parent_uuid, 0 FROM m008_gone WHERE uuid IS NOT NULL
    UNION ALL
    SELECT up.uuid, g.parent_uuid, up.depth + 1 FROM up JOIN m008_gone g ON g.uuid = up.anc
    WHERE up.depth < 1000
) SELECT uuid, anc FROM up
    WHERE anc IS NULL OR anc NOT IN (SELECT uuid FROM m008_gone WHERE uuid IS NOT NULL);
UPDATE turns SET parent_uuid = (SELECT anc FROM m008_up u WHERE u.uuid = turns.parent_uuid)
    WHERE parent_uuid IN (SELECT uuid FROM m008_up) AND id NOT IN (SELECT id FROM m008_gone);
DELETE FROM vectors WHERE item_kind IN ('turn', 'turn_parts')
    AND item_id IN (SELECT id FROM m008_gone);
CREATE TEMP TABLE m008_links AS SELECT rowid AS link, cognition_id FROM cognition_sources
    WHERE EXISTS (SELECT 1 FROM m008_gone g
        WHERE g.session_id = cognition_sources.session_id AND g.key = cognition_sources.turn_key);
DELETE FROM cognition_sources WHERE rowid IN (SELECT link FROM m008_links);
CREATE TEMP TABLE m008_cogs AS SELECT id FROM cognitions c WHERE origin IN ('rules', 'lm')
    AND id IN (SELECT cognition_id FROM m008_links)
    AND NOT EXISTS (SELECT 1 FROM cognition_sources s WHERE s.cognition_id = c.id);
UPDATE cognitions SET superseded_by = NULL WHERE superseded_by IN (SELECT id FROM m008_cogs);
DELETE FROM vectors WHERE item_kind = 'cognition' AND item_id IN (SELECT id FROM m008_cogs);
DELETE FROM cognitions WHERE id IN (SELECT id FROM m008_cogs);
DELETE FROM turns WHERE id IN (SELECT id FROM m008_gone);
DROP TABLE m008_gone;
DROP TABLE m008_up;
DROP TABLE m008_cogs;
DROP TABLE m008_links;
"""

MIGRATIONS: list[str] = [
    M001_INITIAL,
    M002_COGNITIONS,
    M003_VECTORS,
    M004_TURN_KEYS,
    M005_DEFERRED_INDEX,
    M006_SCOPE,
    M007_TURN_UUIDS,
    M008_CONVERSATION_ONLY,
]


def statements(script: str) -> list[str]:
    """Split a migration into complete SQL statements (trigger bodies and quoted ';' kept whole)."""
    out: list[str] = []
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \t\n;"):
                out.append(pending.strip())
            pending = ""
    if pending.strip(" \t\n;"):
        raise ValueError(f"incomplete SQL statement at the end of a migration: {pending[:80]!r}")
    return out


def _version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def apply(db: sqlite3.Connection) -> int:
    """Apply pending migrations, each in its own transaction. Returns the schema version.

    Safe when several processes open a new store at once: each migration runs under the write
    lock (BEGIN IMMEDIATE) and is skipped if another process applied it while this one waited.
    """
    version = _version(db)
    if version > len(MIGRATIONS):
        raise StoreError(
            f"the store has schema version {version}, newer than this lmm knows "
            f"({len(MIGRATIONS)}); upgrade lmm (pip install -U lmm)"
        )
    for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
        db.execute("BEGIN IMMEDIATE")
        try:
            if _version(db) < number:
                for sql in statements(migration):
                    db.execute(sql)
                db.execute(f"PRAGMA user_version = {number}")
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
    return len(MIGRATIONS)
