"""Tool runs: which failures become lessons, and which commands replace each other."""

from __future__ import annotations

import json
from pathlib import Path

from lmm.memory.extract import run_extraction
from lmm.memory.extract_rules import RuleExtractor
from lmm.memory.seam import SessionView, validate
from lmm.memory.toolruns import (
    base_command,
    candidates,
    command_subject,
    error_line,
    tool_command,
)
from lmm.records import SessionInfo, ToolCall, ToolResult, Turn
from lmm.store import cognitions
from lmm.store.db import Store


def _call(n: int, command: str, prose: str = "") -> Turn:
    text = f"{prose}\n[tool: Bash] {json.dumps({'command': command})}".strip()
    call = ToolCall(f"c{n}", "Bash", json.dumps({"command": command}))
    return Turn("s", f"a{n}", "assistant", "message", text, tool_calls=[call])


def _result(n: int, output: str, ok: bool = True) -> Turn:
    res = ToolResult(f"c{n}", output, is_error=not ok)
    return Turn("s", f"r{n}", "user", "tool_result", output, tool_results=[res])


def _edit(n: int, path: str) -> list[Turn]:
    data = {"file_path": path, "old_string": "a", "new_string": "b"}
    call = ToolCall(f"c{n}", "Edit", json.dumps(data))
    return [
        Turn("s", f"a{n}", "assistant", "message", "", tool_calls=[call]),
        Turn("s", f"r{n}", "user", "tool_result", "ok", tool_results=[ToolResult(f"c{n}", "ok")]),
    ]


CLAP_ERROR = (
    "Exit code 101\n   Compiling logslice v0.1.0\nerror: cannot find derive macro `ValueEnum` "
    "in this scope\n  --> src/main.rs:12:10"
)


def test_a_compile_error_fixed_once_is_a_lesson_not_a_gotcha() -> None:
    """`cargo add` after a failed `cargo build` is the fix, not a retry of the build: the error
    and why it happened are a lesson; nothing says `cargo build` fails here."""
    turns = [
        _call(1, "cargo build"),
        _result(1, CLAP_ERROR, ok=False),
        _call(
            2,
            "cargo add clap --features derive",
            "clap's derive macros (`Parser`, `ValueEnum`) live behind the `derive` cargo "
            'feature; I declared plain `clap = "4.5"`. Enabling it:',
        ),
        _result(2, "Adding clap v4.5 to dependencies\n  Features: + derive"),
        _call(3, "cargo build"),
        _result(3, "Finished `dev` profile"),
    ]
    view = SessionView("s", "/p", 1, turns)
    found = list(candidates(view))
    assert not [c for c in found if c.category == "gotcha"]
    lessons = [c for c in found if c.category == "lesson"]
    assert [c.text for c in lessons] == [
        "error: cannot find derive macro `ValueEnum` in this scope → clap's derive macros "
        "(`Parser`, `ValueEnum`) live behind the `derive` cargo feature; I declared plain "
        '`clap = "4.5"`. (then `cargo build` passed)'
    ]
    assert all(validate(c, view) is None for c in found)


def test_a_rust_panic_with_its_cause_and_fix_is_a_lesson() -> None:
    panic = (
        "Exit code 101\n    Finished `release` profile\n\nthread 'main' panicked at "
        "src/stats.rs:22:84:\ncalled `Option::unwrap()` on a `None` value\nnote: run with "
        "`RUST_BACKTRACE=1`"
    )
    assert error_line(panic) == (
        "thread 'main' panicked at src/stats.rs:22:84: called `Option::unwrap()` on a `None` value"
    )
    prose = (
        "My fault: I used `.unwrap()` on the latency lookup. Healthcheck lines have no "
        "`latency_ms`, so it panics. Fix: skip those lines and count them in `Summary::skipped`."
    )
    turns = [_call(1, "cargo run --release"), _result(1, panic, ok=False)]
    turns += [Turn("s", "a2", "assistant", "message", prose), *_edit(3, "/p/src/stats.rs")]
    view = SessionView("s", "/p", 1, turns)
    (lesson,) = [c for c in candidates(view) if c.category == "lesson"]
    assert lesson.text.endswith(
        "→ Healthcheck lines have no `latency_ms`, so it panics. Fix: skip those lines and "
        "count them in `Summary::skipped`."
    )
    assert validate(lesson, view) is None


def test_a_failing_assertion_or_a_wrong_path_is_no_lesson() -> None:
    turns = [
        _call(1, "uv run pytest tests/test_a.py"),
        _result(1, "E       AssertionError: assert 'Session ID:' in ''", ok=False),
        Turn("s", "a2", "assistant", "message", "The test fails because the mock is not updated."),
        _call(3, "uv run pytest tests/test_b.py"),
        _result(3, "ERROR: file or directory not found: tests/test_b.py", ok=False),
        Turn("s", "a4", "assistant", "message", "The issue is that the link does not appear."),
        _call(5, "uv run pytest"),
        _result(5, "TypeError: CacheManager() missing 1 required positional argument", ok=False),
        Turn("s", "a6", "assistant", "message", "I need to fix the CacheManager initialization."),
    ]
    view = SessionView("s", "/p", 1, turns)
    assert [c.text for c in candidates(view) if c.category == "lesson"] == []


def _hook_session(store: Store, sid: str, day: str, hooks: list[str]) -> None:
    store.add_session(SessionInfo(sid, "claude", project="/p"))
    store.add_turns(
        Turn(
            sid,
            f"{sid}-{i}",
            "system",
            "system",
            f"Stop [{hook}] completed successfully",
            timestamp=f"{day}T00:00:0{i}Z",
        )
        for i, hook in enumerate(hooks)
    )


def test_a_newer_command_for_one_purpose_supersedes_the_older(tmp_path: Path) -> None:
    """One command per purpose and toolchain: `uv run ty check` replaces `uv run pyright` as the
    type checker; the test hook stays, and so would a JavaScript type checker."""
    with Store(tmp_path / "lmm.db") as store:
        _hook_session(store, "a", "2026-01-01", ["uv run pyright", "uv run pytest", "npx tsc"])
        _hook_session(store, "b", "2026-02-01", ["uv run ty check"])
        report = run_extraction(store, RuleExtractor())
        assert report.superseded == 1
        active = sorted(c.text for c in cognitions.list_(store))
        assert active == [
            "A Stop hook runs `npx tsc`.",
            "A Stop hook runs `uv run pytest`.",
            "A Stop hook runs `uv run ty check`.",
        ]


def test_a_command_quoted_inside_another_is_data() -> None:
    """`pnpm pkg set scripts.x='pnpm build && ...'` sets a script; it is no build command, and its
    `&&` splits nothing."""
    assert tool_command("pnpm pkg set scripts.pages:deploy='pnpm build && wrangler deploy'") is None
    assert tool_command("cd web && pnpm build; echo done") == ("build", "pnpm build")
    assert (
        base_command("git commit -m 'a; b' && pnpm build") == "git commit -m 'a; b' && pnpm build"
    )


def test_a_test_run_that_fails_with_one_flag_and_passes_with_another_is_remembered() -> None:
    failed = (
        "created: 2/2 workers\n..F\nFAILED tests/test_a.py::test_list - sqlalchemy.exc."
        "OperationalError: (sqlite3.OperationalError) database is locked\n"
        "==== 1 failed, 4 passed in 6.12s ===="
    )
    assert error_line(failed) == (
        "sqlalchemy.exc.OperationalError: (sqlite3.OperationalError) database is locked"
    )
    assert error_line("FAILED tests/test_a.py::test_b - assert 201 == 409") == "assert 201 == 409"
    session = SessionView("s", "/p", 1, [
        _call(1, "uv run pytest -n auto"), _result(1, failed, ok=False),
        _call(2, "uv run pytest -p no:xdist"), _result(2, "7 passed in 3.40s"),
    ])  # fmt: skip
    [found] = [c for c in candidates(session) if "no:xdist" in c.text]
    assert "-n auto" in found.text and "database is locked" in found.text
    assert validate(found, session) is None


def test_a_failure_in_a_tool_s_own_words_is_read() -> None:
    """Outputs in none of the known error forms still say what failed: cgo's missing compiler,
    goreleaser's `⨯ ... error=...`. A retry with the variable set is the way that works."""
    cgo = 'Exit code 1\n# runtime/cgo\ncgo: C compiler "gcc" not found: exec: "gcc": not in $PATH'
    assert error_line(cgo) == 'cgo: C compiler "gcc" not found: exec: "gcc": not in $PATH'
    release = "  • starting release...\n  ⨯ release failed after 0s  error=git is in a dirty state"
    assert error_line(release) == "release failed after 0s  error=git is in a dirty state"
    assert error_line("Exit code 1\n") is None
    session = SessionView("s", "/p", 1, [
        _call(1, "GOOS=linux GOARCH=arm64 go build -o dist/app ./cmd/app"),
        _result(1, cgo, ok=False),
        _call(2, "CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build -o dist/app ./cmd/app"),
        _result(2, ""),
    ])  # fmt: skip
    [found] = [c for c in candidates(session) if "fails here" in c.text]
    assert found.text.startswith("`GOOS=linux GOARCH=arm64 go build")
    assert "`CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build" in found.text
    assert validate(found, session) is None


def test_a_build_with_set_variables_is_another_recipe_than_the_plain_build() -> None:
    """`go build ./...` later does not replace the cross-build for the Pi, nor the reverse."""
    plain = command_subject("build", "go build ./...")
    cross = command_subject("build", "CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build")
    assert plain == "command to build (go)"
    assert cross == "command to build (go CGO_ENABLED GOARCH GOOS)"
    assert command_subject("run the tests", "uv run pytest") == "command to run the tests (python)"
