"""Privacy: opted-out projects never reach the store; secrets never reach any output file."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from lmm import privacy
from lmm.exchange import export_jsonl
from lmm.ingest import ingest
from lmm.store import Store


def _session(path: Path, cwd: str, text: str, sid: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rec = {
        "type": "user",
        "uuid": f"{sid}-u1",
        "parentUuid": None,
        "sessionId": sid,
        "cwd": cwd,
        "timestamp": "2026-01-01T00:00:00Z",
        "message": {"role": "user", "content": text},
    }
    path.write_text(json.dumps(rec) + "\n")


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LMM_HOME", str(tmp_path / "home"))
    privacy.reset_cache()
    yield
    privacy.reset_cache()


def test_marker_file_keeps_a_project_and_its_subfolders_out(tmp_path: Path) -> None:
    secret_repo = tmp_path / "client"
    (secret_repo / "packages" / "api").mkdir(parents=True)
    (secret_repo / privacy.MARKER).touch()
    src = tmp_path / "projects"
    _session(src / "a" / "s1.jsonl", str(secret_repo), "the merger codename is BLUEBIRD", "s1")
    _session(src / "b" / "s2.jsonl", str(secret_repo / "packages" / "api"), "BLUEBIRD api", "s2")
    _session(src / "c" / "s3.jsonl", str(tmp_path / "client2"), "an ordinary project", "s3")

    store = Store(tmp_path / "home" / "lmm.db")
    report = ingest(store, [src])
    assert report.turns_opted_out == 2
    assert [r[0] for r in store.db.execute("SELECT session_id FROM turns")] == ["s3"]
    assert (
        store.db.execute("SELECT count(*) FROM sessions WHERE id IN ('s1', 's2')").fetchone()[0]
        == 0
    )
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    raw = b"".join(p.read_bytes() for p in (tmp_path / "home").iterdir() if p.is_file())
    assert b"BLUEBIRD" not in raw


def test_config_exclude_list(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(f'[privacy]\nexclude = ["{tmp_path}/nda-*"]\n')
    src = tmp_path / "projects"
    _session(src / "a" / "s1.jsonl", str(tmp_path / "nda-acme"), "acme pricing", "s1")
    _session(src / "b" / "s2.jsonl", str(tmp_path / "open-source"), "public work", "s2")
    store = Store(home / "lmm.db")
    ingest(store, [src])
    assert [r[0] for r in store.db.execute("SELECT session_id FROM turns")] == ["s2"]
    buf = io.BytesIO()
    export_jsonl(store, buf)
    assert b"acme pricing" not in buf.getvalue()


def test_no_corpus_secret_reaches_the_database_file_or_an_export(tmp_path: Path) -> None:
    from assets.secrets import CORPUS

    assert len(CORPUS) >= 50
    src = tmp_path / "projects" / "-home-dev-app"
    src.mkdir(parents=True)
    lines = []
    for i, case in enumerate(CORPUS):  # each line made its own session, so nothing merges
        rec = json.loads(case.jsonl_line)
        rec.update(sessionId=f"s{i}", uuid=f"u{i}", parentUuid=None, cwd="/home/dev/app")
        lines.append(json.dumps(rec))
    (src / "secrets.jsonl").write_text("\n".join(lines) + "\n")

    store = Store(tmp_path / "home" / "lmm.db")
    report = ingest(store, [src])
    assert report.turns_new == len(CORPUS)
    buf = io.BytesIO()
    export_jsonl(store, buf)
    exported = buf.getvalue().decode()
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    raw = b"".join(p.read_bytes() for p in (tmp_path / "home").iterdir() if p.is_file())
    db_text = raw.decode("utf-8", errors="replace")
    leaks = [c.name for c in CORPUS if any(p in db_text or p in exported for p in c.pieces())]
    assert leaks == []
    assert exported.count("[REDACTED:") >= len(CORPUS) - 5  # private spans are [PRIVATE]


def test_no_corpus_secret_reaches_training_files_hooks_mcp_or_logs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from assets.secrets import CORPUS
    from lmm import hooks, mcp_server, pairs
    from lmm.extract import get_extractor, run_extraction

    home = tmp_path / "home"
    monkeypatch.setenv("LMM_HOME", str(home))
    src = tmp_path / "projects" / "-home-dev-app"
    src.mkdir(parents=True)
    lines = []
    for i, case in enumerate(CORPUS):
        rec = json.loads(case.jsonl_line)
        rec.update(sessionId=f"s{i % 6}", uuid=f"u{i}", parentUuid=f"u{i - 6}" if i >= 6 else None,
                   cwd="/home/dev/app")  # fmt: skip
        lines.append(json.dumps(rec))
    (src / "secrets.jsonl").write_text("\n".join(lines) + "\n")
    store = Store(home / "lmm.db")
    ingest(store, [src])
    run_extraction(store, get_extractor("rules"))

    outputs: list[str] = []
    written = pairs.write(pairs.build(store), tmp_path / "data")  # training files
    outputs += [Path(p).read_text() for p in written.values()]
    for case in CORPUS[:20]:  # hook output: the prompt names the secret's surroundings
        prompt = case.context.replace("{}", "")[:200]
        hook_json = {"hook_event_name": "UserPromptSubmit", "session_id": "x", "prompt": prompt,
                     "cwd": "/home/dev/app", "transcript_path": ""}  # fmt: skip
        out = io.StringIO()
        hooks.run_hook("UserPromptSubmit", io.BytesIO(json.dumps(hook_json).encode()), out)
        outputs.append(out.getvalue())
        outputs.append(mcp_server.search(prompt, project=""))
        outputs.append(mcp_server.recall(prompt, project=""))
    logs = [p.read_text(errors="replace") for p in home.rglob("*.log")]
    text = "\n".join(outputs + logs)
    assert "[REDACTED:" in text  # the searches did surface the redacted lines
    leaks = [c.name for c in CORPUS if any(p in text for p in c.pieces())]
    assert leaks == []


def test_an_opt_out_added_later_stops_injection_at_once_and_purges_at_the_next_ingest(
    tmp_path: Path,
) -> None:
    from lmm import cognitions, hooks
    from lmm.codebase import ingest_code
    from lmm.errors import InputError
    from lmm.extract import get_extractor, run_extraction

    repo = tmp_path / "client"
    repo.mkdir()
    other = tmp_path / "mine"
    src = tmp_path / "projects"
    text = "Remember: the merger codename is BLUEBIRD, always use pnpm here."
    _session(src / "a" / "s1.jsonl", str(repo), text, "s1")
    _session(src / "c" / "s3.jsonl", str(other), "always use uv in this project", "s3")
    store = Store(tmp_path / "home" / "lmm.db")
    ingest(store, [src])
    run_extraction(store, get_extractor("rules"))
    prompt = hooks.HookInput("UserPromptSubmit", cwd=str(repo), prompt="what is the codename?")
    assert "BLUEBIRD" in json.dumps(hooks.respond(prompt))

    (repo / privacy.MARKER).touch()  # the user opts the project out after the fact
    assert hooks.respond(prompt) is None  # at once, before any ingest
    start = hooks.HookInput("SessionStart", cwd=str(repo))
    assert hooks.respond(start) is None
    with pytest.raises(InputError, match="opted out"):
        ingest_code(store, repo)

    report = ingest(store, [src])
    assert report.turns_purged == 1
    assert [r[0] for r in store.db.execute("SELECT session_id FROM turns")] == ["s3"]
    assert not [c for c in cognitions.list_(store) if "BLUEBIRD" in c.text]
    assert ingest(store, [src]).turns_new == 0  # and its transcript is not read again
    store.close()
    raw = b"".join(p.read_bytes() for p in (tmp_path / "home").iterdir() if p.is_file())
    assert b"BLUEBIRD" not in raw


def test_lines_without_a_cwd_appended_to_an_opted_out_session_stay_out(tmp_path: Path) -> None:
    repo = tmp_path / "client"
    repo.mkdir()
    (repo / privacy.MARKER).touch()
    path = tmp_path / "projects" / "-client" / "s1.jsonl"
    _session(path, str(repo), "the merger codename is BLUEBIRD", "s1")
    store = Store(tmp_path / "home" / "lmm.db")
    assert ingest(store, [tmp_path / "projects"]).turns_opted_out == 1
    later = {"type": "user", "uuid": "s1-u2", "parentUuid": "s1-u1", "sessionId": "s1",
             "timestamp": "2026-01-01T00:01:00Z",
             "message": {"role": "user", "content": "BLUEBIRD closes on Friday"}}  # fmt: skip
    with path.open("a") as f:
        f.write(json.dumps(later) + "\n")
    report = ingest(store, [tmp_path / "projects"])
    assert (report.turns_new, report.turns_opted_out) == (0, 1)
    assert store.db.execute("SELECT count(*) FROM turns").fetchone()[0] == 0
    store.close()
