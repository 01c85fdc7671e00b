"""The living loop, measured with the real Claude Code CLI: does what a developer stated in one
session reach the agent when a later prompt needs it, with nothing but `lmm install-hooks`?

    LMM_CLAUDE_BIN=/path/to/claude python bench/living_loop.py               # the 20 sessions
    python bench/living_loop.py --sessions 3 --out /tmp/loop.json            # smoke run
    python bench/living_loop.py --serve     # lmm embed after session 1, then lmm serve warm
    python bench/living_loop.py --act                                        # + PreToolUse hook
    python bench/living_loop.py --hooks-src /tmp/old/src   # the same with another lmm's hooks

A fresh HOME and LMM_HOME; `lmm install-hooks --user` (with `--act` when asked) writes the hooks
into HOME/.claude/settings.json, each command wrapped to time it. Then, session after session of
bench/living_loop/script.json, each prompt is one `claude -p` run (the session's later prompts
`--resume` it) against the scripted Messages-API stand-in of tests/assets/claude_cli.py, in the
project's folder HOME/work/<project>. The stand-in answers each prompt with its scripted turns:
tool calls the CLI really runs, then a text. Bash commands reach shims (HOME/shims first on PATH)
that print the scripted result and exit with its code, so the transcripts hold real tool runs with
their errors. After every run the bench waits until lmm's background job has drained its queue
(SessionEnd queued the transcript): nothing else ingests, extracts or embeds.

Measured, from the requests that reached the stand-in (what the model saw):
- recall: for every prompt and every fact in its `applies`, whether the UserPromptSubmit context
  (`<lmm-memory kind="recall">` in the prompt's message) holds all the fact's `keys`
  (case-insensitive; a key of 3 characters or less as a whole word); hits / total, by kind and by
  scope (facts applied in their own project, and in another one). SessionStart apart: whether the
  context at the start of the session (`kind="project"`, first run) holds them.
- tokens: context characters / 4 per prompt, for prompts with facts to recall and without.
- act-time: for each scripted tool call with `expect_lesson` (fact ids) or `expect_nothing`,
  the `<lmm-memory>` blocks that are new in the request carrying its result (a PreToolUse
  hook's context lands there): hit when they hold the facts' keys; for `expect_nothing`, when
  there is none. Only meaningful with a PreToolUse hook installed (`--act`).
- hook wall time per event (p50 / p95, the wrapper's `date` calls included: ~2 ms), and the
  background job's lag: from the end of a run until its SessionEnd hook has run and the job has
  drained the queue (the next prompt waits for it: sessions are minutes apart in real use).

Script format (JSON): `facts`: id -> {kind: preference | lesson, project, scope?: user, text,
keys: [...]}; `sessions`: [{id, project, day, prompts: [{text, applies?: [fact ids], turns:
[{tool, input, result?: {output, exit}, expect_lesson?: [fact ids] | expect_nothing?: true} |
{text}]}]}]. A relative `file_path` in a tool input is taken from the project's folder. A fact
may only be applied in a session after the one that states it (checked on load).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO / "tests")]

from assets.claude_cli import (  # noqa: E402
    MessagesStub,
    Reply,
    claude_bin,
    content_text,
    run_claude,
)
from lmm.serve import background  # noqa: E402

SCRIPT = REPO / "bench" / "living_loop" / "script.json"
MEMORY = re.compile(r'<lmm-memory kind="([^"]*)">(.*?)</lmm-memory>', re.S)
KEEP_REAL = {"git", "ls", "cat"}  # commands the shims leave to the system
JOB_TIMEOUT = 300.0

SHIM = """#!{python}
import json, os, sys
table = json.load(open(os.environ["LMM_BENCH_SHIMS"]))
name = os.path.basename(sys.argv[0])
argv = [name, *sys.argv[1:]]
state = os.environ["LMM_BENCH_SHIMS"] + ".used"
used = open(state).read().split() if os.path.exists(state) else []
fits = [i for i, e in enumerate(table) if e["argv"] == argv
        and all(os.environ.get(k) == v for k, v in e["env"].items())]
fits.sort(key=lambda i: -len(table[i]["env"]))
fresh = [i for i in fits if str(i) not in used]
pick = fresh[0] if fresh else (fits[-1] if fits else None)
if pick is None:
    sys.exit(0)
with open(state, "a") as f:
    f.write(f"{{pick}}\\n")
out = table[pick]["output"]
(sys.stdout if table[pick]["exit"] == 0 else sys.stderr).write(out + ("\\n" if out else ""))
sys.exit(table[pick]["exit"])
"""

TIMED = (
    't0=$(date +%s%N); {command}; echo "{event} $(( ($(date +%s%N) - t0) / 1000 ))" '
    ">> {log}; exit 0"
)


# ---- the script


def load_script(path: Path) -> dict[str, Any]:
    """The script, checked: each fact is stated (its keys all occur) in a session of its project
    before any session whose prompts apply it."""
    script = json.loads(path.read_text())
    stated: dict[str, int] = {}
    for fid, fact in script["facts"].items():
        for n, session in enumerate(script["sessions"]):
            if session["project"] == fact["project"] and _states(session, fact):
                stated[fid] = n
                break
        assert fid in stated, f"no session of {fact['project']} states {fid}"
    for n, session in enumerate(script["sessions"]):
        for prompt in session["prompts"]:
            for fid in prompt.get("applies", []):
                assert stated[fid] < n, f"{session['id']} applies {fid} before it is stated"
    script["stated_in"] = {fid: script["sessions"][n]["id"] for fid, n in stated.items()}
    return script


def _states(session: dict[str, Any], fact: dict[str, Any]) -> bool:
    text = json.dumps(session["prompts"])
    return all(holds(text, key) for key in fact["keys"])


def holds(text: str, key: str) -> bool:
    if len(key) <= 3 and key.isalnum():
        return (
            re.search(rf"(?<![A-Za-z0-9]){re.escape(key)}(?![A-Za-z0-9])", text, re.I) is not None
        )
    return key.lower() in text.lower()


def replies(prompt: dict[str, Any], cwd: Path) -> list[Reply]:
    out = []
    for turn in prompt["turns"]:
        if "tool" in turn:
            args = dict(turn["input"])
            if "file_path" in args and not os.path.isabs(args["file_path"]):
                args["file_path"] = str(cwd / args["file_path"])
            out.append(Reply.tool(turn["tool"], args))
        else:
            out.append(Reply.text(turn["text"]))
    return out


def shim_table(prompt: dict[str, Any]) -> list[dict[str, Any]]:
    table = []
    for turn in prompt["turns"]:
        if turn.get("tool") != "Bash" or "result" not in turn:
            continue
        words = shlex.split(turn["input"]["command"])
        env = {}
        while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):
            key, _, value = words.pop(0).partition("=")
            env[key] = value
        table.append({"argv": words, "env": env, **turn["result"]})
    return table


# ---- one fresh install


def install(root: Path, act: bool, src: Path) -> dict[str, str]:
    """HOME, LMM_HOME, shims and the timed hooks of the lmm in `src`; returns the env for the
    CLI and its hooks."""
    home, store = root / "home", root / "lmm"
    shims = home / "shims"
    shims.mkdir(parents=True)
    env = {
        "LMM_HOME": str(store),
        "PYTHONPATH": str(src),
        "PATH": f"{shims}:{os.environ['PATH']}",
        "LMM_BENCH_SHIMS": str(root / "shims.json"),
    }
    cmd = [sys.executable, "-m", "lmm", "install-hooks", "--user"] + (["--act"] if act else [])
    proc = subprocess.run(
        cmd, env={**os.environ, **env, "HOME": str(home)}, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise SystemExit(f"lmm install-hooks failed: {proc.stderr.strip()}")
    settings_file = home / ".claude" / "settings.json"
    settings = json.loads(settings_file.read_text())
    for event, groups in settings["hooks"].items():
        for group in groups:
            for hook in group["hooks"]:
                hook["command"] = TIMED.format(
                    command=hook["command"], event=event, log=root / "hook_times.txt"
                )
    settings_file.write_text(json.dumps(settings, indent=2))
    return env


def start_server(env: dict[str, str]) -> subprocess.Popen[bytes]:
    """`lmm embed` (the packaged MiniLM: from now on the job embeds each round), then `lmm serve
    --no-model` keeping it warm for the hooks; returns the server once it answers."""
    full = {**os.environ, **env}
    lmm = [sys.executable, "-m", "lmm"]
    subprocess.run([*lmm, "embed"], env=full, check=True, capture_output=True)
    server = subprocess.Popen([*lmm, "serve", "--no-model"], env=full, stderr=subprocess.DEVNULL)
    info = Path(env["LMM_HOME"]) / "server.json"
    end = time.monotonic() + JOB_TIMEOUT
    while not info.exists():
        if server.poll() is not None or time.monotonic() > end:
            raise SystemExit("lmm serve did not start")
        time.sleep(0.2)
    return server


def write_shims(root: Path, script: dict[str, Any]) -> None:
    names = set()
    for session in script["sessions"]:
        for prompt in session["prompts"]:
            names |= {e["argv"][0] for e in shim_table(prompt) if e["argv"]}
    for name in names - KEEP_REAL:
        path = root / "home" / "shims" / name
        path.write_text(SHIM.format(python=sys.executable))
        path.chmod(0o755)


# ---- running and reading what the model saw


def memory_blocks(text: str) -> list[tuple[str, str]]:
    return MEMORY.findall(text)


def detached_ingests(root: Path) -> list[int]:
    """Pids of `lmm ingest` processes reading a transcript under `root`."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if b"lmm\x00ingest\x00" in cmdline and str(root).encode() in cmdline:
                pids.append(int(proc.name))
    return pids


def this_turn(request: Any) -> str:
    """The text of a request's messages after the last assistant message: the new prompt and
    what the CLI sent with it (this version sends hook contexts as a `system` message there)."""
    messages = request.body.get("messages", [])
    last = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=-1)
    return "\n".join(content_text(m.get("content")) for m in messages[last + 1 :])


def run_prompt(
    root: Path, env: dict[str, str], cwd: Path, prompt: dict[str, Any], resume: str | None
) -> dict[str, Any]:
    table = shim_table(prompt)
    (root / "shims.json").write_text(json.dumps(table))
    (root / "shims.json.used").unlink(missing_ok=True)
    stub = MessagesStub(default=Reply.text("Done."))
    stub.on(prompt["text"], *replies(prompt, cwd))
    args = ["-p", prompt["text"], "--output-format", "json"]
    if resume:
        args += ["--resume", resume]
    ends = len(hook_times(root).get("SessionEnd", []))
    t0 = time.perf_counter()
    with stub:
        run = run_claude(args, stub=stub, home=root / "home", cwd=cwd, env=env, timeout=180)
    seconds = time.perf_counter() - t0
    if run.returncode != 0:
        raise SystemExit(f"claude failed ({run.returncode}): {run.stderr[-2000:]}")
    requests = stub.main_requests()
    t1 = time.perf_counter()
    while len(hook_times(root).get("SessionEnd", [])) < ends + 1:  # the CLI may exit before it
        if time.perf_counter() - t1 > JOB_TIMEOUT:
            raise SystemExit("the SessionEnd hook never ran")
        time.sleep(0.05)
    if not background.wait_idle(JOB_TIMEOUT):
        raise SystemExit(f"the background job did not drain its queue: {background.pending()}")
    while detached_ingests(root):  # hooks of an lmm without the job (--hooks-src) ingest so
        if time.perf_counter() - t1 > JOB_TIMEOUT:
            raise SystemExit("a detached lmm ingest never ended")
        time.sleep(0.05)
    lag = time.perf_counter() - t1
    texts = [r.all_text() for r in requests]
    return {
        "session_id": run.json()["session_id"],
        "blocks": memory_blocks(this_turn(requests[0])) if requests else [],
        "new_after_tool": [
            list((Counter(memory_blocks(b)) - Counter(memory_blocks(a))).elements())
            for a, b in itertools.pairwise(texts)
        ],
        "seconds": seconds,
        "job_lag": lag,
    }


def score(script: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any]:
    facts = script["facts"]
    recall_rows, act_rows, tokens_with, tokens_without = [], [], [], []
    session_start: dict[str, str] = {}
    for row in runs:
        session, prompt, seen = row["session"], row["prompt"], row["seen"]
        recall = "\n".join(text for kind, text in seen["blocks"] if kind == "recall")
        if session["id"] not in session_start:  # the context the session started with
            session_start[session["id"]] = "\n".join(
                text for kind, text in seen["blocks"] if kind == "project"
            )
        start = session_start[session["id"]]
        applies = prompt.get("applies", [])
        (tokens_with if applies else tokens_without).append(len(recall) / 4)
        for fid in applies:
            fact = facts[fid]
            recall_rows.append(
                {
                    "session": session["id"],
                    "prompt": prompt["text"],
                    "fact": fid,
                    "kind": fact["kind"],
                    "project": session["project"],
                    "where": "own project" if fact["project"] == session["project"] else "other",
                    "hit": all(holds(recall, k) for k in fact["keys"]),
                    "session_start": all(holds(start, k) for k in fact["keys"]),
                }
            )
        tool_turns = [t for t in prompt["turns"] if "tool" in t]
        for i, turn in enumerate(tool_turns):
            if "expect_lesson" not in turn and not turn.get("expect_nothing"):
                continue
            new = seen["new_after_tool"][i] if i < len(seen["new_after_tool"]) else []
            text = "\n".join(t for _, t in new)
            if turn.get("expect_nothing"):
                hit = not new
            else:
                hit = all(holds(text, k) for f in turn["expect_lesson"] for k in facts[f]["keys"])
            act_rows.append(
                {
                    "session": session["id"],
                    "tool_input": turn["input"],
                    "expect": turn.get("expect_lesson", "nothing"),
                    "hit": hit,
                    "injected": text[:400],
                }
            )
    return {
        "recall": recall_rows,
        "act": act_rows,
        "tokens_with_facts": tokens_with,
        "tokens_without_facts": tokens_without,
    }


def learned_facts(script: dict[str, Any]) -> dict[str, bool]:
    """Fact id -> whether an active memory in the store (of $LMM_HOME) holds all its keys: which
    misses come from extraction, which from recall."""
    from lmm.store.db import open_store

    with open_store() as store:
        texts = [
            r[0] for r in store.db.execute("SELECT text FROM cognitions WHERE status = 'active'")
        ]
    return {
        fid: any(all(holds(t, k) for k in fact["keys"]) for t in texts)
        for fid, fact in script["facts"].items()
    }


def ratio(rows: list[dict[str, Any]], key: str = "hit") -> str:
    hits = sum(1 for r in rows if r[key])
    return f"{hits}/{len(rows)} ({100 * hits / len(rows):.0f}%)" if rows else "0/0"


def percentiles(values: list[float]) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"p50 {statistics.median(ordered):.0f} / p95 {p95:.0f} ms (n={len(ordered)})"


def report(
    scored: dict[str, Any],
    times: dict[str, list[float]],
    lags: list[float],
    learned: dict[str, bool],
) -> str:
    rec, act = scored["recall"], scored["act"]
    lines = [
        f"facts that became a memory: {sum(learned.values())}/{len(learned)} "
        f"({', '.join(f for f, ok in learned.items() if not ok) or 'all'} not)",
        f"UserPromptSubmit recall: {ratio(rec)}",
        f"  preferences {ratio([r for r in rec if r['kind'] == 'preference'])}, "
        f"lessons {ratio([r for r in rec if r['kind'] == 'lesson'])}",
        f"  in their own project {ratio([r for r in rec if r['where'] == 'own project'])}, "
        f"in another project {ratio([r for r in rec if r['where'] == 'other'])}",
        f"  where the fact became a memory {ratio([r for r in rec if learned[r['fact']]])}, "
        f"where not {ratio([r for r in rec if not learned[r['fact']]])}",
        "  by project of the prompt: "
        + ", ".join(
            f"{p} {ratio([r for r in rec if r['project'] == p])}"
            for p in sorted({r["project"] for r in rec})
        ),
        f"SessionStart context holds them: {ratio(rec, 'session_start')}",
        "context tokens per prompt (chars/4): "
        f"with facts to recall mean {statistics.fmean(scored['tokens_with_facts'] or [0]):.0f}, "
        f"without mean {statistics.fmean(scored['tokens_without_facts'] or [0]):.0f}, "
        f"prompts without facts given context: "
        f"{sum(1 for t in scored['tokens_without_facts'] if t)}/"
        f"{len(scored['tokens_without_facts'])}",
        f"act-time, lesson expected: {ratio([r for r in act if r['expect'] != 'nothing'])}; "
        f"nothing expected and nothing injected: "
        f"{ratio([r for r in act if r['expect'] == 'nothing'])}",
    ]
    for event, values in sorted(times.items()):
        lines.append(f"hook {event}: {percentiles(values)}")
    lines.append(f"background job lag after a run: {percentiles([1000 * x for x in lags])}")
    misses = [f"  miss {r['session']} {r['fact']}: {r['prompt'][:70]}" for r in rec if not r["hit"]]
    return "\n".join(lines + misses)


def hook_times(root: Path) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {}
    path = root / "hook_times.txt"
    if path.exists():
        for line in path.read_text().splitlines():
            event, micros = line.split()
            times.setdefault(event, []).append(int(micros) / 1000)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--script", type=Path, default=SCRIPT)
    parser.add_argument("--sessions", type=int, default=None, help="run only the first N")
    parser.add_argument("--act", action="store_true", help="install the PreToolUse hook too")
    parser.add_argument(
        "--serve",
        action="store_true",
        help="after session 1: `lmm embed` once, then `lmm serve --no-model` for the hooks",
    )
    parser.add_argument(
        "--hooks-src",
        type=Path,
        default=REPO / "src",
        help="the lmm package folder the hooks run (another version's src/: its baseline)",
    )
    parser.add_argument(
        "--projects",
        default=None,
        help="comma-separated: run only these projects' sessions (and score their facts)",
    )
    parser.add_argument("--root", type=Path, default=None, help="work folder (default: temp)")
    parser.add_argument("--out", type=Path, default=None, help="write every row as JSON here")
    args = parser.parse_args()
    if claude_bin() is None:
        print("the claude CLI is missing: run `make claude-cli` or set LMM_CLAUDE_BIN")
        return 2
    script = load_script(args.script)
    if args.projects:
        keep = set(args.projects.split(","))
        script["sessions"] = [s for s in script["sessions"] if s["project"] in keep]
        script["facts"] = {f: v for f, v in script["facts"].items() if v["project"] in keep}
        for s in script["sessions"]:
            for p in s["prompts"]:
                p["applies"] = [f for f in p.get("applies", []) if f in script["facts"]]
                for t in p["turns"]:
                    if "expect_lesson" in t:  # a lesson of a project not run is not expected
                        t["expect_lesson"] = [f for f in t["expect_lesson"] if f in script["facts"]]
                        if not t["expect_lesson"]:
                            del t["expect_lesson"]
    sessions = script["sessions"][: args.sessions]
    root = args.root or Path(tempfile.mkdtemp(prefix="lmm-loop-"))
    env = install(root, args.act, args.hooks_src)
    os.environ["LMM_HOME"] = env["LMM_HOME"]  # background.wait_idle looks at this store
    write_shims(root, script)
    runs, lags = [], []
    server = None
    for n, session in enumerate(sessions):
        if args.serve and n == 1:  # the store exists once the first session is learned
            server = start_server(env)
        cwd = root / "home" / "work" / session["project"]
        cwd.mkdir(parents=True, exist_ok=True)
        resume = None
        for prompt in session["prompts"]:
            seen = run_prompt(root, env, cwd, prompt, resume)
            resume = seen["session_id"]
            lags.append(seen["job_lag"])
            runs.append({"session": session, "prompt": prompt, "seen": seen})
        print(f"{session['id']} done ({len(session['prompts'])} prompts)", file=sys.stderr)
    if server is not None:
        server.terminate()
        server.wait(timeout=30)
    scored = score(script, runs)
    times = hook_times(root)
    learned = learned_facts(script)
    print(report(scored, times, lags, learned))
    if args.out:
        data = {**scored, "learned": learned, "hook_ms": times, "job_lag_s": lags}
        args.out.write_text(json.dumps(data, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
