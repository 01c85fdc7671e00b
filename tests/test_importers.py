"""Generic chat JSON/JSONL and LoCoMo importers, format sniffing, the embedded sample history."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import lmm
from lmm.errors import InputError
from lmm.ingest.importers import (
    LocomoQuestion,
    detect_format,
    locomo_questions,
    normalise_evidence,
    read_generic,
    read_locomo,
)
from lmm.records import ParseIssue, SessionInfo, Turn

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
LOCOMO_DEV = SHARED / "locomo" / "locomo_dev.json"
SAMPLE = Path(lmm.__file__).parent / "sample"
SAMPLE_PROJECT = SAMPLE / "projects" / "-home-dev-tidepool"

needs_locomo = pytest.mark.skipif(
    not LOCOMO_DEV.exists(), reason=f"shared LoCoMo data not found at {LOCOMO_DEV}"
)


def write(path: Path, doc: Any) -> Path:
    path.write_text(json.dumps(doc))
    return path


def write_lines(path: Path, lines: list[Any]) -> Path:
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    return path


def turn(session: str, index: int, role: str, text: str, parent: int | None, **kw: Any) -> Turn:
    """The Turn read_generic must produce for message `index` of `session`."""
    key = f"{session}:{index}"
    kw.setdefault("line_no", index + 1)
    return Turn(
        session_id=session,
        key=key,
        role=role,
        kind="system" if role == "system" else "message",
        text=text,
        uuid=key,
        parent_uuid=None if parent is None else f"{session}:{parent}",
        uuids=[key],
        **kw,
    )


# ---- generic: every accepted shape


def test_json_list_of_sessions(tmp_path: Path) -> None:
    path = write(
        tmp_path / "chats.json",
        [
            [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
            {
                "id": "abc",
                "project": "/home/me/proj",
                "title": "Setup",
                "messages": [
                    {"role": "system", "content": "be brief", "timestamp": "2025-01-02T03:04:05Z"},
                    {"role": "human", "content": [{"type": "text", "text": "use uv"}]},
                ],
            },
        ],
    )
    assert list(read_generic(path)) == [
        SessionInfo("chats-0", "generic"),
        turn("chats-0", 0, "user", "hi", None),
        turn("chats-0", 1, "assistant", "hello", 0),
        SessionInfo("abc", "generic", project="/home/me/proj", title="Setup"),
        turn("abc", 0, "system", "be brief", None, timestamp="2025-01-02T03:04:05Z"),
        turn("abc", 1, "user", "use uv", 0),
    ]


def test_json_object_with_sessions(tmp_path: Path) -> None:
    path = write(
        tmp_path / "export.json",
        {"sessions": [{"session_id": 7, "messages": [{"role": "ai", "content": "ok"}]}]},
    )
    assert list(read_generic(path)) == [
        SessionInfo("7", "generic"),
        turn("7", 0, "assistant", "ok", None),
    ]


def test_json_bare_message_list_is_one_session(tmp_path: Path) -> None:
    path = write(
        tmp_path / "talk.json",
        [{"role": "user", "content": "q", "name": "ana"}, {"role": "bot", "content": "a"}],
    )
    assert list(read_generic(path)) == [
        SessionInfo("talk", "generic"),
        turn("talk", 0, "user", "q", None, speaker="ana"),
        turn("talk", 1, "assistant", "a", 0),
    ]


def test_content_blocks_and_epoch_timestamps(tmp_path: Path) -> None:
    content = [
        {"type": "text", "text": "first"},
        {"type": "image", "url": "x.png"},
        "second",
        {"type": "text", "text": "third"},
    ]
    path = write(
        tmp_path / "c.json",
        [[{"role": "User", "content": content, "timestamp": 1735787045}]],
    )
    t = next(x for x in read_generic(path) if isinstance(x, Turn))
    assert (t.text, t.timestamp) == ("first\n\nsecond\n\nthird", "2025-01-02T03:04:05.000Z")
    ms = write(
        tmp_path / "ms.json", [[{"role": "user", "content": "x", "timestamp": 1735787045123}]]
    )
    t = next(x for x in read_generic(ms) if isinstance(x, Turn))
    assert t.timestamp == "2025-01-02T03:04:05.123Z"


def test_jsonl_one_session_per_line(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "s.jsonl",
        [
            {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]},
            "",
            {"id": "named", "title": "T", "messages": [{"role": "user", "content": "c"}]},
        ],
    )
    assert list(read_generic(path)) == [
        SessionInfo("s-0", "generic"),
        turn("s-0", 0, "user", "a", None, line_no=1),
        turn("s-0", 1, "assistant", "b", 0, line_no=1),
        SessionInfo("named", "generic", title="T"),
        turn("named", 0, "user", "c", None, line_no=3),
    ]


def test_jsonl_messages_grouped_by_session_id(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "m.jsonl",
        [
            {"session_id": "x", "role": "user", "content": "x1"},
            {"session": "y", "role": "user", "content": "y1"},
            {"session_id": "x", "role": "assistant", "content": "x2"},
        ],
    )
    assert list(read_generic(path)) == [
        SessionInfo("x", "generic"),
        turn("x", 0, "user", "x1", None, line_no=1),
        turn("x", 1, "assistant", "x2", 0, line_no=3),
        SessionInfo("y", "generic"),
        turn("y", 0, "user", "y1", None, line_no=2),
    ]


def test_jsonl_plain_messages_are_one_session_named_after_the_file(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "notes.jsonl",
        [{"role": "user", "content": "one"}, {"role": "assistant", "content": "two"}],
    )
    assert list(read_generic(path)) == [
        SessionInfo("notes", "generic"),
        turn("notes", 0, "user", "one", None, line_no=1),
        turn("notes", 1, "assistant", "two", 0, line_no=2),
    ]
    single = write_lines(tmp_path / "one.jsonl", [{"role": "user", "content": "only"}])
    assert list(read_generic(single)) == [
        SessionInfo("one", "generic"),
        turn("one", 0, "user", "only", None),
    ]


# ---- generic: malformed input


def test_bad_messages_become_issues_and_reading_goes_on(tmp_path: Path) -> None:
    path = write(
        tmp_path / "bad.json",
        [
            [
                {"role": "user", "content": "ok"},
                {"content": "no role"},
                {"role": "wizard", "content": "bad role"},
                {"role": "user", "content": {"not": "text"}},
                "not an object",
                {"role": "user", "content": "   "},
                {"role": "assistant", "content": "still read"},
            ],
            42,
        ],
    )
    items = list(read_generic(path))
    turns = [x for x in items if isinstance(x, Turn)]
    issues = [x for x in items if isinstance(x, ParseIssue)]
    assert [(t.key, t.parent_uuid) for t in turns] == [("bad-0:0", None), ("bad-0:6", "bad-0:0")]
    assert [(i.path, i.line_no) for i in issues] == [(str(path), n) for n in (2, 2, 3, 4, 5, 6)]
    assert (
        issues[0].reason
        == "session 1 is not a list of messages or an object with a 'messages' list"
    )
    assert issues[1].reason == (
        "session 'bad-0' message 1: missing or unknown role None "
        "(expected user, assistant or system)"
    )
    assert issues[2].reason.startswith(
        "session 'bad-0' message 2: missing or unknown role 'wizard'"
    )
    assert issues[3].reason == (
        "session 'bad-0' message 3: content is neither a string nor a list of text blocks"
    )
    assert issues[4].reason == "session 'bad-0' message 4: not a JSON object"
    assert issues[5].reason == "session 'bad-0' message 5: empty content"


def test_bad_jsonl_lines_become_issues(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "l.jsonl",
        [
            "{not json",
            {"role": "user", "content": "a"},
            "[1, 2]",
            {"messages": "nope"},
            {"role": "assistant", "content": "b"},
        ],
    )
    items = list(read_generic(path))
    assert [x for x in items if isinstance(x, ParseIssue)] == [
        ParseIssue(str(path), 1, "invalid JSON: Expecting property name enclosed in double quotes"),
        ParseIssue(str(path), 3, "line is not a JSON object"),
        ParseIssue(str(path), 4, "'messages' is not a list"),
    ]
    assert [(x.key, x.line_no) for x in items if isinstance(x, Turn)] == [("l:0", 2), ("l:1", 5)]


@pytest.mark.parametrize(
    "text",
    [
        "hello, world\n",
        "[1, 2,\n",
        '"just a string"\n"another"\n{"a": 1}\n',
        '{"foo": 1}',
        '[\n  {"role": "user", "content": "x"},\n  {"role": "user", "content": "y"}\n',
    ],
)
def test_not_json_or_jsonl_raises_input_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "x.json"
    path.write_text(text)
    with pytest.raises(InputError, match="accepted formats: a JSON list of sessions"):
        list(read_generic(path))


def test_empty_file_yields_nothing(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n")
    assert list(read_generic(path)) == []


# ---- LoCoMo: a hand-made file (no shared data needed)


def test_read_locomo_small(tmp_path: Path) -> None:
    path = write(
        tmp_path / "mini.json",
        [
            {
                "sample_id": "conv-x",
                "qa": [],
                "conversation": {
                    "speaker_a": "Ana",
                    "speaker_b": "Ben",
                    "session_2_date_time": "not a date",
                    "session_2": [{"speaker": "Ben", "dia_id": "D2:1", "text": "later"}],
                    "session_1_date_time": "12:05 am on 1 March, 2024",
                    "session_1": [
                        {"speaker": "Ana", "dia_id": "D1:1", "text": "hi"},
                        {
                            "speaker": "Ben",
                            "dia_id": "D1:2",
                            "text": "look",
                            "img_url": ["https://example.org/a.jpg"],
                            "blip_caption": "a photo of a dog",
                        },
                        {"speaker": "Ana", "text": "no id"},
                    ],
                },
            },
            {"qa": []},
        ],
    )
    extra = {"date_time": "12:05 am on 1 March, 2024", "speaker_a": "Ana", "speaker_b": "Ben"}
    items = list(read_locomo(path))
    assert items[:3] == [
        SessionInfo(
            "conv-x:session_1",
            "locomo",
            project="locomo/conv-x",
            title="conv-x session 1 (12:05 am on 1 March, 2024)",
            extra=extra,
        ),
        Turn(
            session_id="conv-x:session_1",
            key="D1:1",
            role="user",
            kind="message",
            text="hi",
            uuid="conv-x:D1:1",
            uuids=["conv-x:D1:1"],
            timestamp="2024-03-01T00:05:00.000Z",
            line_no=1,
            dia_id="D1:1",
            speaker="Ana",
        ),
        Turn(
            session_id="conv-x:session_1",
            key="D1:2",
            role="user",
            kind="message",
            text="look [shares an image: a photo of a dog]",
            uuid="conv-x:D1:2",
            parent_uuid="conv-x:D1:1",
            uuids=["conv-x:D1:2"],
            timestamp="2024-03-01T00:05:01.000Z",
            line_no=2,
            dia_id="D1:2",
            speaker="Ben",
            extra={"img_url": "https://example.org/a.jpg"},
        ),
    ]
    assert items[3] == ParseIssue(str(path), 3, "conv-x:session_1 turn 2: no 'dia_id' or 'text'")
    assert items[4] == ParseIssue(str(path), 0, "conv-x:session_2: unreadable date 'not a date'")
    assert isinstance(items[5], SessionInfo) and items[5].session_id == "conv-x:session_2"
    assert isinstance(items[6], Turn) and (items[6].key, items[6].timestamp) == ("D2:1", None)
    assert items[7] == ParseIssue(str(path), 2, "sample 1: no 'sample_id' or 'conversation'")
    assert len(items) == 8


def test_read_locomo_rejects_non_locomo(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a LoCoMo file"):
        list(read_locomo(write(tmp_path / "o.json", {"a": 1})))
    (tmp_path / "t.json").write_text("nope")
    with pytest.raises(InputError, match="is not JSON"):
        list(read_locomo(tmp_path / "t.json"))


def test_locomo_questions_small(tmp_path: Path) -> None:
    qa = [
        {"question": "When?", "answer": 2022, "evidence": ["D1:1"], "category": 2},
        {"question": "Trap?", "adversarial_answer": "yes", "answer": "No", "evidence": [],
         "category": 5},
        {"question": "No category"},
        "junk",
    ]  # fmt: skip
    path = write(tmp_path / "q.json", [{"sample_id": "c", "qa": qa, "conversation": {}}, 3])
    assert locomo_questions(path) == [
        LocomoQuestion("c", 0, "When?", "2022", 2, ["D1:1"]),
        LocomoQuestion("c", 1, "Trap?", "yes", 5, []),
    ]


def test_normalise_evidence() -> None:
    assert normalise_evidence(["D8:6; D9:17", "D30:05", "D", "D:11:26", "D1:3", "D1:03", "x"]) == [
        "D8:6",
        "D9:17",
        "D30:5",
        "D11:26",
        "D1:3",
    ]


# ---- LoCoMo: the real dev file


@needs_locomo
def test_read_locomo_dev() -> None:
    items = list(read_locomo(LOCOMO_DEV))
    assert not [x for x in items if isinstance(x, ParseIssue)]
    sessions = [x for x in items if isinstance(x, SessionInfo)]
    turns = [x for x in items if isinstance(x, Turn)]
    assert (len(sessions), len(turns)) == (128, 2760)
    assert sessions[0] == SessionInfo(
        "conv-26:session_1",
        "locomo",
        project="locomo/conv-26",
        title="conv-26 session 1 (1:56 pm on 8 May, 2023)",
        extra={
            "date_time": "1:56 pm on 8 May, 2023",
            "speaker_a": "Caroline",
            "speaker_b": "Melanie",
        },
    )
    assert turns[0] == Turn(
        session_id="conv-26:session_1",
        key="D1:1",
        role="user",
        kind="message",
        text="Hey Mel! Good to see you! How have you been?",
        uuid="conv-26:D1:1",
        uuids=["conv-26:D1:1"],
        timestamp="2023-05-08T13:56:00.000Z",
        line_no=1,
        dia_id="D1:1",
        speaker="Caroline",
    )
    d15 = next(t for t in turns if t.session_id == "conv-26:session_1" and t.dia_id == "D1:5")
    assert d15.text == (
        "The transgender stories were so inspiring! I was so happy and thankful for all the "
        "support. [shares an image: a photo of a dog walking past a wall with a painting of a "
        "woman]"
    )
    assert (d15.timestamp, d15.speaker, d15.parent_uuid) == (
        "2023-05-08T13:56:04.000Z",
        "Caroline",
        "conv-26:D1:4",
    )
    assert len({t.uuid for t in turns}) == len(turns)
    assert {s.project for s in sessions} == {f"locomo/conv-{n}" for n in (26, 30, 41, 42, 43)}


@needs_locomo
def test_locomo_questions_dev() -> None:
    questions = locomo_questions(LOCOMO_DEV)
    assert len(questions) == 999
    assert questions[0] == LocomoQuestion(
        sample_id="conv-26",
        index=0,
        question="When did Caroline go to the LGBTQ support group?",
        answer="7 May 2023",
        category=2,
        evidence=["D1:3"],
    )
    by_key = {(q.sample_id, q.index): q for q in questions}
    assert by_key["conv-26", 37].evidence == ["D8:6", "D9:17"]
    assert by_key["conv-42", 88].evidence == ["D1:18", "D1:20"]
    assert by_key["conv-43", 18].evidence == [
        "D1:14", "D2:7", "D4:7", "D5:15", "D11:26", "D20:21", "D26:36"
    ]  # fmt: skip
    # 'D30:05' (leading zero) only occurs in the held-back half; test_normalise_evidence covers it
    adversarial = [q for q in questions if q.category == 5]
    assert len(adversarial) == 237 and all(q.answer for q in adversarial)
    assert by_key["conv-26", 1].answer == "2022"  # an int in the data
    every_id = {t.uuid for t in read_locomo(LOCOMO_DEV) if isinstance(t, Turn)}
    missing = [
        (q.sample_id, e)
        for q in questions
        for e in q.evidence
        if f"{q.sample_id}:{e}" not in every_id
    ]
    assert missing == [("conv-42", "D10:19")]  # a gold id for a turn that does not exist


# ---- format sniffing


def test_detect_format(tmp_path: Path) -> None:
    locomo = write(tmp_path / "l.json", [{"sample_id": "c", "conversation": {}, "qa": []}])
    generic_json = write(tmp_path / "g.json", [[{"role": "user", "content": "x"}]])
    generic_jsonl = write_lines(tmp_path / "g.jsonl", [{"role": "user", "content": "x"}])
    claude = write_lines(
        tmp_path / "c.jsonl",
        [
            {"type": "summary", "summary": "s", "leafUuid": "u1"},
            {"type": "user", "uuid": "u1", "sessionId": "s", "message": {}},
        ],
    )
    snapshot_first = write_lines(
        tmp_path / "d.jsonl",
        [{"type": "file-history-snapshot", "messageId": "m"}, {"type": "user", "uuid": "u"}],
    )
    text = tmp_path / "t.txt"
    text.write_text("not json")
    assert [
        detect_format(p)
        for p in (locomo, generic_json, generic_jsonl, claude, snapshot_first, text, tmp_path)
    ] == ["locomo", "generic", "generic", "claude", "claude", "generic", "claude"]


@needs_locomo
def test_detect_format_on_shared_data() -> None:
    assert detect_format(LOCOMO_DEV) == "locomo"


# ---- the embedded sample history


def sample_files() -> list[Path]:
    return sorted(SAMPLE_PROJECT.rglob("*.jsonl"))


def load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


CHAIN_FIELDS = {"parentUuid", "isSidechain", "userType", "cwd", "sessionId", "version",
                "gitBranch", "type", "uuid", "timestamp"}  # fmt: skip


def test_sample_layout() -> None:
    rel = [str(p.relative_to(SAMPLE_PROJECT)) for p in sample_files()]
    sessions = [r for r in rel if "/" not in r and not r.startswith("agent-")]
    assert len(sessions) == 7
    assert [r for r in rel if r.startswith("agent-")] == ["agent-5d2a9e1c.jsonl"]
    subagents = [r for r in rel if "/subagents/" in r]
    assert len(subagents) == 1
    meta = json.loads((SAMPLE_PROJECT / subagents[0]).with_suffix(".meta.json").read_text())
    assert meta == {"agentType": "Explore", "description": "Find all requests usages"}
    assert 250 <= sum(len(load(p)) for p in sample_files()) <= 400
    assert detect_format(SAMPLE_PROJECT / sessions[0]) == "claude"


def test_sample_lines_are_valid_claude_records() -> None:
    session_ids = {
        p.stem for p in SAMPLE_PROJECT.glob("*.jsonl") if not p.stem.startswith("agent-")
    }
    all_uuids = {r["uuid"] for p in sample_files() for r in load(p) if "uuid" in r}
    for path in sample_files():
        records = load(path)
        uuids = [r["uuid"] for r in records if "uuid" in r]
        assert len(uuids) == len(set(uuids)), path
        tool_uses: set[str] = set()
        last_ts = ""
        for n, rec in enumerate(records, start=1):
            where = f"{path.name}:{n}"
            kind = rec["type"]
            if kind in ("user", "assistant", "system"):
                assert rec.keys() >= CHAIN_FIELDS, (where, CHAIN_FIELDS - rec.keys())
                assert rec["cwd"] == "/home/dev/tidepool" and rec["gitBranch"], where
                assert rec["version"].startswith(("2.0.", "2.1.")), where
                assert rec["parentUuid"] is None or rec["parentUuid"] in uuids, where
                assert rec.get("logicalParentUuid") in (None, *uuids), where
                assert rec["timestamp"] >= last_ts, where
                last_ts = rec["timestamp"]
                if path.parent == SAMPLE_PROJECT and not path.stem.startswith("agent-"):
                    assert rec["sessionId"] == path.stem and not rec["isSidechain"], where
                else:
                    assert rec["sessionId"] in session_ids and rec["isSidechain"], where
                    assert path.stem == f"agent-{rec['agentId']}", where
            if kind in ("user", "assistant"):
                assert rec["message"]["role"] == kind, where
            if kind == "assistant":
                assert rec["message"]["id"].startswith("msg_") and rec["requestId"], where
                (block,) = rec["message"]["content"]
                if block["type"] == "tool_use":
                    tool_uses.add(block["id"])
            if kind == "user" and isinstance(rec["message"]["content"], list):
                for block in rec["message"]["content"]:
                    assert block["tool_use_id"] in tool_uses, where
                    assert "toolUseResult" in rec, where
            if kind == "summary":
                assert rec["summary"] and rec["leafUuid"] in all_uuids, where
            if kind == "file-history-snapshot":
                assert rec["messageId"] in uuids, where
            if kind in ("permission-mode", "last-prompt"):
                assert rec["sessionId"] == path.stem, where


def test_sample_has_the_promised_shapes() -> None:
    records = [r for p in sample_files() for r in load(p)]
    errors = [
        b
        for r in records
        if r["type"] == "user" and isinstance(r["message"]["content"], list)
        for b in r["message"]["content"]
        if b.get("is_error")
    ]
    assert len(errors) >= 3
    assert sum(1 for r in records if r.get("isCompactSummary")) == 1
    assert sum(1 for r in records if r.get("subtype") == "compact_boundary") == 1
    multi_line: dict[str, list[str]] = {}
    for r in records:
        if r["type"] == "assistant":
            multi_line.setdefault(r["message"]["id"], []).append(r["message"]["content"][0]["type"])
    assert any({"thinking", "text", "tool_use"} <= set(v) for v in multi_line.values())
    names = {
        b["name"]
        for r in records
        if r["type"] == "assistant"
        for b in r["message"]["content"]
        if b["type"] == "tool_use"
    }
    assert {"Bash", "Read", "Edit", "Write", "Grep", "Task"} <= names


def test_sample_facts_point_at_real_turns() -> None:
    facts = json.loads((SAMPLE / "facts.json").read_text())["facts"]
    by_uuid = {r["uuid"]: (p, r) for p in sample_files() for r in load(p) if "uuid" in r}
    readme = (SAMPLE / "README.md").read_text()
    for fact in facts:
        path, rec = by_uuid[fact["uuid"]]
        assert rec["sessionId"] == fact["session_id"] == path.stem, fact["label"]
        content = rec["message"]["content"]
        if fact["role"] == "user":
            assert rec["type"] == "user" and isinstance(content, str), fact["label"]
        elif fact["role"] == "assistant":
            assert rec["type"] == "assistant" and content[0]["type"] == "text", fact["label"]
        else:
            assert fact["role"] == "tool_result" and content[0]["type"] == "tool_result"
        assert f"`{fact['uuid']}`" in readme, fact["label"]
    labels = {f["label"] for f in facts}
    assert {
        "P1",
        "P2",
        "P3",
        "P4",
        "D1",
        "D2",
        "D3",
        "D5",
        "D6",
        "L1",
        "L2",
        "L3",
        "E1",
        "W1",
    } <= labels
    notes = {f["label"]: f["note"] for f in facts}
    assert notes["D2"].startswith("SUPERSEDED by D6") and notes["D3"].startswith("SUPERSEDED by D5")


def test_sample_has_exactly_one_planted_secret() -> None:
    from lmm.text.redact import redact

    token = "ghp_FAKEt0kenForLmmSampleDoNotUse0000000001"
    lines = [line for p in sample_files() for line in p.read_text().splitlines() if token in line]
    assert len(lines) == 1
    assert token not in redact(lines[0]) and "[REDACTED:github]" in redact(lines[0])
    for secret_prefix in ("sk-", "AKIA", "ghp_", "gho_", "ghs_"):
        hits = sum(p.read_text().count(secret_prefix) for p in sample_files())
        assert hits == (1 if secret_prefix == "ghp_" else 0), secret_prefix
