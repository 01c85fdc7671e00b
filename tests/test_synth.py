"""Evidence pruning, extractive and generated briefs, and the grounding check."""

from __future__ import annotations

import pytest

from lmm.errors import LmmError
from lmm.lm.models import ScriptedLM
from lmm.retrieve import evidence
from lmm.retrieve.search import Hit, Source
from lmm.retrieve.synth import (
    Evidence,
    SynthConfig,
    approx_tokens,
    citations,
    excerpt,
    extractive_brief,
    generate_brief,
    ground,
    overlap,
    select_evidence,
)

LOCKED = (
    "Fix for database is locked: set PRAGMA busy_timeout = 30000 in db.connect() and commit "
    "per station; never hold a write transaction across an HTTP request."
)
UV = "Use uv, not pip: never pip install in this repo."


def hit(id: int, text: str, score: float, *, kind: str = "turn", dense: float | None = None) -> Hit:
    return Hit(
        kind=kind,
        id=id,
        text=text,
        score=score,
        source=Source(
            session_id=f"{id:08d}-aaaa-bbbb",
            timestamp="2026-01-07T14:22:00Z",
            project="/home/dev/tidepool",
            file_path=f"/home/dev/.claude/projects/x/{id:08d}.jsonl",
        ),
        category="lesson" if kind == "cognition" else None,
        signals={} if dense is None else {"dense": {"rank": 1, "score": dense}},
    )


def test_overlap_counts_stems_of_at_most_three_terms() -> None:
    assert overlap(["database", "locked"], "the databases were locking") == 1.0
    assert overlap(["database", "locked", "timeout", "sync"], "database timeout") == 2 / 3
    assert overlap(["weather", "paris"], LOCKED) == 0.0
    assert overlap([], LOCKED) == 0.0
    assert overlap(["pi"], "pip install") == 0.0 and overlap(["pi"], "the pi is slow") == 1.0


def test_excerpt_keeps_short_text_and_windows_long_text_on_the_query() -> None:
    assert excerpt("  a\n  b  ", [], 10) == "a b"
    long = "intro " * 100 + "the busy_timeout fix is here " + "outro " * 100
    cut = excerpt(long, ["busy_timeout"], 80)
    assert cut.startswith("…") and cut.endswith("…")
    assert "busy_timeout fix is here" in cut
    assert len(cut) <= 80


def test_select_evidence_drops_irrelevant_and_duplicate_hits_and_keeps_score_order() -> None:
    hits = [
        hit(1, "unrelated chatter about the dashboard colours", 0.9),
        hit(2, LOCKED, 0.5),
        hit(3, LOCKED + " ", 0.4),  # the same words again
        hit(4, "database is locked again after the cron job started", 0.7),
    ]
    chosen = select_evidence("database is locked", hits)
    assert [(e.n, e.hit.id) for e in chosen] == [(1, 4), (2, 2)]
    quoted = [  # a shorter quote of a shown line adds nothing
        hit(1, "Fix for database is locked: set PRAGMA busy_timeout", 0.9),
        hit(2, LOCKED, 1.0),
    ]
    assert [e.hit.id for e in select_evidence("database is locked", quoted)] == [2]
    # ... but a longer line that holds a shown one says more: the fix after the error
    fix = [
        hit(1, "error: database is locked", 1.0),
        hit(2, "error: database is locked -> set PRAGMA busy_timeout = 30000", 0.9),
    ]
    assert [e.hit.id for e in select_evidence("database is locked", fix)] == [1, 2]
    assert select_evidence("weather in Paris", hits) == []


def test_select_evidence_accepts_dense_similarity_without_shared_words() -> None:
    hits = [hit(1, "WAL lets readers and the writer work at once", 0.5, dense=0.6)]
    assert [e.hit.id for e in select_evidence("concurrent access to sqlite", hits)] == [1]
    hits = [hit(1, "WAL lets readers and the writer work at once", 0.5, dense=0.1)]
    assert select_evidence("concurrent access to sqlite", hits) == []


def test_select_evidence_caps_hits_and_fits_the_budget() -> None:
    texts = [
        f"database locked case {i} " + " ".join(f"w{i}x{j}" for j in range(200)) for i in range(20)
    ]
    hits = [hit(i, text, 1.0 - i / 100) for i, text in enumerate(texts)]
    cfg = SynthConfig(evidence_tokens=1500)
    chosen = select_evidence("database locked", hits, cfg)
    assert all(len(e.text) <= evidence.UNIT_CHARS + 2 for e in chosen)  # a window, "…" each end
    assert all(e.text.startswith(f"database locked case {e.hit.id} ") for e in chosen)
    assert [e.hit.id for e in chosen] == list(range(len(chosen)))
    used = sum(approx_tokens(e.text) + 20 for e in chosen)
    assert len(chosen) >= 2 and used <= 1500 < used + approx_tokens(chosen[-1].text) + 20
    assert len(select_evidence("database locked", hits, SynthConfig(max_evidence=2))) == 2


def test_approx_tokens_counts_letters_digits_and_symbols() -> None:
    assert approx_tokens("") == 0
    assert approx_tokens("database") == 3  # 2 pieces x 1.1, rounded up
    assert approx_tokens("1d0fc087-8764") == 14  # 12 pieces: ids cost about a token a character
    assert approx_tokens("use uv, not pip") == 6


def test_extractive_brief_cites_each_line() -> None:
    found = select_evidence("database locked", [hit(7, LOCKED, 1.0, kind="cognition")])
    brief = extractive_brief(found)
    assert brief.mode == "extractive"
    assert brief.text == f"[1] {LOCKED} (lesson, 2026-01-07)"
    assert found[0].citation() == "lesson, 2026-01-07, session 00000007, 00000007.jsonl"
    assert extractive_brief([]).text is None
    own = hit(8, LOCKED, 1.0)  # a session's own transcript: the file adds nothing to the cite
    own.source.session_id = "00000008"
    assert select_evidence("database", [own])[0].citation() == "2026-01-07, session 00000008"


def test_extractive_brief_stays_within_max_tokens() -> None:
    texts = [
        f"database locked story {i} " + " ".join(f"w{i}x{j}" for j in range(60)) for i in range(8)
    ]
    hits = [hit(i, text, 1.0 - i / 100) for i, text in enumerate(texts)]
    cfg = SynthConfig(max_tokens=120)
    brief = extractive_brief(select_evidence("database locked", hits, cfg), cfg)
    assert brief.text is not None
    assert approx_tokens(brief.text) <= 120
    assert brief.text.startswith("[1] database locked story 0")


def test_extractive_brief_skips_a_line_that_does_not_fit_and_keeps_shorter_later_ones() -> None:
    long = "database locked in the CI log " + " ".join(f"step{j} failed" for j in range(40))
    short = "database locked: retry with busy_timeout"
    hits = [hit(1, "database locked first", 1.0), hit(2, long, 0.9), hit(3, short, 0.8)]
    cfg = SynthConfig(max_tokens=110)  # lines of 49, 157 and 56 tokens, citations included
    evidence = select_evidence("database locked", hits, cfg)
    assert [e.hit.id for e in evidence] == [1, 2, 3]
    brief = extractive_brief(evidence, cfg)
    assert brief.text is not None and approx_tokens(brief.text) <= 110
    lines = brief.text.splitlines()
    assert [line[:4] for line in lines] == ["[1] ", "[2] "]  # numbered as shown, no gap
    assert lines[1].startswith(f"[2] {short}")
    assert [(e.n, e.hit.id) for e in brief.evidence] == [(1, 1), (2, 3)]
    assert [e.n for e in evidence] == [1, 2, 3]  # the caller's evidence is not changed


def test_citations_reads_every_form() -> None:
    assert citations("A [1] and [2][3], also [4, 5].") == [1, 2, 3, 4, 5]
    assert citations("nothing cited") == []


def _evidence() -> list[Evidence]:
    return select_evidence(
        "database locked busy_timeout uv",
        [hit(1, LOCKED, 1.0), hit(2, "database note: " + UV, 0.9)],
    )


def test_ground_drops_uncited_invented_and_unsupported_sentences() -> None:
    text = (
        "Set PRAGMA busy_timeout = 30000 in db.connect() [1]. "
        "Use uv, not pip [2]. "
        "Restart the server nightly. "
        "The database is locked by cron [7]. "
        "Kubernetes operators reconcile pods declaratively [1].\n"
        "[1] [2] [3]\n"
        "(2026-01-07, session 00000001) [1]"
    )
    kept, dropped = ground(text, _evidence(), min_support=0.5)
    assert kept == ["Set PRAGMA busy_timeout = 30000 in db.connect() [1].", "Use uv, not pip [2]."]
    assert dropped == [
        "Restart the server nightly.",
        "The database is locked by cron [7].",
        "Kubernetes operators reconcile pods declaratively [1].",
        "[1] [2] [3]",
        "(2026-01-07, session 00000001) [1]",
    ]


def test_generate_brief_keeps_grounded_sentences_and_lists_their_sources() -> None:
    lm = ScriptedLM(["Set PRAGMA busy_timeout = 30000 in db.connect() [1]. Deploy on Fridays."])
    brief = generate_brief("database is locked", _evidence(), lm)
    assert brief.mode == "generated"
    assert brief.text == (
        "Set PRAGMA busy_timeout = 30000 in db.connect() [1].\n"
        "Sources:\n[1] 2026-01-07, session 00000001, 00000001.jsonl"
    )
    assert brief.dropped == ["Deploy on Fridays."]
    prompt = lm.calls[0][1]["content"]
    assert prompt.startswith("Notes from past sessions:\n[1] (2026-01-07, session 00000001, 0")
    assert "\n[2] (2026-01-07, session 00000002, 00000002.jsonl) database note: Use uv" in prompt
    assert "\n\nTask: database is locked\n\nIn at most " in prompt


def test_generate_brief_falls_back_to_extractive_when_nothing_is_grounded() -> None:
    brief = generate_brief("database is locked", _evidence(), ScriptedLM(["NONE"]))
    assert brief.mode == "fallback"
    assert brief.text == extractive_brief(_evidence()).text
    assert brief.model == "scripted"


def test_generate_brief_respects_max_tokens() -> None:
    reply = " ".join(
        f"PRAGMA busy_timeout = 30000 in db.connect() per station [{1}]." for _ in range(60)
    )
    cfg = SynthConfig(max_tokens=80)
    brief = generate_brief("database is locked", _evidence(), ScriptedLM([reply]), cfg)
    assert brief.mode == "generated" and brief.text is not None
    assert approx_tokens(brief.text) <= 80


def test_config_errors_name_the_flag() -> None:
    with pytest.raises(LmmError, match="--max-tokens"):
        SynthConfig(max_tokens=5)
    with pytest.raises(LmmError, match="--evidence-tokens"):
        SynthConfig(evidence_tokens=5)
    with pytest.raises(LmmError, match=r"min_answer must be within 0\.\.1"):
        SynthConfig(min_answer=1.5)


# ---- query-focused evidence (evidence.py)

TOOL_TURN = (
    "Writing the config loader now. "
    '[tool: Bash] {"command":"cargo add dirs toml","description":"Add dirs and toml"} '
    '[tool: Write] {"file_path":"/home/dev/tidepool/src/config.rs","content":"//! Defaults.\\n'
    'use std::fs;\\npub fn load() -> Config {\\n    toml::from_str(&fs::read_to_string(p)?)\\n}"} '
    '[tool: Read] {"file_path":"/home/dev/tidepool/CLAUDE.md"}'
)


def test_pieces_reduce_tool_calls_to_command_path_and_lines() -> None:
    assert evidence.pieces(TOOL_TURN) == [
        ("", "Writing the config loader now."),
        ("", "$ cargo add dirs toml"),
        ("/home/dev/tidepool/src/config.rs", "//! Defaults."),
        ("/home/dev/tidepool/src/config.rs", "use std::fs;"),
        ("/home/dev/tidepool/src/config.rs", "pub fn load() -> Config {"),
        ("/home/dev/tidepool/src/config.rs", "toml::from_str(&fs::read_to_string(p)?)"),
    ]  # a lone brace says nothing; the Read of CLAUDE.md is what was looked at, not done


def test_pieces_drop_acknowledgements_and_reminders_and_keep_error_lines() -> None:
    assert evidence.pieces("[result] File created successfully at: /x/y.rs") == []
    assert evidence.pieces("[result] The file /x/y.rs has been updated successfully.") == []
    text = "[result, error] Exit code 101\nerror[E0597]: `mmap` does not live long enough"
    assert evidence.pieces(text) == [
        ("error", "Exit code 101"),
        ("error", "error[E0597]: `mmap` does not live long enough"),
    ]
    noisy = "<system-reminder>Be careful.</system-reminder>use pnpm, never npm"
    assert evidence.pieces(noisy) == [("", "use pnpm, never npm")]


def test_evidence_is_the_matching_line_not_the_prefix() -> None:
    long = " ".join(f"Step {i}: tidy module {i}." for i in range(1, 30))
    answer = "Step 30: the percentiles come from hdrhistogram, one histogram per route."
    hits = [hit(1, f"{long}\n{answer}", 1.0), hit(2, "percentiles per route, please", 0.5)]
    [first, *_] = select_evidence("what computes the percentiles per route?", hits)
    assert first.hit.id == 1 and first.text == f"Step 29: tidy module 29. {answer}"
    [line] = select_evidence("which crates does the config loader use?", [hit(3, TOOL_TURN, 1.0)])
    assert line.text == "Writing the config loader now. $ cargo add dirs toml"


def test_evidence_abstains_when_the_query_names_what_no_hit_holds() -> None:
    hits = [hit(1, "the percentiles come from hdrhistogram", 1.0), hit(2, UV, 0.9)]
    assert select_evidence("which staging URL does the deploy use?", hits) == []
    assert [e.hit.id for e in select_evidence("where do the percentiles come from?", hits)] == [1]
    close = [hit(1, "WAL lets readers and the writer work at once", 0.5, dense=0.7)]
    assert [e.hit.id for e in select_evidence("staging deploy url", close)] == [1]


def test_evidence_paths_are_relative_to_the_project_and_repeats_are_dropped() -> None:
    units = evidence.units_of([hit(1, TOOL_TURN, 1.0)])
    assert {u.head for u in units} == {"", "src/config.rs"}
    same = [hit(1, "use pnpm, never npm", 1.0), hit(2, "Use pnpm, never npm!", 0.9)]
    assert [e.hit.id for e in select_evidence("pnpm or npm?", same)] == [1]


def test_a_pool_of_one_still_answers_with_the_rule_that_holds_the_query() -> None:
    # idf over a pool of a few units would call every held term common (evidence.MIN_POOL)
    rule = hit(1, "Never add emojis to commit messages anywhere.", 1.0, kind="cognition")
    query = "Write the commit message for this change"
    assert [e.hit.id for e in select_evidence(query, [rule])] == [1]
    assert select_evidence("Center the login form with CSS grid", [rule]) == []


def test_a_line_that_introduces_a_table_brings_its_rows_without_the_rule_line() -> None:
    table = (
        "CI now runs:\n| job | command |\n|---|---|\n| fmt | `cargo fmt --check` |\n"
        "| clippy | `cargo clippy --all-targets -- -D warnings` |\n| test | `cargo nextest run` |"
    )
    chosen = select_evidence("which command does CI run", [hit(1, table, 1.0)])
    assert len(chosen) == 1
    assert "cargo clippy --all-targets -- -D warnings" in chosen[0].text
    assert "|---|" not in chosen[0].text


def test_a_none_reply_can_mean_no_brief() -> None:
    cfg = SynthConfig(on_none="nothing")
    brief = generate_brief("database is locked", _evidence(), ScriptedLM(["NONE."]), cfg)
    assert brief.mode == "declined" and brief.text is None and brief.model == "scripted"
    # an ungrounded reply that is not NONE still falls back to the evidence
    brief = generate_brief(
        "database is locked", _evidence(), ScriptedLM(["Deploy on Fridays."]), cfg
    )
    assert brief.mode == "fallback" and brief.text == extractive_brief(_evidence()).text
    with pytest.raises(LmmError, match="on_none"):
        SynthConfig(on_none="maybe")


def test_describe_says_the_model_declined() -> None:
    from lmm.retrieve.recall import describe
    from lmm.retrieve.synth import Brief

    line = describe(Brief(None, _evidence(), "declined", "scripted", [], 0.25), "")
    assert line == "no brief: scripted found nothing in the evidence that matters (NONE, 0.2 s)"
