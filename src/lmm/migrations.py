"""Numbered schema migrations. The store applies the ones it has not yet applied, in order.

Never edit a released migration; add a new one. `PRAGMA user_version` records the last applied.
"""

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
CREATE TRIGGER turns_ai AFTER INSERT ON turns BEGIN
    INSERT INTO turns_fts(rowid, text, thinking) VALUES (new.id, new.text, new.thinking);
END;
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

MIGRATIONS: list[str] = [M001_INITIAL]


def apply(db: sqlite3.Connection) -> int:
    """Apply pending migrations, each in its own transaction. Returns the schema version."""
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version > len(MIGRATIONS):
        raise StoreError(
            f"the store has schema version {version}, newer than this lmm knows "
            f"({len(MIGRATIONS)}); upgrade lmm (pip install -U lmm)"
        )
    for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
        script = f"BEGIN IMMEDIATE;\n{migration}\nPRAGMA user_version = {number};\nCOMMIT;"
        try:
            db.executescript(script)
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
    return len(MIGRATIONS)
