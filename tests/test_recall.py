"""Recall over the bundled sample history: briefs, silence on unrelated queries, the project
brief, the `lmm recall` command, and (slow) a real packaged model writing the brief."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lmm.cli import main
from lmm.lm.models import ScriptedLM
from lmm.retrieve import evidence
from lmm.retrieve.recall import (
    RecallConfig,
    project_brief,
    recall,
    recent_sessions,
    resolve_project,
    to_json,
)
from lmm.retrieve.synth import SynthConfig, approx_tokens, citations
from lmm.store import cognitions
from lmm.store.db import Store, open_store

PROJECT = "/home/dev/tidepool"
S2 = "1d0fc087-8764-4ca2-9ad8-4fd83b0eb742"
EXTRACTIVE = RecallConfig(generate=False)


def test_recall_finds_the_busy_timeout_lesson(sample_memories: Store) -> None:
    result = recall(sample_memories, "sqlite3 database is locked while syncing", config=EXTRACTIVE)
    assert result.brief.mode == "extractive"
    assert result.brief.text is not None
    lines = result.brief.text.splitlines()
    [line] = [line for line in lines[:3] if "PRAGMA busy_timeout = 30000" in line]
    assert line.endswith("(2026-01-07)")
    assert "\n" not in line and "[tool:" not in result.brief.text
    assert [line[: line.index("]") + 1] for line in lines] == [
        f"[{n}]" for n in range(1, len(lines) + 1)
    ]
    assert approx_tokens(result.brief.text) <= 400
    assert len(result.hits) <= EXTRACTIVE.k


def test_recall_says_nothing_when_nothing_is_relevant(sample_memories: Store) -> None:
    result = recall(sample_memories, "what is the weather like in Paris", config=EXTRACTIVE)
    assert (result.brief.text, result.brief.mode, result.brief.evidence) == (None, "none", [])
    assert recall(sample_memories, "   ", config=EXTRACTIVE).hits == []


def test_a_question_about_a_topic_the_memory_never_saw_gets_nothing(sample_memories: Store) -> None:
    if not evidence.common_words():
        pytest.skip("needs the packaged embedder's word list: pip install 'lmm[embed]'")
    asked = "how does the sync job read its logs from journald when the database is locked?"
    result = recall(sample_memories, asked, project=PROJECT, config=EXTRACTIVE)
    assert (result.brief.text, result.why) == (None, "the memory never mentions journald")
    # the same words without the unknown name, or as a request for work, still recall
    known = recall(
        sample_memories, asked.replace(" from journald", ""), project=PROJECT, config=EXTRACTIVE
    )
    assert known.brief.text and "busy_timeout" in known.brief.text
    work = recall(sample_memories, "ship journald logs; the database is locked", project=PROJECT,
                  config=EXTRACTIVE)  # fmt: skip
    assert work.brief.text and "busy_timeout" in work.brief.text
    everything = RecallConfig(generate=False, unseen_topics=False)
    off = recall(sample_memories, asked, project=PROJECT, config=everything)
    assert off.brief.text and "busy_timeout" in off.brief.text


def test_topic_terms_are_the_words_no_dictionary_holds() -> None:
    if not evidence.common_words():
        pytest.skip("needs the packaged embedder's word list: pip install 'lmm[embed]'")
    assert evidence.topic_terms("did we turn on PGO for the fuzz targets, computes swapped?") == [
        "pgo", "fuzz"
    ]  # fmt: skip
    assert evidence.asks("which crate draws the table?") and evidence.asks("Did it pass")
    assert not evidence.asks("add a --json flag to the report command")
    assert evidence.asks("remind me how we fixed the locked database")
    assert evidence.asks("walk me through cutting a release") and evidence.asks("summarize CI")
    assert not evidence.asks("give the endpoint a timeout")


def test_recall_scopes_to_a_project_and_excludes_a_session(sample_memories: Store) -> None:
    assert (
        recall(sample_memories, "database is locked", project="/elsewhere", config=EXTRACTIVE).hits
        == []
    )
    result = recall(sample_memories, "database is locked", project=PROJECT, config=EXTRACTIVE)
    assert S2 in {h.source.session_id for h in result.hits}
    result = recall(sample_memories, "database is locked", config=EXTRACTIVE, exclude_session=S2)
    assert S2 not in {h.source.session_id for h in result.hits}


def test_resolve_project_climbs_to_the_stored_repository(sample_memories: Store) -> None:
    assert resolve_project(sample_memories, "/home/dev/tidepool/src/tidepool") == PROJECT
    assert resolve_project(sample_memories, PROJECT + "/") == PROJECT
    assert resolve_project(sample_memories, "/home/dev/tidepoolx") == "/home/dev/tidepoolx"
    assert resolve_project(sample_memories, None) is None


def _cite_busy_timeout(messages: list[dict[str, str]]) -> str:
    """A fake reader that cites whichever evidence line mentions busy_timeout, and invents one."""
    lines = messages[-1]["content"].splitlines()
    n = next(line[1 : line.index("]")] for line in lines if "busy_timeout" in line)
    return f"Set `PRAGMA busy_timeout = 30000` in db.connect() [{n}]. Buy more RAM [99]."


def test_recall_with_an_lm_writes_a_grounded_brief(sample_memories: Store) -> None:
    lm = ScriptedLM(respond=_cite_busy_timeout)
    result = recall(
        sample_memories, "database is locked", lm=lm, config=RecallConfig(generate=True)
    )
    assert result.brief.mode == "generated"
    assert result.brief.text is not None
    body, sources = result.brief.text.split("\nSources:\n")
    n = _cite_busy_timeout(lm.calls[0]).split("[")[1].split("]")[0]
    assert body == f"Set `PRAGMA busy_timeout = 30000` in db.connect() [{n}]."
    assert sources == f"[{n}] 2026-01-07, session 1d0fc087"
    assert result.brief.dropped == ["Buy more RAM [99]."]
    assert len(lm.calls) == 1


def test_to_json_shape(sample_memories: Store) -> None:
    out = to_json(recall(sample_memories, "database is locked", config=EXTRACTIVE))
    assert sorted(out) == [
        "brief", "brief_seconds", "dropped", "evidence", "hits", "mode", "model", "query",
        "seconds", "why",
    ]  # fmt: skip
    assert sorted(out["hits"][0]) == ["category", "id", "kind", "score", "source", "text"]
    assert sorted(out["hits"][0]["source"]) == [
        "file_path",
        "project",
        "session_id",
        "timestamp",
        "uuid",
    ]
    assert out["evidence"][0]["n"] == 1


def test_project_brief_lists_cognitions_and_recent_sessions(sample_memories: Store) -> None:
    brief = project_brief(sample_memories, PROJECT)
    assert brief is not None
    lines = brief.splitlines()
    assert lines[0] == "Preferences:"
    assert "- Ground rule number one: use uv, not pip. (2026-01-05)" in lines
    recent = lines[lines.index("Recent sessions:") + 1 :]
    assert recent[0].startswith("- 2026-01-26 (eddc9ef6): Add The Battery, NY")
    assert recent[1].startswith("- 2026-01-21 (af83d107): Let's cut 0.3.0.")
    assert approx_tokens(brief) <= 2_000
    short = project_brief(sample_memories, PROJECT, max_tokens=60)
    assert short is not None and approx_tokens(short) <= 60


def test_project_brief_includes_user_wide_cognitions_only_from_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LMM_HOME", str(tmp_path))
    with open_store() as s:
        assert project_brief(s, "/p/b") is None
        emojis = cognitions.remember(s, "Never put emojis in commit messages.")
        tabs = cognitions.remember(s, "Makefiles use tabs.", project="/p/a", category="workflow")
        day = {
            i: (c.valid_from or "")[:10] or "undated"
            for i in (emojis, tabs)
            if (c := cognitions.get(s, i))
        }
        assert project_brief(s, "/p/b") == (
            f"Preferences:\n- Never put emojis in commit messages. ({day[emojis]})"
        )
        assert project_brief(s, "/p/a") == (
            f"Preferences:\n- Never put emojis in commit messages. ({day[emojis]})\n"
            f"Workflow:\n- Makefiles use tabs. ({day[tabs]})"
        )


def test_recent_sessions_skip_subagents_and_command_wrappers(sample_memories: Store) -> None:
    lines = recent_sessions(sample_memories, PROJECT, limit=7)
    assert len(lines) == 7
    assert not any("&lt;" in line or "<bash" in line for line in lines)


def test_cli_recall_json_no_generate(
    sample_memories: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    sample_memories.close()
    assert main(["recall", "database is locked", "--no-generate", "--json", "--local"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["mode"] == "extractive"
    assert "busy_timeout = 30000" in out["brief"]
    assert all(
        sorted(h) == ["category", "id", "kind", "score", "source", "text"] for h in out["hits"]
    )
    assert main(["recall", "weather in Paris", "--no-generate", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["brief"] is None
    assert main(["recall", "weather in Paris", "--no-generate"]) == 0
    assert capsys.readouterr().out == "no relevant memory\n"


def test_cli_recall_config_errors_name_the_flag(
    sample_memories: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    sample_memories.close()
    assert main(["recall", "x", "--no-generate", "--max-tokens", "3"]) == 2
    assert "--max-tokens" in capsys.readouterr().err


@pytest.mark.slow
def test_recall_with_the_packaged_smollm2(sample_memories: Store) -> None:
    from lmm.lm.models import load

    lm = load("smollm2")
    config = RecallConfig(generate=True, synth=SynthConfig(max_tokens=300))
    result = recall(
        sample_memories, "sqlite3.OperationalError: database is locked", lm=lm, config=config
    )
    assert result.brief.mode in ("generated", "fallback")
    assert result.brief.text is not None
    assert len(lm.tokenizer(result.brief.text)["input_ids"]) <= 300  # real tokens, not estimates
    if result.brief.mode == "generated":
        body, sources = result.brief.text.split("\nSources:\n")
        cited = set(citations(body))
        assert cited and cited <= {e.n for e in result.brief.evidence}
        assert [int(line[1 : line.index("]")]) for line in sources.splitlines()] == sorted(cited)


def test_hook_cli_mcp_and_preview_inject_the_same_brief(
    sample_memories: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    from lmm.serve import hooks
    from lmm.serve import mcp as mcp_server
    from lmm.ui.recall import hook_config

    query = "sqlite3 database is locked while syncing"
    expected = recall(
        sample_memories, query, project=PROJECT, config=hook_config()
    )  # the preview's call
    assert expected.brief.text
    wrapped = hooks.wrap_memory(expected.brief.text, title="recall")
    hook = hooks.HookInput("UserPromptSubmit", prompt=query, cwd=PROJECT + "/src")
    out = hooks.respond(hook)
    assert out is not None and out["hookSpecificOutput"]["additionalContext"] == wrapped
    assert mcp_server.recall(query, project=PROJECT) == wrapped
    args = ["recall", query, "--project", PROJECT, "--no-generate", "--local", "--json"]
    assert main([*args, "--embedder", "none"]) == 0
    assert json.loads(capsys.readouterr().out)["brief"] == expected.brief.text


def test_cli_recall_on_none_nothing_injects_no_brief(
    sample_memories: Store, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from lmm.lm import models

    sample_memories.close()
    monkeypatch.setattr(models, "generator", lambda spec=None, device="auto": ScriptedLM(["NONE"]))
    query = ["recall", "database is locked", "--generate", "--local"]
    assert main([*query, "--on-none", "nothing"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("no relevant memory\n\n(no brief: scripted found nothing")
    assert main(query) == 0  # the default: the evidence brief
    assert "busy_timeout = 30000" in capsys.readouterr().out


def test_the_rules_of_a_request_come_on_top_of_its_evidence(sample_memories: Store) -> None:
    prompt = "run the tests for the sync job, the database is locked again"
    on = recall(sample_memories, prompt, project=PROJECT, config=EXTRACTIVE).brief.text
    off = recall(
        sample_memories, prompt, project=PROJECT, config=RecallConfig(generate=False, rules=0)
    )
    assert on is not None and off.brief.text is not None
    body = [line.split("] ", 1)[1] for line in on.splitlines()]
    assert body[0].startswith("To run the tests: `make test`.")
    assert all(line.split("] ", 1)[1] in body for line in off.brief.text.splitlines())
