"""`forget` leaves no trace: not in what hooks inject, search or export, not in the file's bytes.

The contract (lmm.store.erase): the memory's own words go wherever the store holds them word for
word, and the sentence that carries them goes from its source turns; a paraphrase elsewhere
stays."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lmm import paths
from lmm.ingest.run import ingest
from lmm.memory.extract import get_extractor, run_extraction
from lmm.retrieve.embed import FakeEmbedder, embed_pending
from lmm.serve import hooks
from lmm.store import cognitions, erase
from lmm.store.db import Store, open_store
from lmm.store.exchange import export_jsonl

CWD = "/home/dev/billing"
RULE = "From now on, always deploy the billing service with the codeword zanzibar pelican."
WORD = b"zanzibar"


def _record(sid: str, n: int, role: str, text: str, parent: str | None) -> dict:
    message: dict = {"role": role, "content": text}
    if role == "assistant":
        message = {"id": f"msg-{sid}-{n}", "role": role, "model": "claude-opus-4-7",
                   "content": [{"type": "text", "text": text}]}  # fmt: skip
    return {
        "type": role, "uuid": f"{sid}-{n}", "parentUuid": parent, "sessionId": sid, "cwd": CWD,
        "timestamp": f"2026-03-0{n}T10:00:00.000Z", "message": message,
    }  # fmt: skip


def _session(root: Path, sid: str, lines: list[tuple[str, str]]) -> None:
    folder = root / "-home-dev-billing"
    folder.mkdir(parents=True, exist_ok=True)
    records, parent = [], None
    for n, (role, text) in enumerate(lines, 1):
        records.append(_record(sid, n, role, text, parent))
        parent = f"{sid}-{n}"
    (folder / f"{sid}.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LMM_HOME", str(tmp_path / "home"))
    root = tmp_path / "projects"
    _session(root, "s1", [
        ("user", f"Set up the deploy script. {RULE} The staging host is billing-stg."),
        ("assistant", "Done: deploy.sh now passes the codeword to the deployer."),
        ("user", "Thanks. Now add a health check to the service."),
        ("assistant", "Added /healthz returning 200 with the build sha."),
    ])  # fmt: skip
    _session(root, "s2", [
        ("user", f"Remind me how deploys work here. I wrote: {RULE.lower()}"),
        ("assistant", f"Yes: \"{RULE}\" Your deploy script follows it."),
    ])  # fmt: skip
    with open_store() as store:
        ingest(store, [root])
        run_extraction(store, get_extractor("rules"))
        embed_pending(store, FakeEmbedder())
    return tmp_path


def _found(store: Store) -> list[cognitions.Cognition]:
    return [c for c in cognitions.list_(store) if "zanzibar" in c.text.lower()]


def _prompt() -> str:
    prompt = "which codeword do we deploy the billing service with?"
    out = hooks.respond(hooks.HookInput("UserPromptSubmit", cwd=CWD, prompt=prompt))
    return json.dumps(out or {})


def test_forget_erases_the_memory_and_its_words_everywhere(home: Path) -> None:
    with open_store() as store:
        cog, *_copies = _found(store)  # the rule, and the copy the second session quoted
        assert "zanzibar" in _prompt()  # before: the hook recalls it
        assert erase.forget(store, cog.id) is True
        assert erase.forget(store, cog.id) is False
        assert _found(store) == []
        texts = " ".join(r[0] for r in store.db.execute("SELECT text FROM turns"))
        assert "zanzibar" not in texts.lower() and erase.MARK in texts
        assert "staging host is billing-stg" in texts  # the rest of the turn stays
        assert "health check" in texts
        out = Path(home / "export.jsonl")
        with out.open("wb") as f:
            export_jsonl(store, f)
        assert WORD not in out.read_bytes().lower()
    assert "zanzibar" not in _prompt().lower()
    db = paths.db_path()
    for path in (db, db.with_name(db.name + "-wal")):
        if path.exists():
            assert WORD not in path.read_bytes().lower(), path


def test_forget_takes_the_edit_history_with_it(home: Path) -> None:
    with open_store() as store:
        first = cognitions.remember(store, "Ship releases on Tuesdays with the flag quokka-mode.")
        with store.transaction():
            second = cognitions.edit(store, first, "Ship releases on Wednesdays with quokka-mode.")
        assert second != first
        erase.forget(store, second)
        rows = store.db.execute(
            "SELECT status, text FROM cognitions WHERE id IN (?, ?)", (first, second)
        ).fetchall()
        assert [r[0] for r in rows] == ["forgotten", "forgotten"] and all(not r[1] for r in rows)
    db = paths.db_path()
    for path in (db, db.with_name(db.name + "-wal")):
        if path.exists():
            assert b"quokka" not in path.read_bytes().lower(), path
