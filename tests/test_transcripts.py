"""Claude Code transcript parsing on the real transcripts in ../shared/data (skipped without it),
plus small hand-made files in tmp_path for damage the real data does not show."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lmm.conversation import conversation_order, main_branch
from lmm.ingest.transcripts import TranscriptFile, TranscriptReader, classify, discover
from lmm.records import ParseIssue, SessionInfo, ToolCall, ToolResult, Turn
from lmm.text.redact import clip

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "claude_sessions"
LOG = DATA / "claude-code-log-iansherr-fork" / "test" / "test_data"
REAL = LOG / "real_projects"
SIDECAR = DATA / "sidecar" / "internal" / "adapter" / "claudecode" / "testdata"
UPSTREAM = DATA / "claude-code-log-upstream" / "test" / "test_data"

Item = Turn | ParseIssue | SessionInfo


def shared(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared transcripts not found at {path}: clone the data into ../shared/data")
    return path


def read(path: Path, offset: int = 0, line_no: int = 0) -> list[Item]:
    return list(TranscriptReader(classify(shared(path)), offset, line_no))


def turns(*paths: Path) -> list[Turn]:
    return [t for p in paths for t in read(p) if isinstance(t, Turn)]


def by_key(items: list[Turn], key: str) -> Turn:
    (turn,) = [t for t in items if t.key == key]
    return turn


def write(tmp_path: Path, name: str, *records: object) -> Path:
    path = tmp_path / name
    path.write_bytes(b"".join(json.dumps(r).encode() + b"\n" for r in records))
    return path


# ---- turns from records


def test_multi_line_assistant_response_is_one_turn_with_thinking_apart() -> None:
    path = (
        REAL
        / "-Users-dain-workspace-JSSoundRecorder"
        / "7acd37a8-2745-4b58-a8a9-46164b22ad9e.jsonl"
    )
    # lines 5-9 share message.id: thinking, text, then three tool_use blocks
    assert by_key(turns(path), "msg_01KJZamND8Cemw6Le5jtXwwN") == Turn(
        session_id="7acd37a8-2745-4b58-a8a9-46164b22ad9e",
        key="msg_01KJZamND8Cemw6Le5jtXwwN",
        role="assistant",
        kind="message",
        text=(
            "I'll analyze this codebase to create a helpful CLAUDE.md file. Let me start by "
            "exploring the repository structure and key files.\n"
            '[tool: Bash] {"command":"find . -type f -name \\"CLAUDE.md\\" -o -name '
            '\\"README.md\\" -o -name \\"package.json\\" -o -name \\".cursorrules\\" '
            '-o -name \\"*.md\\" | grep -E '
            '\\"(CLAUDE|README|package\\\\.json|\\\\.cursorrules|\\\\.cursor/rules)\\" | head -20",'
            '"description":"Check for existing documentation files"}\n'
            '[tool: Bash] {"command":"ls -la","description":"List repository root contents"}\n'
            '[tool: Glob] {"pattern":"**/*.{js,html,json}"}'
        ),
        uuid="0fe87002-bb4b-4e71-a778-4aee585b106c",
        # its parentUuid is the meta record /init expands to (left out): the /init prompt
        parent_uuid="5c623611-f1c7-41e0-951a-080254618df7",
        uuids=[
            "0fe87002-bb4b-4e71-a778-4aee585b106c",
            "94cc0f6b-b30b-4359-92f0-87604c36b43f",
            "a1218668-d426-4390-af68-c309d5baae7e",
            "951c58e5-8f0a-45bf-a17b-08e689cfcab1",
            "edfb30fc-e8a5-49de-a98f-eda96a3c7f43",
        ],
        message_id="msg_01KJZamND8Cemw6Le5jtXwwN",
        thinking=(
            "The user wants me to analyze the codebase and create a CLAUDE.md file. This file "
            "should contain:\n1. Common commands (build, lint, test, etc.)\n2. High-level "
            "architecture that requires reading multiple files to understand\n\nI should:\n"
            "- Check if CLAUDE.md already exists\n- Look for existing documentation (README.md, "
            "package.json, etc.)\n- Understand the codebase structure\n- Check for Cursor rules "
            "or Copilot instructions\n- Focus on non-obvious things that need context from "
            "multiple files\n\nLet me start by exploring the repository structure and key files."
        ),
        tool_calls=[
            ToolCall(
                "toolu_013ZDK4jC84F3EZUTGnsNPsF",
                "Bash",
                '{"command":"find . -type f -name \\"CLAUDE.md\\" -o -name \\"README.md\\" -o '
                '-name \\"package.json\\" -o -name \\".cursorrules\\" -o -name \\"*.md\\" | grep '
                '-E \\"(CLAUDE|README|package\\\\.json|\\\\.cursorrules|\\\\.cursor/rules)\\" | '
                'head -20","description":"Check for existing documentation files"}',
            ),
            ToolCall(
                "toolu_01GD2cLBTeACbEQz1nzYCGru",
                "Bash",
                '{"command":"ls -la","description":"List repository root contents"}',
            ),
            ToolCall("toolu_01JmcApJ4a9ZuwnMgneGVuCS", "Glob", '{"pattern":"**/*.{js,html,json}"}'),
        ],
        timestamp="2025-11-17T23:50:10.547Z",
        cwd="/Users/dain/workspace/JSSoundRecorder",
        git_branch="gh-pages",
        line_no=5,
        end_line=9,
        end_offset=9068,
    )


def test_same_message_id_after_an_interleaved_result_is_another_turn_with_that_key() -> None:
    folder = REAL / "-experiments-worktrees" / "ef958aa1-0e93-49f0-bb71-150f63befcd1" / "subagents"
    got = [
        (t.key, t.line_no, t.end_line, t.kind)
        for t in turns(folder / "agent-a36efb2a1231c41e2.jsonl")
        if t.line_no in range(5, 10)
    ]
    assert got == [
        ("msg_01M3jVM2iPyvK9Fu1unfUjq6", 5, 5, "message"),
        ("7261eacc-79e1-4f58-991c-02a6358a657c", 6, 6, "tool_result"),
        ("msg_01M3jVM2iPyvK9Fu1unfUjq6", 7, 7, "message"),
        ("f9155431-0dd1-4112-97f9-2923257d6964", 8, 8, "tool_result"),
        ("msg_01M3jVM2iPyvK9Fu1unfUjq6", 9, 9, "message"),
    ]


def test_thinking_only_block_kept_apart_from_the_answer() -> None:
    got = by_key(turns(SIDECAR / "thinking_content.jsonl"), "msg-002")
    assert (got.text, got.thinking, got.role) == (
        "Here is my answer.",
        "Let me think about this...",
        "assistant",
    )


def test_tool_results_are_turns_with_rendered_text_and_touched_files() -> None:
    items = turns(LOG / "sidechain.jsonl")
    call = by_key(items, "msg_01BFtsoYogEqE2F3dxmMare3")
    assert call.files == ["/Users/dain/workspace/claude-code-log/test/test_toggle_functionality.py"]
    result = by_key(items, "dc178f3d-3c73-4b48-93a6-001f9431b245")
    assert (result.role, result.kind) == ("user", "tool_result")
    assert [(r.tool_use_id, r.is_error) for r in result.tool_results] == [
        ("toolu_013Mv3kjZRQqkAwzzYC2BQaD", False)
    ]
    assert result.text.startswith(
        '[result]      1→"""Tests for the collapsible details toggle functionality."""\n'
    )
    error = by_key(turns(LOG / "edge_cases.jsonl"), "edge_005")
    assert (error.text, error.tool_results) == (
        "[result, error] Error: Tool execution failed with error: Command not found",
        [
            ToolResult(
                "tool_edge_001", "Error: Tool execution failed with error: Command not found", True
            )
        ],
    )


def test_images_become_placeholders(tmp_path: Path) -> None:
    path = (
        REAL
        / "-Users-dain-workspace-danieldemmel-me-next"
        / "4379d1bf-ccb1-414e-a856-9791b73f3af2.jsonl"
    )
    got = by_key(turns(path), "ddfcb7df-9278-429e-8360-837444af6358")
    assert got.text == (
        "[image]\n[Image #1] Can you please add margin-bottom to the details element when it's "
        "not open?"
    )
    image = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"},
    }
    path = write(
        tmp_path,
        "s.jsonl",
        {
            "type": "user",
            "uuid": "u1",
            "sessionId": "s",
            "message": {
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t1",
                        "content": [image, {"type": "text", "text": "a shot"}],
                    }
                ]
            },
        },
    )
    (result,) = turns(path)
    assert (result.text, result.tool_results) == (
        "[result] [image]\na shot",
        [ToolResult("t1", "[image]\na shot")],
    )


def test_compacted_session_keeps_its_summary_and_its_pre_compaction_branch() -> None:
    items = turns(UPSTREAM / "dag_compact_after_rewind.jsonl")
    assert [(t.key, t.kind, t.parent_uuid) for t in items if t.key in ("cb", "cs")] == [
        ("cb", "system", None),
        ("cs", "compact_summary", "cb"),
    ]
    assert by_key(items, "cb").extra == {
        "subtype": "compact_boundary",
        "logical_parent_uuid": "b2a2",
    }
    assert by_key(items, "cs").text == (
        "This session is being continued from a previous conversation that ran out of context. "
        "Summary: the user asked for a plan."
    )
    assert main_branch(items) == {
        "u1", "msg_a1", "b2u", "msg_b2a", "b2u2", "msg_b2a2", "cb", "cs", "p1u", "msg_p1a",
    }  # fmt: skip
    assert [t.key for t in conversation_order(items)] == [
        "u1", "msg_a1", "b1u", "msg_b1a", "b2u", "msg_b2a", "b2u2", "msg_b2a2", "cb", "cs",
        "p1u", "msg_p1a",
    ]  # fmt: skip


def test_rewind_forks_give_two_branches_and_main_branch_is_the_latest() -> None:
    items = turns(LOG / "dag_fork.jsonl")
    assert [t.key for t in conversation_order(items)] == list("abcdefghijk")
    assert main_branch(items) == set("abcijk")
    within = turns(LOG / "dag_within_fork.jsonl")
    assert [t.key for t in conversation_order(within)] == [
        "a", "b", "c", "d", "e", "f", "d_prime", "e_prime",
    ]  # fmt: skip
    assert main_branch(within) == {"a", "b", "c", "d_prime", "e_prime"}


def test_attachments_and_progress_are_left_out_and_bridged_in_the_graph() -> None:
    items = read(LOG / "hook_attachments.jsonl")
    got = [(t.key, t.role, t.kind, t.text, t.parent_uuid) for t in items if isinstance(t, Turn)]
    assert got[:2] == [
        ("u-1", "user", "message", "Run the test suite", None),
        # its parent is the last hook attachment; it hangs under the prompt instead
        ("msg_001", "assistant", "message", "Running tests.", "u-1"),
    ]
    # progress records (hook runs) are parents of later records: bridged, never stored
    path = REAL / "-experiments-ideas" / "03eb5929-52b3-4b13-ada3-b93ae35806b8.jsonl"
    ideas = turns(path)
    assert not [t for t in ideas if t.extra.get("record_type") == "progress"]
    keys = {u for t in ideas for u in t.uuids}
    assert all(t.parent_uuid is None or t.parent_uuid in keys for t in ideas)


def test_summary_records_become_summary_turns_and_titles() -> None:
    path = (
        REAL
        / "-Users-dain-workspace-claude-code-log-sample"
        / "07f2e15c-a38b-454b-9148-60edc06de401.jsonl"
    )
    items = read(path)
    sid = "07f2e15c-a38b-454b-9148-60edc06de401"
    assert items[:3] == [
        SessionInfo(sid, "claude"),
        Turn(
            session_id=sid,
            key="summary:af936c4e-108b-42a6-be4b-8677a96902f3",
            role="summary",
            kind="summary",
            text="Automate Release Process with Justfile Command",
            line_no=1,
            end_line=1,
            end_offset=128,
            extra={"leaf_uuid": "af936c4e-108b-42a6-be4b-8677a96902f3"},
        ),
        items[2],
    ]
    # the project is learned from the first record with a cwd; the summaries name other sessions
    infos = [i for i in items if isinstance(i, SessionInfo)]
    assert infos == [
        SessionInfo(sid, "claude"),
        SessionInfo(sid, "claude", project="/Users/dain/workspace/claude-code-log"),
    ]
    edge = [i for i in read(LOG / "edge_cases.jsonl") if isinstance(i, SessionInfo)]
    assert edge[-1] == SessionInfo(
        "edge_cases",
        "claude",
        project="/tmp",
        title=(
            "Tested various edge cases including markdown formatting, long text, tool errors, "
            "system messages, command outputs, special characters and emojis. All message "
            "types render correctly in the transcript viewer."
        ),
    )


def test_one_session_info_per_session_id_in_a_file() -> None:
    infos = [i for i in read(LOG / "dag_fork.jsonl") if isinstance(i, SessionInfo)]
    assert infos == [SessionInfo(s, "claude", project="/tmp") for s in ("s1", "s2", "s3")]


# ---- sub-agents


def test_inline_sidechain_hangs_under_its_task_call() -> None:
    items = turns(LOG / "sidechain.jsonl")  # a real 1.0.35 session, trimmed
    assert [(t.key, t.is_sidechain, t.parent_tool_use_id) for t in items] == [
        ("msg_01G37QtAqcbedqfF5TU6Dmhu", False, None),
        ("a42c6fa0-5937-49b4-b1ad-42e99d44bef9", True, "toolu_01VJzVGXqdaUe6AYX6CAJUHz"),
        ("msg_01BFtsoYogEqE2F3dxmMare3", True, "toolu_01VJzVGXqdaUe6AYX6CAJUHz"),
        ("dc178f3d-3c73-4b48-93a6-001f9431b245", True, "toolu_01VJzVGXqdaUe6AYX6CAJUHz"),
        ("msg_01ABF4DJJuLxgGWJekztiuZi", True, "toolu_01VJzVGXqdaUe6AYX6CAJUHz"),
        # its parent line was trimmed from the fixture: the link cannot be followed
        ("msg_014MAJRtkcidptEeV6MUqmUJ", True, None),
    ]
    # a sidechain whose root hangs off the calling record itself
    memory = turns(LOG / "memory_sidechain.jsonl")
    assert [(t.key, t.parent_tool_use_id) for t in memory if t.is_sidechain] == [
        ("m_sa1", "toolu_task"),
        ("su1", "toolu_task"),
        ("m_sa2", "toolu_task"),
    ]
    assert main_branch(memory) == {"u1", "m_a1", "m_a2"}


def _assert_agent_under_call(order: list[Turn], agent_id: str, tool_use_id: str) -> None:
    keys = [t.key for t in order]
    call = next(i for i, t in enumerate(order) if tool_use_id in [c.id for c in t.tool_calls])
    result = next(i for i, t in enumerate(order) if t.extra.get("tool_use_id") == tool_use_id)
    agent = [i for i, t in enumerate(order) if t.agent_id == agent_id]
    assert call < min(agent) and max(agent) < result, (agent_id, keys[call], keys[result])


def test_agent_file_2_0_links_through_the_parent_result() -> None:
    folder = REAL / "-Users-dain-workspace-coderabbit-review-helper"
    main = turns(folder / "cb2e607c-c758-415a-8b45-c49e4631906a.jsonl")
    result = by_key(main, "70f14719-7300-4566-9a4c-f4a6476e4a38")
    assert (result.line_no, result.extra) == (
        7,
        {"agent_id": "ea02459f", "tool_use_id": "toolu_01HD7PpSCWhP2gP8dXvJiyZN"},
    )
    agent = turns(folder / "agent-ea02459f.jsonl")
    assert {(t.session_id, t.agent_id, t.is_sidechain) for t in agent} == {
        ("cb2e607c-c758-415a-8b45-c49e4631906a", "ea02459f", True)
    }
    task = json.loads(by_key(main, "msg_01Bm4U8urWjXsKBx8t4Jy1Dg").tool_calls[0].input)
    assert (agent[0].role, agent[0].parent_uuid, agent[0].text) == ("user", None, task["prompt"])
    order = conversation_order(main + agent)
    _assert_agent_under_call(order, "ea02459f", "toolu_01HD7PpSCWhP2gP8dXvJiyZN")
    assert main_branch(main + agent) == main_branch(main)


def test_subagents_2_1_link_through_the_parent_results() -> None:
    project = REAL / "-experiments-worktrees"
    files = discover([shared(project)])
    sid = "ef958aa1-0e93-49f0-bb71-150f63befcd1"
    assert [(f.layout, f.session_id, f.agent_id) for f in files] == [
        ("session", sid, None),
        ("subagent", sid, "a36efb2a1231c41e2"),
        ("subagent", sid, "a4ca7529859c158c2"),
        ("subagent", sid, "a52886dc180afb356"),
        ("subagent", sid, "a6aa8ad077d9ea083"),
        ("subagent", sid, "ab1e6e141221a29ab"),
        ("subagent", sid, "aef063ba534d73153"),
    ]
    main = [t for t in TranscriptReader(files[0]) if isinstance(t, Turn)]
    links = {t.extra["agent_id"]: t.extra["tool_use_id"] for t in main if "agent_id" in t.extra}
    assert links == {
        "ab1e6e141221a29ab": "toolu_01EaAN7bPNQrMTGoKhbEjVrx",
        "a52886dc180afb356": "toolu_016neBD9WjCCZqzRTP3afGDT",
        "a4ca7529859c158c2": "toolu_01GmrK6tgdD9D5xD6W5X9UUy",
        "aef063ba534d73153": "toolu_01N26s4U6vDxE1NRAH5CyCNf",
        "a6aa8ad077d9ea083": "toolu_0151DrVyXBXfb63SXGNF1qDb",
        "a36efb2a1231c41e2": "toolu_017y4gSjMWeQ3L2DAKiygU2y",
    }
    everything = list(main)
    for f in files[1:]:
        items = list(TranscriptReader(f))
        # these records carry no sessionId: the folder names the parent session
        assert {(t.session_id, t.agent_id) for t in items if isinstance(t, Turn)} == {
            (sid, f.agent_id)
        }
        everything += [t for t in items if isinstance(t, Turn)]
    alice = list(TranscriptReader(files[2]))
    assert alice[0] == SessionInfo(
        sid,
        "claude",
        project="-experiments/worktrees/.claude/worktrees/agent-a4ca7529",  # its worktree
        agent_id="a4ca7529859c158c2",
        extra={
            "layout": "subagent",
            "agent_type": "general-purpose",
            "description": "Research Claude Code plan mode",
        },
    )
    order = conversation_order(everything)
    assert len(order) == len(everything)
    for agent_id, tool_use_id in links.items():
        _assert_agent_under_call(order, agent_id, tool_use_id)
    assert main_branch(everything) == main_branch(main)


def test_other_real_sub_agents_link_to_their_parent_calls() -> None:
    cases = [
        (REAL / "-src-deep-manifest", "c8d9b115", "toolu_01MmDqMXjZLvzbNFLGH2ZA3k"),
        (REAL / "-src-experiments-claude_p", "a2271d1", "toolu_01SXaWzD5YZ73zGwchbcxeWi"),
        (LOG / "teammates", "aaaa111111111111", "tu_Task_alice"),
        (LOG / "teammates", "bbbb222222222222", "tu_Task_bob"),  # only the result text names it
    ]
    for folder, agent_id, tool_use_id in cases:
        files = discover([shared(folder)])
        items = [t for f in files for t in TranscriptReader(f) if isinstance(t, Turn)]
        assert any(t.agent_id == agent_id for t in items), agent_id
        _assert_agent_under_call(conversation_order(items), agent_id, tool_use_id)


def test_warmup_agent_files_are_dropped_whole() -> None:
    folder = REAL / "-Users-dain-workspace-danieldemmel-me-next"
    for name, lines in (("agent-c3d572ee.jsonl", 2), ("agent-3ea04571.jsonl", 2)):
        reader = TranscriptReader(classify(shared(folder / name)))
        assert list(reader) == []
        size = (folder / name).stat().st_size
        assert (reader.skipped_reason, reader.offset, reader.line_no) == (
            "warmup probe",
            size,
            lines,
        )
    # 2.0.44 wrote only the probe's answer: one root response calling no tool
    lone = TranscriptReader(
        classify(REAL / "-Users-dain-workspace-JSSoundRecorder" / "agent-8d27fe83.jsonl")
    )
    assert (list(lone), lone.skipped_reason) == ([], "warmup probe")
    kept = []
    for f in discover([REAL]):
        reader = TranscriptReader(f)
        items = list(reader)
        if f.layout == "agent" and reader.skipped_reason is None:
            kept.append(f.agent_id)
            assert items
    assert sorted(kept) == [
        "668b5ac2", "9fa17969", "b52b1c09", "c8d9b115", "db734024", "ea02459f", "f36dc5e5",
    ]  # fmt: skip


# ---- damage, offsets, every file


def test_malformed_lines_are_reported_with_file_and_line() -> None:
    path = SIDECAR / "malformed.jsonl"
    items = read(path)
    assert [(type(i).__name__, getattr(i, "line_no", None)) for i in items] == [
        ("ParseIssue", 1),
        ("SessionInfo", None),
        ("Turn", 2),
        ("ParseIssue", 3),
    ]
    issue = items[0]
    assert isinstance(issue, ParseIssue)
    assert (issue.path, issue.reason.split(":")[0]) == (str(path), "invalid JSON")
    edge = [
        (i.line_no, i.reason) for i in read(LOG / "edge_cases.jsonl") if isinstance(i, ParseIssue)
    ]
    assert edge == [
        (13, "not a JSON object: str"),
        (15, "not a JSON object: int"),
        (16, "not a JSON object: list"),
    ]


def test_reading_from_a_mid_file_offset_yields_only_the_later_lines() -> None:
    path = (
        REAL
        / "-Users-dain-workspace-JSSoundRecorder"
        / "7acd37a8-2745-4b58-a8a9-46164b22ad9e.jsonl"
    )
    full = turns(path)
    later = [t for t in read(path, offset=150069, line_no=55) if isinstance(t, Turn)]
    # line 56 is "[Request interrupted by user for tool use]": left out
    assert later[0].key == "4838f5cc-f8fc-4b0a-9d05-e12ccd7c8d42"
    assert later == [t for t in full if t.line_no > 55]


def test_every_shared_transcript_parses_to_its_end() -> None:
    files = discover([shared(DATA)])
    issues = []
    for f in files:
        reader = TranscriptReader(f)
        issues += [
            (i.path.removeprefix(str(DATA) + "/"), i.line_no)
            for i in reader
            if isinstance(i, ParseIssue)
        ]
        # consumed to the end, or held before a tail of left-out records only
        tail = list(TranscriptReader(f, reader.offset, reader.line_no))
        assert not [i for i in tail if not isinstance(i, SessionInfo)], f.path
        assert reader.partial_line is None
    assert issues == [
        ("claude-code-log-iansherr-fork/test/test_data/edge_cases.jsonl", 13),
        ("claude-code-log-iansherr-fork/test/test_data/edge_cases.jsonl", 15),
        ("claude-code-log-iansherr-fork/test/test_data/edge_cases.jsonl", 16),
        ("sidecar/internal/adapter/claudecode/testdata/malformed.jsonl", 1),
        ("sidecar/internal/adapter/claudecode/testdata/malformed.jsonl", 3),
    ]


def test_truncated_last_line_is_left_for_later_without_an_issue(tmp_path: Path) -> None:
    first = {"type": "user", "uuid": "u1", "sessionId": "s", "message": {"content": "hi"}}
    second = {
        "type": "user",
        "uuid": "u2",
        "parentUuid": "u1",
        "sessionId": "s",
        "message": {"content": "there"},
    }
    head = json.dumps(first).encode() + b"\n"
    tail = json.dumps(second).encode()
    path = tmp_path / "s.jsonl"
    path.write_bytes(head + tail[:20])
    reader = TranscriptReader(classify(path))
    items = list(reader)
    assert [type(i).__name__ for i in items] == ["SessionInfo", "Turn"]
    assert reader.partial_line == 2  # still being written: not malformed (yet)
    assert (reader.offset, reader.line_no) == (len(head), 1)

    path.write_bytes(head + tail)  # complete now, still without a trailing newline: consumed
    again = TranscriptReader(classify(path), reader.offset, reader.line_no)
    got = [t for t in again if isinstance(t, Turn)]
    assert [(t.key, t.line_no, t.end_offset) for t in got] == [("u2", 2, len(head + tail))]
    assert (again.offset, again.line_no) == (len(head + tail), 2)


def test_bad_content_is_tolerated_or_reported_never_raised(tmp_path: Path) -> None:
    def record(rtype: object, uuid: str, message: object, **more: object) -> bytes:
        return json.dumps(
            {"type": rtype, "uuid": uuid, "sessionId": "s", "message": message, **more}
        ).encode()

    big = 123456789012345678901234567890  # past orjson's 64-bit integers
    tool_use = {"type": "tool_use", "name": 5, "input": "raw"}
    lines = [
        b'{"type":"user","uuid":"u1","message":{"content":"caf\xe9 \xff"}}',  # not UTF-8
        record("user", "u2", {"content": "half \ud83d emoji"}),  # a lone surrogate
        record("user", "u3", "just a string"),
        record("user", "u4", {"content": 42}),
        record("assistant", "a1", {"id": 7, "content": [1, None, "x"]}),
        record("user", "u5", {"content": [{"type": "tool_result", "content": {"odd": 1}}]}),
        record("assistant", "a2", {"id": "m2", "content": [tool_use]}, sessionId=["s"]),
        record(17, "x1", None, timestamp=3),
        record("user", "u6", {"content": f"big {big}"}, n=big),
        b"[[[[",
        b"null",
    ]
    path = tmp_path / "s.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    items = list(TranscriptReader(classify(path)))
    got = [(t.key, t.kind, t.text) for t in items if isinstance(t, Turn)]
    assert got == [
        ("u1", "message", "caf\ufffd \ufffd"),
        ("u2", "message", "half \ufffd emoji"),
        # u3, u4 say nothing and x1 is of no known type: left out
        ("a1", "message", "x"),
        ("u5", "tool_result", "[result] {'odd': 1}"),
        ("m2", "message", '[tool: ?] "raw"'),
        ("u6", "message", "big 123456789012345678901234567890"),
    ]
    assert [(i.line_no, i.reason.split(":")[0]) for i in items if isinstance(i, ParseIssue)] == [
        (10, "invalid JSON"),
        (11, "not a JSON object"),
    ]


def test_long_results_are_clipped_at_token_boundaries() -> None:
    secret = "sk-" + "A" * 40
    text = "x " * 995 + secret + " " + "y" * 3000 + " " + "z " * 400 + secret
    got = clip(text)
    head, rest = got.split("\n[... ", 1)
    omitted, tail = rest.split(" chars omitted ...]\n")
    assert head == ("x " * 995).rstrip(" ")
    assert tail == "z " * 400 + secret
    assert int(omitted) == len(text) - len(head) - len(tail)
    assert secret not in head and secret[:10] not in head
    assert clip("short") == "short"
    assert clip("a" * 600, 500, 0) == " [... 600 chars omitted ...]"  # one long token: dropped


def test_discover_classifies_layouts_and_sorts_main_sessions_first() -> None:
    meta = REAL / "-experiments-worktrees" / "ef958aa1-0e93-49f0-bb71-150f63befcd1" / "subagents"
    files = discover(
        [
            shared(REAL / "-src-deep-manifest"),
            LOG / "workflow_basic",
            SIDECAR / "empty.jsonl",  # empty: skipped
            meta / "agent-a36efb2a1231c41e2.meta.json",  # not a transcript
            meta / "agent-a36efb2a1231c41e2.jsonl",
            meta / "agent-a36efb2a1231c41e2.jsonl",  # twice: once
        ]
    )
    wf_sid = "11110000-0000-4000-8000-000000000001"
    wf = LOG / "workflow_basic" / wf_sid / "subagents" / "workflows" / "wf_demo01"
    wf_meta = {"agentType": "workflow-subagent"}
    alice_meta = {"agentType": "general-purpose", "description": "Round 2: alice comparison"}
    deep = REAL / "-src-deep-manifest"
    assert [(f.path, f.layout, f.session_id, f.agent_id, f.meta) for f in files] == [
        (deep / "a7da6a22-facc-4fcd-8bab-f83c87862004.jsonl", "session",
         "a7da6a22-facc-4fcd-8bab-f83c87862004", None, {}),
        (LOG / "workflow_basic" / f"{wf_sid}.jsonl", "session", wf_sid, None, {}),
        (wf / "journal.jsonl", "session", "journal", None, {}),
        (deep / "agent-c8d9b115.jsonl", "agent", None, "c8d9b115", {}),
        (meta / "agent-a36efb2a1231c41e2.jsonl", "subagent",
         "ef958aa1-0e93-49f0-bb71-150f63befcd1", "a36efb2a1231c41e2", alice_meta),
        (wf / "agent-ag000001.jsonl", "subagent", wf_sid, "ag000001", wf_meta),
        (wf / "agent-ag000002.jsonl", "subagent", wf_sid, "ag000002", wf_meta),
        (wf / "agent-ag000003.jsonl", "subagent", wf_sid, "ag000003", wf_meta),
    ]  # fmt: skip
    # a workflow journal holds no turns
    assert list(TranscriptReader(files[2])) == []


def test_reader_reports_a_missing_file(tmp_path: Path) -> None:
    items = list(TranscriptReader(TranscriptFile(tmp_path / "gone.jsonl", "session", "gone")))
    assert items == [
        ParseIssue(str(tmp_path / "gone.jsonl"), 0, "cannot open: No such file or directory")
    ]


# ---- ordering


def _t(key: str, parent: str | None, ts: str, **kw: object) -> Turn:
    return Turn(
        "s",
        key,
        "user",
        "message",
        key,
        uuid=key,
        parent_uuid=parent,
        uuids=[key],
        timestamp=ts,
        **kw,
    )  # type: ignore[arg-type]


def test_conversation_order_survives_cycles_and_dangling_parents() -> None:
    items = [
        _t("c", "b", "3"),
        _t("b", "c", "2"),  # b <-> c: a cycle with no root
        _t("a", None, "1"),
        _t("d", "gone", "4"),  # dangling parent: a root
        _t("e", "a", "5"),
        _t("f", "f", "6"),  # its own parent
    ]
    assert [t.key for t in conversation_order(items)] == ["a", "e", "d", "f", "b", "c"]
    assert main_branch(items) == {"f"}
    assert conversation_order([]) == [] and main_branch([]) == set()


def test_main_branch_ignores_sidechains_and_summaries() -> None:
    items = [
        _t("a", None, "1"),
        _t("b", "a", "2"),
        _t("side", None, "9", is_sidechain=True, agent_id="x"),
        Turn("s", "summary:b", "summary", "summary", "title", extra={"leaf_uuid": "b"}),
    ]
    assert main_branch(items) == {"a", "b"}


def test_offset_at_each_turn_is_just_past_it_so_a_consumer_may_stop_anywhere() -> None:
    for f in discover([shared(REAL)]):
        reader = TranscriptReader(f)
        for item in reader:
            if isinstance(item, Turn):
                assert (reader.offset, reader.line_no) == (item.end_offset, item.end_line), item
                resumed = TranscriptReader(f, reader.offset, reader.line_no)
                later = next((t for t in resumed if isinstance(t, Turn)), None)
                assert later is None or later.line_no > item.end_line


def test_meta_json_naming_the_parent_call_links_every_turn(tmp_path: Path) -> None:
    folder = tmp_path / "proj" / "s1" / "subagents"
    folder.mkdir(parents=True)
    (folder / "agent-x1.meta.json").write_text('{"agentType": "Explore", "toolUseId": "toolu_9"}')
    prompt = {"type": "user", "uuid": "r1", "parentUuid": None, "message": {"content": "Look"}}
    answer = {"type": "assistant", "uuid": "r2", "parentUuid": "r1", "message": {"id": "m1"}}
    write(folder, "agent-x1.jsonl", prompt, answer)
    (tf,) = discover([tmp_path])
    items = list(TranscriptReader(tf))
    assert items[0] == SessionInfo(
        "s1",
        "claude",
        agent_id="x1",
        parent_tool_use_id="toolu_9",
        extra={"layout": "subagent", "agent_type": "Explore"},
    )
    got = [(t.key, t.session_id, t.agent_id, t.parent_tool_use_id) for t in items[1:]]
    assert got == [("r1", "s1", "x1", "toolu_9"), ("m1", "s1", "x1", "toolu_9")]
