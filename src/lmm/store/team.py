"""The team store: memories a project's members share, on PostgreSQL (psycopg 3, the `team` extra).

Each member connects as their own database role. Row-level security lets a role read and write
only the memories of the projects it was granted. A trigger refuses any text that still holds a
recognisable secret, so a client that skipped redaction cannot upload one. The schema has
numbered migrations of its own (`team_schema`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lmm.errors import LmmError, MissingExtra

if TYPE_CHECKING:
    import psycopg

MEMBER_ROLE = "lmm_member"  # the group role every member is granted
RETRY_DELAYS = (0.5, 1.5)  # seconds before connecting again to a server that is restarting
# what a server says while it restarts (or its socket is gone for that moment)
_TRANSIENT = re.compile(
    r"starting up|shutting down|Connection refused|No such file or directory|"
    r"server closed the connection|terminating connection",
    re.I,
)

# Secret shapes the server refuses outright (the client redacts far more before sending).
SERVER_SECRET_PATTERN = (
    r"(sk-[A-Za-z0-9_-]{20,}|gh[pousr]_[A-Za-z0-9]{30,}|AKIA[0-9A-Z]{16}"
    r"|xox[abposr]-[A-Za-z0-9-]{10,}|-----BEGIN [A-Z ]*PRIVATE KEY-----)"
)

MIGRATIONS: list[str] = [
    # 1: projects, who may read them, and their memories
    f"""
    CREATE TABLE projects (
        key text PRIMARY KEY,
        created_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE grants (
        member text NOT NULL,
        project text NOT NULL REFERENCES projects (key) ON DELETE CASCADE,
        granted_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (member, project)
    );
    CREATE TABLE memories (
        id bigserial PRIMARY KEY,
        project text NOT NULL REFERENCES projects (key) ON DELETE CASCADE,
        uid text NOT NULL,
        category text NOT NULL,
        text text NOT NULL,
        keywords text[] NOT NULL DEFAULT '{{}}',
        salience real NOT NULL DEFAULT 0.5,
        valid_from text,
        shared_by text NOT NULL DEFAULT current_user,
        shared_at timestamptz NOT NULL DEFAULT now(),
        forgotten_by text,
        forgotten_at timestamptz,
        UNIQUE (project, uid)
    );
    CREATE INDEX memories_project ON memories (project) WHERE forgotten_at IS NULL;

    CREATE FUNCTION lmm_refuse_secrets() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.text ~ '{SERVER_SECRET_PATTERN}' THEN
            RAISE EXCEPTION 'lmm: memory % of project % holds a secret; redact it first',
                NEW.uid, NEW.project USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END $$;
    CREATE TRIGGER memories_no_secrets BEFORE INSERT OR UPDATE ON memories
        FOR EACH ROW EXECUTE FUNCTION lmm_refuse_secrets();

    DO $$ BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{MEMBER_ROLE}') THEN
            CREATE ROLE {MEMBER_ROLE} NOLOGIN;
        END IF;
    END $$;
    GRANT SELECT ON projects, grants TO {MEMBER_ROLE};
    GRANT SELECT, INSERT, UPDATE ON memories TO {MEMBER_ROLE};
    GRANT USAGE ON SEQUENCE memories_id_seq TO {MEMBER_ROLE};

    ALTER TABLE grants ENABLE ROW LEVEL SECURITY;
    CREATE POLICY own_grants ON grants FOR SELECT USING (member = current_user);
    ALTER TABLE memories ENABLE ROW LEVEL SECURITY;
    CREATE POLICY granted_projects ON memories
        USING (project IN (SELECT g.project FROM grants g WHERE g.member = current_user))
        WITH CHECK (project IN (SELECT g.project FROM grants g WHERE g.member = current_user));
    """,
]


@dataclass(frozen=True)
class SharedMemory:
    """One memory as the team store holds it."""

    project: str
    uid: str
    category: str
    text: str
    keywords: list[str]
    salience: float
    valid_from: str | None
    shared_by: str
    shared_at: str
    forgotten: bool = False


@dataclass
class Published:
    """What one publish did: memories new to the team store, changed, or already there."""

    added: int = 0
    changed: int = 0
    unchanged: int = 0


def safe_url(url: str) -> str:
    """`url` without its password, for messages and logs."""
    return re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", url)


@contextmanager
def connect(url: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection to the team store, in autocommit mode: each write below is its own
    transaction. A server that is restarting gets `RETRY_DELAYS` more tries; any other refusal
    (a wrong password, no such database) fails at once. Credentials come from the URL, the
    environment (PGPASSWORD) or libpq's password file (~/.pgpass, which libpq reads only when it
    is 0600)."""
    try:
        import psycopg
    except ImportError as exc:
        raise MissingExtra("team", "psycopg") from exc
    for delay in (*RETRY_DELAYS, None):
        try:
            conn = psycopg.connect(url, connect_timeout=10, autocommit=True)
            break
        except psycopg.OperationalError as exc:
            if delay is not None and _TRANSIENT.search(str(exc)):
                time.sleep(delay)  # a server restarting: it is back in a moment
                continue
            message = str(exc).replace(url, safe_url(url)).strip()
            raise LmmError(f"cannot reach the team store {safe_url(url)}: {message}") from exc
    try:
        yield conn
    except psycopg.Error as exc:
        raise LmmError(refusal(exc)) from exc
    finally:
        conn.close()


def refusal(exc: Exception) -> str:
    """What the team store refused, and what to do about it."""
    primary = getattr(getattr(exc, "diag", None), "message_primary", None) or str(exc)
    if "row-level security" in primary or "permission denied" in primary:
        return (f"the team store refused: {primary}; your role is not granted that project: ask "
                "the team's administrator to run `lmm team grant ROLE PROJECT`")  # fmt: skip
    return f"the team store refused: {primary}"


def version(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT to_regclass('team_schema') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return 0
    got = conn.execute("SELECT coalesce(max(version), 0) FROM team_schema").fetchone()
    return int(got[0]) if got else 0


def migrate(conn: psycopg.Connection[Any]) -> int:
    """Apply the migrations this store has not had, in one transaction each. Needs a role that
    may create tables and roles (the team's administrator). Returns the schema version."""
    with conn.transaction():
        conn.execute("CREATE TABLE IF NOT EXISTS team_schema (version int PRIMARY KEY)")
    done = version(conn)
    for number, sql in enumerate(MIGRATIONS, start=1):
        if number <= done:
            continue
        with conn.transaction():
            conn.execute(sql.encode())
            conn.execute("INSERT INTO team_schema (version) VALUES (%s)", (number,))
    return len(MIGRATIONS)


def add_login(conn: psycopg.Connection[Any], role: str) -> None:
    """Create database role `role`, able to log in, unless it exists (administrator). Its
    password, if the server asks for one, is set apart: it never passes through lmm."""
    from psycopg import sql

    if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))


def grant(conn: psycopg.Connection[Any], member: str, project: str) -> None:
    """Let database role `member` read and share the memories of `project` (administrator)."""
    from psycopg import sql

    with conn.transaction():
        conn.execute("INSERT INTO projects (key) VALUES (%s) ON CONFLICT DO NOTHING", (project,))
        conn.execute(
            "INSERT INTO grants (member, project) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            (member, project),
        )
        conn.execute(
            sql.SQL("GRANT {} TO {}").format(sql.Identifier(MEMBER_ROLE), sql.Identifier(member))
        )


def publish(
    conn: psycopg.Connection[Any], project: str, memories: Iterable[SharedMemory]
) -> Published:
    """Insert or update `memories` of `project` in one transaction, keyed by uid; a memory
    forgotten on the team store stays forgotten. Each row is one upsert, so members sharing the
    same memory at the same moment store it once and neither fails."""
    out = Published()
    with conn.transaction():
        for m in memories:
            row = conn.execute(
                "INSERT INTO memories AS t (project, uid, category, text, keywords, salience, "
                "valid_from) VALUES (%s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (project, uid) DO UPDATE SET text = EXCLUDED.text, "
                "category = EXCLUDED.category, keywords = EXCLUDED.keywords, "
                "salience = EXCLUDED.salience, shared_by = current_user, shared_at = now() "
                "WHERE t.forgotten_at IS NULL "
                "AND (t.text, t.category) IS DISTINCT FROM (EXCLUDED.text, EXCLUDED.category) "
                "RETURNING xmax = 0",
                (project, m.uid, m.category, m.text, m.keywords, m.salience, m.valid_from),
            ).fetchone()
            if row is None:
                out.unchanged += 1
            elif row[0]:
                out.added += 1
            else:
                out.changed += 1
    return out


def memories(
    conn: psycopg.Connection[Any], projects: Iterable[str], *, forgotten: bool = False
) -> list[SharedMemory]:
    """The memories of `projects` this role may read (row-level security decides), newest
    first; forgotten ones only when asked."""
    rows = conn.execute(
        "SELECT project, uid, category, text, keywords, salience, valid_from, shared_by, "
        "to_char(shared_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
        "forgotten_at IS NOT NULL FROM memories WHERE project = ANY(%s) "
        "AND (%s OR forgotten_at IS NULL) ORDER BY shared_at DESC, id DESC",
        (list(projects), forgotten),
    ).fetchall()
    return [
        SharedMemory(r[0], r[1], r[2], r[3], list(r[4]), float(r[5]), r[6], r[7], r[8], r[9])
        for r in rows
    ]


def forget(conn: psycopg.Connection[Any], project: str, uid: str) -> bool:
    """Forget a shared memory for everyone: its text is erased, its uid stays so that no member
    shares it again. True when it was there and not yet forgotten."""
    with conn.transaction():
        cur = conn.execute(
            "UPDATE memories SET text = '', keywords = '{}', forgotten_by = current_user, "
            "forgotten_at = now() WHERE project = %s AND uid = %s AND forgotten_at IS NULL",
            (project, uid),
        )
    return cur.rowcount > 0
