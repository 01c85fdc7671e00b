"""User-wide memory: rules for all work and rules said in two projects reach every project (a new,
empty one included, through the real hook command), prompts only when relevant, never against a
project's own memory; moving a memory between scopes from the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assets.hookproc import run_hook_command
from lmm.cli import main
from lmm.errors import CognitionError
from lmm.memory.cues import for_all_work
from lmm.memory.extract import run_extraction
from lmm.memory.extract_rules import RuleExtractor
from lmm.records import SessionInfo, Turn
from lmm.retrieve.recall import RecallConfig, project_brief, recall
from lmm.store import cognitions
from lmm.store.cognitions import Cognition
from lmm.store.db import Store

A, B, C = "/work/alpha", "/work/beta", "/work/gamma"


def tell(store: Store, sid: str, project: str, day: int, *texts: str) -> None:
    """A session of `project` in which the user says `texts`, one turn each."""
    store.add_session(SessionInfo(sid, "claude", project=project))
    store.add_turns(
        Turn(sid, f"{sid}-{i}", "user", "message", text, uuid=f"{sid}-{i}", cwd=project,
             timestamp=f"2026-02-{day:02d}T10:{i:02d}:00Z")
        for i, text in enumerate(texts)
    )  # fmt: skip
    run_extraction(store, RuleExtractor())


def active(store: Store, **kw: object) -> dict[str, Cognition]:
    return {c.text: c for c in cognitions.list_(store, **kw)}  # type: ignore[arg-type]


# ---- what the extractor reads as a rule for all work


@pytest.mark.parametrize(
    "sentence",
    [
        "From now on, in every project, use uv, not pip.",
        "Always write commit messages in the imperative mood.",
        "Never add emojis to commit messages anywhere.",
        "When I work on Python projects, lint with ruff.",
        "Across all my repos, use conventional commits.",
        "Going forward, prefer small pull requests.",
        "Pnpm only — never npm or yarn.",
        "I always want type hints on public functions.",
        "Please never force-push.",
    ],
)
def test_rule_phrasing_is_for_all_work(sentence: str) -> None:
    assert for_all_work(sentence)


@pytest.mark.parametrize(
    "sentence",
    [
        "Use httpx, not requests.",
        "Always end method names with '_m'.",
        "In this repo, always run make lint before pushing.",
        "Always run the tests with `make test` before committing.",
        "From now on, keep the changelog in docs/changes.md.",
        "We deploy to Vercel.",
        "We always squash before merging.",
        "Keep in mind that the build always fails on Mondays.",
        "I don't want node anywhere in this repo.",
        "Never call the network from here, anywhere.",
        "The bench takes ages and I never look at the html reports.",
        "Tables: tenants, api_keys (hashed, never store raw keys), quotas.",  # an aside
        "With the 5s flush the usage page always lags behind.",  # what a thing does
    ],
)
def test_project_statements_are_not(sentence: str) -> None:
    assert not for_all_work(sentence)


def test_only_an_instruction_is_for_all_work_by_always_alone() -> None:
    assert for_all_work("Always pin versions.")
    assert not for_all_work("Always pin versions.", instruction=False)
    assert for_all_work("In every project we pin versions.", instruction=False)


def test_the_extractor_scopes_rules_and_keeps_project_statements(store: Store) -> None:
    tell(store, "s1", A, 1,
         "From now on, in every project, use uv, not pip.",
         "Always end method names with '_m'.",
         "Use httpx, not requests.",
         "Let's go with FastAPI, we always did.",
         "When I work on Go projects, let's go with cobra for the CLI.")  # fmt: skip
    alpha = store.project_id(A)
    got = {c.text: (c.scope, c.project, c.learned_in, c.scope_by) for c in cognitions.list_(store)}
    assert got == {
        "From now on, in every project, use uv, not pip.": ("user", None, alpha, "rule"),
        "Always end method names with '_m'.": ("project", A, alpha, None),
        "Use httpx, not requests.": ("project", A, alpha, None),
        "Let's go with FastAPI, we always did.": ("project", A, alpha, None),
        "When I work on Go projects, let's go with cobra for the CLI.": ("user", None, alpha,
                                                                          "rule"),
    }  # fmt: skip
    assert sorted(c.text for c in cognitions.list_(store, scope="user")) == [
        "From now on, in every project, use uv, not pip.",
        "When I work on Go projects, let's go with cobra for the CLI.",
    ]
    assert sorted(c.text for c in cognitions.list_(store, project=A, scope="project")) == [
        "Always end method names with '_m'.",
        "Let's go with FastAPI, we always did.",
        "Use httpx, not requests.",
    ]


def test_a_rule_said_in_a_second_project_becomes_user_wide(store: Store) -> None:
    tell(store, "s1", A, 1, "Use pytest for the tests, not unittest.")
    assert [c.scope for c in cognitions.list_(store)] == ["project"]
    assert project_brief(store, C) is None
    tell(store, "s2", B, 2, "Use pytest for the tests, not unittest.")
    [cog] = cognitions.list_(store, status=None)
    assert (cog.scope, cog.scope_by, cog.learned_in_path, cog.evidence) == (
        "user", "repeated", A, 2)  # fmt: skip
    assert [s.session_id for s in cog.sources] == ["s1", "s2"]
    brief = project_brief(store, C)
    assert brief is not None and "Use pytest for the tests, not unittest." in brief
    # extraction again changes nothing, and a third project adds evidence to the same row
    before = cognitions.dump(store)
    run_extraction(store, RuleExtractor(), full=True)
    assert cognitions.dump(store) == before
    tell(store, "s3", C, 3, "Use pytest for the tests, not unittest!")
    assert [(c.id, c.evidence) for c in cognitions.list_(store, status=None)] == [(cog.id, 3)]


def test_a_memory_the_user_kept_in_its_project_is_not_promoted(store: Store) -> None:
    tell(store, "s1", A, 1, "Use pytest for the tests, not unittest.")
    [cog] = cognitions.list_(store)
    assert cog.id is not None
    cognitions.set_scope(store, cog.id, "project")
    tell(store, "s2", B, 2, "Use pytest for the tests, not unittest.")
    assert sorted((c.project, c.scope_by) for c in cognitions.list_(store)) == [
        (A, "user"), (B, None)]  # fmt: skip


# ---- what each project sees


def test_the_project_wins_over_the_user_rule_where_they_disagree(store: Store) -> None:
    tell(store, "s1", A, 1, "Always use uv, not pip.")
    tell(store, "s2", B, 2, "Use poetry, not uv.")
    rule, own = active(store)["Always use uv, not pip."], active(store)["Use poetry, not uv."]
    assert (rule.scope, own.scope, rule.status) == ("user", "project", "active")
    beta, gamma = project_brief(store, B), project_brief(store, C)
    assert beta is not None and gamma is not None
    assert "Use poetry, not uv." in beta and "Always use uv, not pip." not in beta
    assert "Always use uv, not pip." in gamma and "poetry" not in gamma
    ask = "Which package manager: uv or poetry?"
    cfg = RecallConfig(generate=False)
    in_beta = recall(store, ask, project=B, config=cfg)
    assert [h.text for h in in_beta.hits if h.kind == "cognition"] == ["Use poetry, not uv."]
    in_new = recall(store, ask, project="/work/new", config=cfg)
    assert [h.text for h in in_new.hits] == ["Always use uv, not pip."]


def test_where_a_rule_was_learned_a_later_contradiction_replaces_it(store: Store) -> None:
    tell(store, "s1", A, 1, "Always use uv, not pip.")
    tell(store, "s2", A, 2, "Use poetry, not uv.")
    old = cognitions.list_(store, status="superseded")
    assert [(c.text, c.scope) for c in old] == [("Always use uv, not pip.", "user")]
    assert [c.text for c in cognitions.list_(store)] == ["Use poetry, not uv."]


def test_prompts_in_a_new_folder_get_user_rules_only_when_relevant(store: Store) -> None:
    tell(store, "s1", A, 1,
         "Never add emojis to commit messages anywhere.",
         "Always use uv, not pip.",
         "Use the staging database for integration tests.")  # fmt: skip
    cfg = RecallConfig(generate=False)
    new = "/tmp/brand-new-folder"
    found = recall(store, "Write the commit message for this change", project=new, config=cfg)
    assert found.brief.text is not None
    assert "Never add emojis to commit messages anywhere." in found.brief.text
    assert "uv" not in found.brief.text and "staging" not in found.brief.text
    nothing = recall(store, "Center the login form with CSS grid", project=new, config=cfg)
    assert nothing.brief.text is None
    tell(store, "s2", B, 2, "The login form lives in the accounts app.")  # a known project
    there = recall(store, "Write the commit message for this change", project=B, config=cfg)
    assert there.brief.text is not None
    assert "Never add emojis to commit messages anywhere." in there.brief.text
    assert recall(store, "Rename the CSS grid helper", project=B, config=cfg).brief.text is None


# ---- the installed hook command, in a folder lmm has never seen


def _context(proc: object) -> str | None:
    out = proc.stdout.decode()  # type: ignore[attr-defined]
    if not out.strip():
        return None
    return str(json.loads(out)["hookSpecificOutput"]["additionalContext"])


def test_hooks_in_an_empty_folder_inject_the_user_rules(tmp_path: Path) -> None:
    home = tmp_path / "home"
    empty = tmp_path / "empty"
    empty.mkdir()
    with Store(home / "lmm.db") as s:
        tell(s, "s1", A, 1, "Always end method names with '_m'.")
    start = {"session_id": "n1", "cwd": str(empty), "hook_event_name": "SessionStart",
             "source": "startup", "transcript_path": str(empty / "n1.jsonl")}  # fmt: skip
    assert _context(run_hook_command(home, start, "SessionStart")) is None  # A's own: not here
    with Store(home / "lmm.db") as s:
        tell(s, "s2", A, 2, "From now on, in every project, never add emojis to commit messages.")
    text = _context(run_hook_command(home, start, "SessionStart"))
    assert text is not None and text.startswith('<lmm-memory kind="project">')
    assert "never add emojis to commit messages" in text and "_m" not in text
    prompt = {**start, "hook_event_name": "UserPromptSubmit",
              "prompt": "Commit this with a short message"}  # fmt: skip
    said = _context(run_hook_command(home, prompt, "UserPromptSubmit"))
    assert said is not None and "never add emojis to commit messages" in said
    other = {**prompt, "prompt": "Rename the helper in parser.py"}
    assert _context(run_hook_command(home, other, "UserPromptSubmit")) is None


# ---- moving a memory between scopes


def test_cli_moves_a_memory_between_scopes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LMM_HOME", str(tmp_path))
    with Store(tmp_path / "lmm.db") as s:
        tell(s, "s1", A, 1, "Use httpx, not requests.")
        [cog] = cognitions.list_(s)
    assert main(["memories", "--scope", "user"]) == 0
    assert capsys.readouterr().out.startswith("no memories")
    assert main(["scope", str(cog.id), "user"]) == 0
    assert capsys.readouterr().out == f"#{cog.id} now applies to every project\n"
    assert main(["memories", "--scope", "user", "--json"]) == 0
    [shown] = json.loads(capsys.readouterr().out)
    assert (shown["id"], shown["project_id"], shown["scope_by"]) == (cog.id, None, "user")
    assert main(["memories", "--scope", "user"]) == 0
    assert "(all projects: set by you)" in capsys.readouterr().out
    with Store(tmp_path / "lmm.db") as s:
        assert project_brief(s, C) is not None  # every project sees it now
        run_extraction(s, RuleExtractor(), full=True)  # and extraction leaves it where it is
        assert [(c.id, c.scope) for c in cognitions.list_(s, status=None)] == [(cog.id, "user")]
    assert main(["scope", str(cog.id), "project"]) == 0  # back where it was learned
    assert capsys.readouterr().out == f"#{cog.id} now applies to {A}\n"
    assert main(["scope", str(cog.id), "project", "--project", B]) == 0
    assert capsys.readouterr().out == f"#{cog.id} now applies to {B}\n"
    assert main(["memories", "--scope", "project", "--project", B, "--json"]) == 0
    assert [c["id"] for c in json.loads(capsys.readouterr().out)] == [cog.id]
    assert main(["scope", "999", "user"]) == 2
    assert "there is no cognition #999" in capsys.readouterr().err


def test_a_user_wide_memory_without_a_project_needs_one_to_move(store: Store) -> None:
    cog_id = cognitions.remember(store, "Never commit secrets.")
    with pytest.raises(CognitionError, match="--project PATH"):
        cognitions.set_scope(store, cog_id, "project")
    assert cognitions.set_scope(store, cog_id, "project", project=A) == cog_id
    moved = cognitions.get(store, cog_id)
    assert moved is not None and (moved.project, moved.learned_in_path) == (A, A)


def test_moving_onto_a_row_that_says_the_same_merges_into_it(store: Store) -> None:
    tell(store, "s1", A, 1, "Use httpx, not requests.")
    tell(store, "s2", B, 2, "Use httpx, not requests.")
    [shared] = cognitions.list_(store)
    assert shared.id is not None and shared.scope == "user"
    cognitions.set_scope(store, shared.id, "project")  # back to alpha, kept there
    mine = cognitions.remember(store, "Use httpx, not requests.", project=B)
    assert cognitions.set_scope(store, mine, "project", project=A) == shared.id
    old = cognitions.get(store, mine)
    assert old is not None and (old.status, old.superseded_by) == ("superseded", shared.id)


def test_a_project_that_comes_back_to_the_user_rule_drops_its_own_exception(store: Store) -> None:
    tell(store, "s1", A, 1, "Always use uv, not pip.")
    tell(store, "s2", B, 2, "Use poetry, not uv.")
    tell(store, "s3", B, 3, "Use uv, not pip.")
    [rule] = cognitions.list_(store, project=B)
    assert (rule.text, rule.scope, rule.evidence) == ("Always use uv, not pip.", "user", 2)
    [old] = cognitions.list_(store, status="superseded")
    assert (old.text, old.project, old.superseded_by) == ("Use poetry, not uv.", B, rule.id)
    brief = project_brief(store, B)
    assert brief is not None
    memories = brief.split("Recent sessions:")[0]
    assert "Always use uv, not pip." in memories and "poetry" not in memories


def test_dense_recall_in_a_new_folder_sees_a_memory_once_it_is_moved(store: Store) -> None:
    from lmm.retrieve.embed import FakeEmbedder, embed_pending
    from lmm.retrieve.search import retrieve_user_wide

    tell(store, "s1", A, 1, "Use httpx, not requests.")
    embedder = FakeEmbedder()
    embed_pending(store, embedder)
    [cog] = cognitions.list_(store)
    assert cog.id is not None
    ask = "httpx or requests for the client?"
    assert retrieve_user_wide(store, ask, embedder=embedder) == []  # loads the vector index
    with store.transaction():
        cognitions.set_scope(store, cog.id, "user")
    [hit] = retrieve_user_wide(store, ask, embedder=embedder)
    assert (hit.id, sorted(hit.signals)) == (cog.id, ["bm25", "dense", "salience"])


def test_cli_marks_user_rules_a_project_overrides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LMM_HOME", str(tmp_path))
    with Store(tmp_path / "lmm.db") as s:
        tell(s, "s1", A, 1, "Always use uv, not pip.")
        tell(s, "s2", B, 2, "Use poetry, not uv.")
    assert main(["memories", "--project", B]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" ", 1)[1].split(" 2026-02-0")[1] for line in lines] == [
        "2 Use poetry, not uv.",
        "1 Always use uv, not pip. (all projects: said for all work) "
        "[not here: this project says otherwise]",
    ]
    assert main(["memories", "--project", C]) == 0
    assert "[not here" not in capsys.readouterr().out


def test_the_real_cli_in_a_new_folder_sends_the_user_rule_to_the_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real Claude Code CLI with lmm's SessionStart and UserPromptSubmit hooks, in a folder
    lmm has never seen: the user-wide rule reaches the model's request, the other project's own
    convention does not."""
    from assets.claude_cli import MessagesStub, Reply, claude_bin, run_claude
    from lmm.serve.claude_settings import hook_command

    if claude_bin() is None:
        pytest.skip("the real Claude Code CLI is not installed: run `make claude-cli`")
    lmm_home = tmp_path / "lmm"
    with Store(lmm_home / "lmm.db") as s:
        tell(s, "s1", A, 1,
             "From now on, in every project, never add emojis to commit messages.",
             "Always end method names with '_m'.")  # fmt: skip
    monkeypatch.setenv("LMM_HOME", str(lmm_home))
    hooks = {
        event: [{"hooks": [{"type": "command", "command": hook_command(event), "timeout": 30}]}]
        for event in ("SessionStart", "UserPromptSubmit")
    }
    stub = MessagesStub(default=Reply.text("Done."))
    src = str(Path(__file__).resolve().parents[1] / "src")  # this checkout's lmm, as installed
    with stub:
        run = run_claude(["-p", "Commit this with a short message"], stub=stub,
                         home=tmp_path / "h", settings={"hooks": hooks},
                         env={"PYTHONPATH": src})  # fmt: skip
    assert run.returncode == 0, run.stderr
    sent = stub.main_requests()[0].all_text()
    assert sent.count("never add emojis to commit messages") == 2  # session start and prompt
    assert "_m'" not in sent


def test_a_project_that_opts_out_leaves_no_trace_in_user_wide_memory(tmp_path: Path) -> None:
    from lmm.ingest import privacy
    from lmm.store.erase import purge_opted_out

    client, mine = tmp_path / "client", tmp_path / "mine"
    client.mkdir()
    mine.mkdir()
    with Store(tmp_path / "lmm.db") as s:
        tell(s, "s1", str(client), 1, "Use pytest for the tests, not unittest.")
        tell(s, "s2", str(mine), 2, "Use pytest for the tests, not unittest.")
        [rule] = cognitions.list_(s)
        assert (rule.scope, rule.learned_in_path) == ("user", str(client))
        (client / privacy.MARKER).touch()
        privacy.reset_cache()
        purge_opted_out(s, privacy.excluded)
        kept = cognitions.get(s, rule.id or 0)
        assert kept is not None and (kept.scope, kept.learned_in) == ("user", None)
        assert [src.session_id for src in kept.sources] == ["s2"]


def test_extraction_gives_back_what_a_better_reading_no_longer_takes_for_all_work(
    store: Store,
) -> None:
    """A store learned before the reading improved: its extractor-made user-wide memory that is
    no rule for all work goes back to its project on the next run; true rules and the user's own
    moves stay user-wide."""
    store.add_session(SessionInfo("s1", "claude", project=A))
    pid = store.project_id(A)
    made = {
        text: cognitions.add(
            store, Cognition(text, "preference", None, learned_in=pid, scope_by=by)
        )
        for text, by in [
            ("With the 5s flush the usage page always lags behind.", "rule"),
            ("Always write commit messages in the imperative mood.", "rule"),
            ("The dashboard always shows UTC.", "user"),
        ]
    }
    report = run_extraction(store, RuleExtractor())
    assert report.unscoped == 1 and "1 back in their project" in report.summary()
    scopes = {t: cognitions.get(store, i).scope for t, i in made.items()}  # type: ignore[union-attr]
    assert scopes == {
        "With the 5s flush the usage page always lags behind.": "project",
        "Always write commit messages in the imperative mood.": "user",
        "The dashboard always shows UTC.": "user",
    }
    assert run_extraction(store, RuleExtractor()).unscoped == 0  # once
