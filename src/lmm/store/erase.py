"""Forgetting for real: a forgotten memory leaves no trace the agent or the file can show."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from lmm import paths
from lmm.store import cognitions
from lmm.store.db import Store

log = logging.getLogger(__name__)

MARK = "[forgotten]"
MIN_PHRASE = 8  # characters: shorter phrases are too common to erase store-wide
SENTENCE_OVERLAP = 0.7  # share of the memory's words a source sentence must hold to be erased
_WORD = re.compile(r"\w+")
_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+|\n|$)")
FTS_TABLES = ("turns_fts", "turn_keys", "cognitions_fts")


def forget(store: Store, cog_id: int) -> bool:
    """Forget cognition `cog_id` everywhere (see the module). False when it was forgotten
    already. Runs its own transaction, then `scrub`."""
    store.db.execute("PRAGMA secure_delete = ON")
    with store.transaction():
        chain = _history(store, cog_id)
        phrases = _phrases(store, chain)
        chain += [c for c in _saying(store, phrases) if c not in chain]
        for other in chain[1:]:
            chain += [c for c in _history(store, other) if c not in chain]
        sources = _source_turns(store, chain)
        changed = cognitions.forget(store, cog_id)
        for old in chain[1:]:
            cognitions.forget(store, old)
        turns = erase_phrases(store, phrases, sources)
        store.db.execute(
            f"DELETE FROM vectors WHERE item_kind = 'cognition' "
            f"AND item_id IN ({','.join('?' * len(chain))})",
            chain,
        )
    scrub(store)
    forget_injections(store.path.parent)
    log.info("forgot #%d (%d versions), erased from %d turns", cog_id, len(chain), turns)
    return changed


def _history(store: Store, cog_id: int) -> list[int]:
    """`cog_id` and every row it replaced through edits, newest first."""
    chain, frontier = [cog_id], [cog_id]
    while frontier:
        rows = store.db.execute(
            f"SELECT id FROM cognitions WHERE superseded_by IN ({','.join('?' * len(frontier))})",
            frontier,
        ).fetchall()
        frontier = [r[0] for r in rows if r[0] not in chain]
        chain += frontier
    return chain


def _phrases(store: Store, chain: list[int]) -> list[str]:
    marks = ",".join("?" * len(chain))
    texts = [r[0] for r in store.db.execute(
        f"SELECT text FROM cognitions WHERE id IN ({marks}) UNION "
        f"SELECT quote FROM cognition_sources WHERE cognition_id IN ({marks})",
        chain + chain,
    )]  # fmt: skip
    phrases = {" ".join(t.split()) for t in texts if t and len(t.strip()) >= MIN_PHRASE}
    return sorted(phrases, key=len, reverse=True)


def _saying(store: Store, phrases: list[str]) -> list[int]:
    """Other cognitions that state one of `phrases` word for word (another session's copy)."""
    found: list[int] = []
    for phrase in phrases:
        pattern = _pattern(phrase)
        query = _phrase_query(phrase)
        rows = store.db.execute(
            "SELECT c.id, c.text FROM cognitions_fts f JOIN cognitions c ON c.id = f.rowid "
            "WHERE cognitions_fts MATCH ? AND c.status != 'forgotten'", (query,)
        ) if query else []  # fmt: skip
        found += [r[0] for r in rows if pattern.search(r[1]) and r[0] not in found]
    return found


def _phrase_query(phrase: str) -> str:
    words = _WORD.findall(phrase)[:16]
    return '"' + " ".join(words) + '"' if words else ""


def _source_turns(store: Store, chain: list[int]) -> list[int]:
    return [r[0] for r in store.db.execute(
        f"""SELECT t.id FROM cognition_sources s JOIN turns t
            ON t.session_id = s.session_id AND t.key = s.turn_key
            WHERE s.cognition_id IN ({','.join('?' * len(chain))})""",
        chain,
    )]  # fmt: skip


def _pattern(phrase: str) -> re.Pattern[str]:
    """The phrase's words in order, any punctuation, whitespace or markup between them (a few
    characters), any case."""
    words = [re.escape(w) for w in _WORD.findall(phrase)]
    return re.compile(r"\b" + r"[\W_]{0,8}?".join(words) + r"\b", re.IGNORECASE)


def _candidates(store: Store, phrases: list[str]) -> set[int]:
    """Turns whose text or thinking holds every word of some phrase (an FTS5 phrase query)."""
    found: set[int] = set()
    for phrase in phrases:
        if query := _phrase_query(phrase):
            rows = store.db.execute("SELECT rowid FROM turns_fts WHERE turns_fts MATCH ?", (query,))
            found.update(r[0] for r in rows)
    return found


def _erase_text(text: str, patterns: list[re.Pattern[str]], words: list[set[str]],
                sentences: bool) -> str:  # fmt: skip
    for pattern in patterns:
        text = pattern.sub(MARK, text)
    if not sentences or not text:
        return text

    def sentence(m: re.Match[str]) -> str:
        said = {w.lower() for w in _WORD.findall(m.group(0))}
        for memory in words:
            if memory and len(said & memory) >= SENTENCE_OVERLAP * len(memory):
                return MARK + ("\n" if m.group(0).endswith("\n") else " ")
        return m.group(0)

    return _SENTENCE.sub(sentence, text)


def _erase_json(value: Any, erase: Any) -> Any:
    if isinstance(value, str):
        return erase(value)
    if isinstance(value, list):
        return [_erase_json(v, erase) for v in value]
    if isinstance(value, dict):
        return {k: _erase_json(v, erase) for k, v in value.items()}
    return value


def erase_phrases(store: Store, phrases: list[str], sources: list[int]) -> int:
    """Replace `phrases` in every turn that says them, and the sentences of the `sources` turns
    that carry them; rebuild what indexes those turns. Returns how many turns changed."""
    if not phrases:
        return 0
    patterns = [_pattern(p) for p in phrases]
    words = [{w.lower() for w in _WORD.findall(p)} for p in phrases]
    changed: list[tuple[int, str]] = []
    for turn_id in sorted(_candidates(store, phrases) | set(sources)):
        row = store.db.execute(
            "SELECT session_id, text, thinking, tools FROM turns WHERE id = ?", (turn_id,)
        ).fetchone()
        if row is None:
            continue
        whole = turn_id in sources

        def erase(s: str, whole: bool = whole) -> str:
            return _erase_text(s, patterns, words, whole)

        text, thinking = erase(row[1]), erase(row[2])
        tools = orjson.dumps(_erase_json(orjson.loads(row[3] or "[]"), erase)).decode()
        if (text, thinking) != (row[1], row[2]) or tools != (row[3] or "[]"):
            store.db.execute(
                "UPDATE turns SET text = ?, thinking = ?, tools = ? WHERE id = ?",
                (text, thinking, tools, turn_id),
            )
            changed.append((turn_id, row[0]))
    for turn_id, session_id in changed:
        # the next turn's search key quotes this one as its context: rebuild it (the trigger)
        store.db.execute(
            """UPDATE turns SET speaker = speaker WHERE id = (SELECT id FROM turns
                WHERE session_id = ? AND id > ? AND length(text) > 0 ORDER BY id LIMIT 1)""",
            (session_id, turn_id),
        )
    ids = [t for t, _ in changed]
    if ids:
        store.db.execute(
            f"DELETE FROM vectors WHERE item_kind IN ('turn', 'turn_parts') "
            f"AND item_id IN ({','.join('?' * len(ids))})",
            ids,
        )
    return len(changed)


def scrub(store: Store) -> bool:
    """Merge the full-text indexes (no old segment keeps erased words) and truncate the WAL, with
    freed space zeroed. False when a reader kept the WAL from being truncated."""
    store.db.execute("PRAGMA secure_delete = ON")
    with store.transaction():
        for table in FTS_TABLES:
            store.db.execute(f"INSERT INTO {table}({table}) VALUES ('optimize')")
    busy, _, _ = store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    if busy:
        log.warning("a reader holds the WAL; erased pages leave it at the next checkpoint")
    return not busy


def forget_injections(folder: Path) -> None:
    """Overwrite and delete the hooks' record of recent injections in `folder` (and its rotated
    copy): it may quote what was just erased. The browser's Injected page starts over."""
    for path in (folder / paths.INJECTIONS_NAME, folder / (paths.INJECTIONS_NAME + ".1")):
        try:
            with path.open("r+b") as f:
                f.write(b"\0" * path.stat().st_size)
                f.flush()
                os.fsync(f.fileno())
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("could not erase %s (%s); delete it by hand", path, exc)


# ---- projects that opted out after they were stored


def purge_opted_out(store: Store, excluded: Callable[[str], bool]) -> dict[str, int]:
    """Delete everything stored of projects that have opted out (`excluded(path)`: the ingest
    passes lmm.ingest.privacy's `.lmm-ignore` and config test) since they were ingested: turns,
    sessions, their cognitions and sources, vectors, code facts. Run at the start of every
    ingest; the project row stays (so its files are known as read and not ingested again).
    Returns counts of what went."""
    projects = [(pid, path) for pid, path in store.db.execute("SELECT id, path FROM projects")]
    gone = [pid for pid, path in projects if excluded(path)]
    counts = {"projects": 0, "turns": 0, "cognitions": 0}
    if not gone:
        return counts
    store.db.execute("PRAGMA secure_delete = ON")
    marks = ",".join("?" * len(gone))
    with store.transaction() as db:
        # id lists as temporary tables: a big project holds more turns than SQL variables
        db.execute("CREATE TEMP TABLE IF NOT EXISTS purge_sessions (id TEXT PRIMARY KEY)")
        db.execute("CREATE TEMP TABLE IF NOT EXISTS purge_turns (id INTEGER PRIMARY KEY)")
        db.execute("CREATE TEMP TABLE IF NOT EXISTS purge_cogs (id INTEGER PRIMARY KEY)")
        for table in ("purge_sessions", "purge_turns", "purge_cogs"):
            db.execute(f"DELETE FROM temp.{table}")
        db.execute(
            f"INSERT OR IGNORE INTO purge_sessions SELECT id FROM sessions "
            f"WHERE project_id IN ({marks}) UNION "
            f"SELECT DISTINCT session_id FROM turns WHERE project_id IN ({marks})",
            gone + gone,
        )
        db.execute(
            f"INSERT INTO purge_turns SELECT id FROM turns WHERE project_id IN ({marks}) "
            f"OR session_id IN (SELECT id FROM purge_sessions)",
            gone,
        )
        db.execute(
            f"INSERT INTO purge_cogs SELECT id FROM cognitions WHERE project_id IN ({marks})", gone
        )
        db.execute(
            "DELETE FROM cognition_sources WHERE cognition_id IN (SELECT id FROM purge_cogs) "
            "OR session_id IN (SELECT id FROM purge_sessions)"
        )
        # a memory learned only there (not one the user typed) goes with it
        db.execute(
            "INSERT OR IGNORE INTO purge_cogs SELECT id FROM cognitions c WHERE origin != 'user' "
            "AND NOT EXISTS (SELECT 1 FROM cognition_sources s WHERE s.cognition_id = c.id)"
        )
        db.execute(
            "UPDATE cognitions SET superseded_by = NULL "
            "WHERE superseded_by IN (SELECT id FROM purge_cogs)"
        )
        db.execute(
            "DELETE FROM vectors WHERE item_kind = 'cognition' "
            "AND item_id IN (SELECT id FROM purge_cogs)"
        )
        db.execute("DELETE FROM cognitions WHERE id IN (SELECT id FROM purge_cogs)")
        # a user-wide memory also said elsewhere stays, no longer pointing at the project
        db.execute(f"UPDATE cognitions SET learned_in = NULL WHERE learned_in IN ({marks})", gone)
        db.execute(
            "DELETE FROM vectors WHERE item_kind IN ('turn', 'turn_parts') "
            "AND item_id IN (SELECT id FROM purge_turns)"
        )
        db.execute("DELETE FROM turns WHERE id IN (SELECT id FROM purge_turns)")
        for table in ("agent_links", "extraction_state"):
            db.execute(f"DELETE FROM {table} WHERE session_id IN (SELECT id FROM purge_sessions)")
        db.execute("DELETE FROM sessions WHERE id IN (SELECT id FROM purge_sessions)")
        db.execute(f"DELETE FROM code_files WHERE project_id IN ({marks})", gone)
        n_turns = db.execute("SELECT count(*) FROM purge_turns").fetchone()[0]
        n_cogs = db.execute("SELECT count(*) FROM purge_cogs").fetchone()[0]
    scrub(store)
    if n_turns or n_cogs:  # something just went: the injections may quote it
        forget_injections(store.path.parent)
    counts.update(projects=len(gone), turns=n_turns, cognitions=n_cogs)
    log.info("purged projects that opted out: %s", counts)
    return counts
