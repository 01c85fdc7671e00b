"""Privacy: opted-out projects never reach the store; secrets never reach any output file."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from lmm.ingest import privacy
from lmm.ingest.run import ingest
from lmm.store.db import Store
from lmm.store.exchange import export_jsonl


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
    from lmm.memory.extract import get_extractor, run_extraction
    from lmm.serve import hooks
    from lmm.serve import mcp as mcp_server
    from lmm.train import pairs

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
    from lmm.errors import InputError
    from lmm.memory.codebase import ingest_code
    from lmm.memory.extract import get_extractor, run_extraction
    from lmm.serve import hooks
    from lmm.store import cognitions

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


def _leaks(texts: list[str]) -> list[str]:
    """The corpus formats of which a piece is in `texts`: every 12-character piece of a secret up
    to 40 characters long; of a longer one every sixth (any 17 characters of it)."""
    from assets.secrets import CORPUS

    text = "\n".join(texts)
    return [c.name for c in CORPUS if any(p in text for p in _pieces(c.pieces()))]


def _pieces(pieces: list[str]) -> list[str]:
    return pieces if len(pieces) <= 30 else pieces[::6] + pieces[-1:]


def _ui_pages(store: Store, sessions: list[str]) -> list[str]:
    """What `lmm ui` shows: every memory (any status) and the given sessions' transcripts, with
    the HTML escapes undone so that an escaped secret would still be found."""
    import html

    from lmm.ui.layout import Links
    from lmm.ui.memories import MemoryFilter, find_memories, memories_page
    from lmm.ui.sessions import session_page

    links = Links("t0k3n")
    every = MemoryFilter(status="all")
    n_pages = -(-len(find_memories(store, every)) // 50) or 1  # the page shows 50 at a time
    pages = [memories_page(store, links, every, str(n)) for n in range(1, n_pages + 1)]
    pages += [p for sid in sessions if (p := session_page(store, links, sid)) is not None]
    assert len(pages) == n_pages + len(sessions)
    return [html.unescape(body) for _, body in pages]


def _store_bytes(home: Path) -> str:
    """The text in the database file and its WAL as they lie on disk, before any checkpoint:
    every run of printable ASCII, once (the WAL repeats pages many times over)."""
    raw = b"".join(p.read_bytes() for p in sorted(home.iterdir()) if p.is_file())
    return b"\n".join(sorted(set(re.findall(rb"[\t\n\r\x20-\x7e]{12,}", raw)))).decode()


def test_no_corpus_secret_survives_memories_the_user_adds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """remember (library, MCP, UI) and edit (library, UI): keywords come from the redacted text,
    so neither the stored row, the WAL, `lmm memories --json`, `lmm export`, the UI, a hook nor
    MCP search shows a secret."""
    from assets.secrets import CORPUS
    from lmm.cli import main
    from lmm.serve import hooks
    from lmm.serve import mcp as mcp_server
    from lmm.store.cognitions import edit, remember
    from lmm.ui.memories import edit_action, remember_action

    home = tmp_path / "home"
    monkeypatch.setenv("LMM_HOME", str(home))
    store = Store(home / "lmm.db")
    for i, case in enumerate(CORPUS):
        where = ("library", "mcp", "ui", "edit", "ui-edit")[i % 5]
        if where == "library":
            remember(store, f"note {i}: {case.text}", project="/home/dev/app")
        elif where == "mcp":
            mcp_server.remember(f"note {i}: {case.text}", project="/home/dev/app")
        elif where == "ui":
            remember_action(store, {"text": f"note {i}: {case.text}"})
        else:
            with store.transaction():
                first = remember(store, f"a plain note number {i}", project="/home/dev/app")
            if where == "edit":
                with store.transaction():
                    edit(store, first, f"note {i}: {case.text}")
            else:
                edit_action(store, first, {"text": f"note {i}: {case.text}"})
    outputs = [_store_bytes(home)]  # the WAL holds every write so far
    outputs += _ui_pages(store, sessions=[])
    store.close()
    capsys.readouterr()
    assert main(["memories", "--all", "--json", "-n", "10000"]) == 0
    memories = capsys.readouterr().out
    assert len(json.loads(memories)) >= len(CORPUS)
    assert main(["export", str(tmp_path / "out.jsonl")]) == 0
    outputs += [memories, (tmp_path / "out.jsonl").read_text()]
    for case in CORPUS[:30]:
        prompt = case.context.replace("{}", "")[:200] + " note"
        hook_json = {"hook_event_name": "UserPromptSubmit", "session_id": "x", "prompt": prompt,
                     "cwd": "/home/dev/app", "transcript_path": ""}  # fmt: skip
        out = io.StringIO()
        hooks.run_hook("UserPromptSubmit", io.BytesIO(json.dumps(hook_json).encode()), out)
        outputs += [out.getvalue(), mcp_server.search(prompt, project="/home/dev/app")]
    outputs.append(_store_bytes(home))
    assert "[REDACTED:" in memories and "[REDACTED:" in outputs[1]  # the CLI and the UI
    assert _leaks(outputs) == []


def test_keywords_never_hold_a_piece_of_a_secret(tmp_path: Path) -> None:
    from lmm.store.cognitions import Cognition, add, get, keywords_of, remember

    assert keywords_of("deploy with DB_PASSWORD=Hunter2x9 on prod") == [
        "db_password",
        "deploy",
        "prod",
    ]
    store = Store(tmp_path / "lmm.db")
    cid = remember(store, "staging: user deploy, password: Hunter2hunter")
    cog = get(store, cid)
    assert cog is not None and cog.keywords == ["deploy", "password", "staging", "user"]
    # an extractor's keywords are checked against the text they were taken from
    text = "always export GITHUB_TOKEN=ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8 first"
    token = "ghp_a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6q7r8"
    keywords = ["export", token, token[4:], "first"]
    cid = add(store, Cognition(text=text, category="workflow", origin="rules", keywords=keywords))
    cog = get(store, cid)
    assert cog is not None and cog.keywords == ["export", "first"]


def _hostile_export(path: Path) -> None:
    """An export file whose every turn and cognition field carries a corpus secret."""
    from assets.secrets import CORPUS
    from lmm.text import consolidate

    rows: list[dict[str, object]] = [{"format": "lmm-export", "version": 1}]
    rows.append({"table": "projects", "path": "/home/dev/app", "name": "app",
                 "created_at": "2026-01-01T00:00:00Z"})  # fmt: skip
    rows.append({"table": "sessions", "id": "s1", "source": "claude", "title": None,
                 "parent_session_id": None, "started_at": None, "ended_at": None, "extra": "{}",
                 "project": "/home/dev/app"})  # fmt: skip
    for i, case in enumerate(CORPUS):
        t = case.text
        rows.append({"table": "turns", "session_id": "s1", "key": f"k{i} {t}", "uuid": f"u{i} {t}",
                     "parent_uuid": t, "uuids": json.dumps([t]), "message_id": t,
                     "role": "user", "kind": "message", "text": t, "thinking": t,
                     "tools": json.dumps([{"name": "Bash", "input": t}]), "timestamp": t,
                     "cwd": t, "git_branch": t, "line_no": i, "is_sidechain": 0, "agent_id": t,
                     "parent_tool_use_id": t, "dia_id": t, "speaker": t,
                     "files": json.dumps([t]), "extra": json.dumps({"x": t}),
                     "project": "/home/dev/app", "source": None})  # fmt: skip
        uid = f"{i:024x}"
        keywords = json.dumps(sorted(consolidate.tokens(t)))
        rows.append({"table": "cognitions", "uid": uid, "category": "fact", "subject": t,
                     "text": t, "keywords": keywords, "salience": 0.5, "evidence": 1,
                     "origin": "user", "status": "active", "superseded_by": None,
                     "valid_from": None, "valid_until": None, "created_at": "2026-01-01",
                     "updated_at": "2026-01-01", "extra": json.dumps({"value": t}),
                     "project": "/home/dev/app"})  # fmt: skip
        rows.append({"table": "cognition_sources", "cognition_id": uid, "session_id": "s1",
                     "turn_key": f"k{i} {t}", "uuid": t, "timestamp": None, "file_path": t,
                     "line_no": 1, "quote": t})  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_no_corpus_secret_survives_an_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from assets.secrets import CORPUS
    from lmm.cli import main
    from lmm.store.exchange import import_jsonl

    home = tmp_path / "home"
    monkeypatch.setenv("LMM_HOME", str(home))
    _hostile_export(tmp_path / "in.jsonl")
    store = Store(home / "lmm.db")
    counts = import_jsonl(store, tmp_path / "in.jsonl")
    assert counts["turns"] == counts["cognitions"] == len(CORPUS)
    outputs = [_store_bytes(home)]
    store.close()
    capsys.readouterr()
    assert main(["memories", "--json", "-n", "10000"]) == 0
    memories = capsys.readouterr().out
    assert len(json.loads(memories)) == len(CORPUS)
    assert main(["export", str(tmp_path / "out.jsonl")]) == 0
    outputs += [memories, (tmp_path / "out.jsonl").read_text(), _store_bytes(home)]
    assert _leaks(outputs) == []


PLACES = ("user", "assistant", "thinking", "tool_input", "tool_result")


def _placed(i: int, place: str, text: str, parent: str | None) -> dict[str, object]:
    """One transcript record with `text` in `place`."""
    uuid = f"{i}-{place}"
    content: object
    if place == "user":
        role, content = "user", text
    elif place == "assistant":
        role, content = "assistant", [{"type": "text", "text": text}]
    elif place == "thinking":
        role, content = "assistant", [{"type": "thinking", "thinking": text, "signature": "sig"},
                                      {"type": "text", "text": "Checked."}]  # fmt: skip
    elif place == "tool_input":
        role, content = "assistant", [{"type": "tool_use", "id": f"toolu_{i}", "name": "Bash",
                                       "input": {"command": text}}]  # fmt: skip
    else:
        role, content = "user", [{"type": "tool_result", "tool_use_id": f"toolu_{i}",
                                  "content": text}]  # fmt: skip
    message: dict[str, object] = {"role": role, "content": content}
    if role == "assistant":
        message.update(id=f"msg_{i}_{place}", model="claude", type="message")
    return {"type": role, "uuid": uuid, "parentUuid": parent, "sessionId": f"s{i}",
            "cwd": "/home/dev/app", "timestamp": f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}Z",
            "message": message}  # fmt: skip


def test_no_corpus_secret_leaks_from_any_place_in_a_transcript(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every format × user text, assistant text, thinking, tool input and tool result, through a
    real ingest and extraction: 0 leaks in the database file, its WAL, `lmm export`,
    `lmm memories --json`, `lmm search --json`, the UI's pages, the UserPromptSubmit hook and MCP
    search."""
    from assets.secrets import CORPUS
    from lmm.cli import main
    from lmm.memory.extract import get_extractor, run_extraction
    from lmm.serve import hooks
    from lmm.serve import mcp as mcp_server

    home = tmp_path / "home"
    monkeypatch.setenv("LMM_HOME", str(home))
    src = tmp_path / "projects" / "-home-dev-app"
    src.mkdir(parents=True)
    lines = []
    for i, case in enumerate(CORPUS):
        parent = None
        for place in PLACES:
            rec = _placed(i, place, f"We always deploy with this. {case.text}", parent)
            lines.append(json.dumps(rec))
            parent = str(rec["uuid"])
    (src / "places.jsonl").write_text("\n".join(lines) + "\n")
    store = Store(home / "lmm.db")
    report = ingest(store, [src])
    assert report.turns_new >= len(CORPUS) * 4
    run_extraction(store, get_extractor("rules"))
    outputs = [_store_bytes(home)]  # the WAL holds every page written so far
    outputs += _ui_pages(store, sessions=[f"s{i}" for i in range(len(CORPUS))])
    store.close()
    capsys.readouterr()
    assert main(["memories", "--all", "--json", "-n", "100000"]) == 0
    assert main(["search", "deploy", "--json", "-n", "1000"]) == 0
    assert main(["export", str(tmp_path / "out.jsonl")]) == 0
    printed, exported = capsys.readouterr().out, (tmp_path / "out.jsonl").read_text()
    outputs += [printed, exported]
    for case in CORPUS[::4]:
        prompt = case.context.replace("{}", "")[:200] + " deploy"
        hook_json = {"hook_event_name": "UserPromptSubmit", "session_id": "x", "prompt": prompt,
                     "cwd": "/home/dev/app", "transcript_path": ""}  # fmt: skip
        out = io.StringIO()
        hooks.run_hook("UserPromptSubmit", io.BytesIO(json.dumps(hook_json).encode()), out)
        outputs += [out.getvalue(), mcp_server.search(prompt, project="/home/dev/app")]
    outputs.append(_store_bytes(home))
    assert "[REDACTED:" in printed and "[REDACTED:" in exported
    assert _leaks(outputs) == []


def test_a_secret_across_a_cut_is_never_stored_in_part(tmp_path: Path) -> None:
    """Tool inputs keep 4,000 characters, tool results and long turns a head and a tail: a
    secret that straddles a cut is dropped whole, never kept in part."""
    from assets.secrets import CORPUS

    token = next(c for c in CORPUS if c.name == "github-pat").secret
    pem = next(c for c in CORPUS if c.name == "pem-rsa").secret
    records = []
    for j, at in enumerate(range(3960, 4010, 7)):  # the JSON input `{"command": "` is 13 chars
        command = "echo " + "a" * (at - 18) + " " + token + " done"
        records.append(_placed(j, "tool_input", command, None))
    for j, at in enumerate((1900, 1990, 2000)):
        records.append(_placed(20 + j, "tool_result", "x " * (at // 2) + pem + " y" * 3000, None))
        records.append(_placed(30 + j, "tool_result", "y " * 3000 + pem + " x" * (at // 4), None))
    records.append(_placed(40, "user", "z " * 39_990 + pem + " w" * 30_000, None))
    src = tmp_path / "projects" / "-home-dev-app"
    src.mkdir(parents=True)
    (src / "cuts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    store = Store(tmp_path / "home" / "lmm.db")
    ingest(store, [src])
    assert store.db.execute("SELECT count(*) FROM turns").fetchone()[0] == len(records)
    raw = _store_bytes(tmp_path / "home")
    store.close()
    pieces = [p for s in (token, *pem.splitlines()[1:-1]) for p in (s[:12], s[-12:])]
    assert [p for p in pieces if p in raw] == []
