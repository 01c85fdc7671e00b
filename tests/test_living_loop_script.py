"""The living-loop benchmark's script (bench/living_loop/script.json) is consistent, and the
bench reads what reached the model the way it claims. The run itself needs the real CLI:
`python bench/living_loop.py` (docs/benchmarks.md)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

BENCH = Path(__file__).resolve().parents[1] / "bench" / "living_loop.py"


def load_bench() -> Any:
    spec = importlib.util.spec_from_file_location("living_loop", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_fact_is_stated_before_it_is_applied_and_cases_name_known_facts() -> None:
    bench = load_bench()
    script = bench.load_script(bench.SCRIPT)
    facts = script["facts"]
    assert len(script["sessions"]) == 20
    assert {f["kind"] for f in facts.values()} == {"preference", "lesson"}
    applied = [f for s in script["sessions"] for p in s["prompts"] for f in p.get("applies", [])]
    assert set(applied) == set(facts)  # every fact is needed later at least once
    cases = [t for s in script["sessions"] for p in s["prompts"] for t in p["turns"] if "tool" in t]
    lessons = [t for t in cases if "expect_lesson" in t]
    nothing = [t for t in cases if t.get("expect_nothing")]
    assert lessons and nothing
    assert all(set(t["expect_lesson"]) <= set(facts) for t in lessons)
    # a fact's keys are not all in the prompt that applies it: the memory has to supply them
    for s in script["sessions"]:
        for p in s["prompts"]:
            for fid in p.get("applies", []):
                keys = facts[fid]["keys"]
                assert not all(bench.holds(p["text"], k) for k in keys), (s["id"], fid)


def test_keys_match_whole_short_words_only() -> None:
    bench = load_bench()
    assert bench.holds("We use uv here", "uv") and not bench.holds("the uvicorn server", "uv")
    assert bench.holds("Run with -p no:xdist", "no:xdist")
    assert bench.holds("Store as UTC.", "utc")


def test_memory_blocks_skip_escaped_tags_and_this_turn_starts_after_the_assistant() -> None:
    bench = load_bench()
    text = '<lmm-memory kind="recall">\n[1] &lt;lmm-memory kind="recall"> old\n</lmm-memory>'
    assert bench.memory_blocks(text) == [("recall", '\n[1] &lt;lmm-memory kind="recall"> old\n')]

    class Request:
        body: ClassVar[dict[str, Any]] = {
            "messages": [
                {"role": "user", "content": "first prompt"},
                {"role": "assistant", "content": [{"type": "text", "text": "ok"}]},
                {"role": "user", "content": "second prompt"},
                {"role": "system", "content": [{"type": "text", "text": "hook context"}]},
            ]
        }

    assert bench.this_turn(Request()) == "second prompt\nhook context"


def test_shims_answer_the_scripted_results_in_order(tmp_path: Path) -> None:
    bench = load_bench()

    def bash(command: str, output: str, code: int) -> dict[str, Any]:
        return {
            "tool": "Bash",
            "input": {"command": command},
            "result": {"output": output, "exit": code},
        }

    prompt = {
        "turns": [
            bash("go build ./x", "no gcc", 1),
            bash("CGO_ENABLED=0 go build ./x", "", 0),
            bash("go build ./x", "again", 2),
        ]
    }
    table = bench.shim_table(prompt)
    assert table[1]["env"] == {"CGO_ENABLED": "0"} and table[1]["argv"] == ["go", "build", "./x"]
    (tmp_path / "shims.json").write_text(json.dumps(table))
    shim = tmp_path / "go"
    shim.write_text(bench.SHIM.format(python=sys.executable))
    shim.chmod(0o755)
    env = {"PATH": os.environ["PATH"], "LMM_BENCH_SHIMS": str(tmp_path / "shims.json")}

    def go(extra: dict[str, str]) -> tuple[int, str]:
        proc = subprocess.run(
            [str(shim), "build", "./x"], env={**env, **extra}, capture_output=True, text=True
        )
        return proc.returncode, proc.stdout + proc.stderr

    assert go({}) == (1, "no gcc\n")
    assert go({"CGO_ENABLED": "0"}) == (0, "")
    assert go({}) == (2, "again\n")
    assert go({}) == (2, "again\n")  # the last answer repeats
