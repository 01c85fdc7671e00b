"""CodeMem: what the agent receives on UserPromptSubmit, scored against the set's key strings.

    python bench/codemem.py                              # ../shared/data/codemem, every question
    python bench/codemem.py --split logslice             # one project's questions
    python bench/codemem.py --split tollgate,switchyard,none
    python bench/codemem.py --split logslice --show-failures 10

A fresh LMM_HOME gets DIR/projects the way a user fills it (`lmm ingest`, `lmm extract`,
`lmm embed`, each its own command); the built store is cached under --store-cache, keyed on the
transcripts and on the code that writes the store, so a rerun after a change to recall only runs
the queries. With `lmm serve` warm, each question goes through the installed UserPromptSubmit
hook command (`settings.hook_command`, run by the shell as Claude Code runs it) with the hook
JSON on stdin: prompt, cwd = the question's project, a new session id. A question with no
project is asked from the developer's home folder: the folder that holds the set's projects
(/home/dev), whose memory is that of the projects below it.

Scored on what the hook printed (its additionalContext; `&lt;` read back as `<`):
- answer: every `must_include` string present (case-insensitive); partial: the share present;
- stale (knowledge-update): a `stale` value present while not every `must_include` is;
- abstain: the hook printed nothing (for abstention questions: correct; for the others: shown);
- tokens (`synth.approx_tokens`, median and p90 over non-empty injections), hook latency.
The baseline, in the same run, is the plain top-k: the server's `search` hits for the same query
and project, turns only, best first, one line each, cut to the hook's token budget and wrapped
like the hook's text. The last line is the summary.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "codemem"
CACHE = ROOT / "runs" / "codemem-store"
SPLITS = ("logslice", "tollgate", "switchyard", "none")
# modules that only read the store: a change to them keeps the cached store valid
READ_SIDE = {
    "retrieve/recall.py", "retrieve/synth.py", "retrieve/evidence.py", "retrieve/search.py",
    "retrieve/search_config.py", "retrieve/rank.py", "serve/hooks.py", "serve/client.py",
    "serve/server.py", "serve/ops.py", "serve/mcp.py", "lm/base.py", "lm/loaded.py",
    "lm/models.py", "lm/fastgen.py",
}  # fmt: skip
READ_SIDE_DIRS = {"ui", "evals", "train"}


# ---- the questions


def split_of(question: dict[str, Any]) -> str:
    project = question.get("project")
    return project.rstrip("/").rsplit("/", 1)[-1] if project else "none"


def home_of(questions: list[dict[str, Any]]) -> str:
    """The folder that holds every project the questions name (the developer's home)."""
    return os.path.commonpath([q["project"] for q in questions if q.get("project")])


def load_questions(data: Path, split: str | None) -> list[dict[str, Any]]:
    questions = json.loads((data / "questions.json").read_text())
    if not split:
        return questions
    wanted = {s.strip() for s in split.split(",") if s.strip()}
    if unknown := wanted - set(SPLITS):
        raise SystemExit(f"--split: unknown {sorted(unknown)}; use {', '.join(SPLITS)}")
    return [q for q in questions if split_of(q) in wanted]


def extra_abstentions(files: list[Path]) -> list[dict[str, Any]]:
    """Questions whose answer the set's transcripts never state, written to calibrate
    abstention on one project (bench/abstain/): `{project, questions: [{question}]}`."""
    out = []
    for path in files:
        data = json.loads(path.read_text())
        for n, q in enumerate(data["questions"], start=1):
            out.append({"id": f"{path.stem}-{n:03d}", "type": "abstention-extra",
                        "question": q["question"], "project": data["project"],
                        "must_include": []})  # fmt: skip
    return out


# ---- the store, built once per (data, store-writing code)


def store_key(data: Path) -> str:
    """A hash of the transcripts and of every module that writes the store."""
    h = hashlib.sha256()
    for path in sorted((data / "projects").rglob("*")):
        if path.is_file():
            h.update(str(path.relative_to(data)).encode() + b"\0" + path.read_bytes())
    src = ROOT / "src" / "lmm"
    for path in sorted(src.rglob("*.py")):
        rel = path.relative_to(src)
        if rel.as_posix() in READ_SIDE or rel.parts[0] in READ_SIDE_DIRS:
            continue
        h.update(str(rel).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def lmm(home: Path, *args: str) -> None:
    """`python -m lmm ARGS` in `home`; stops the benchmark when it fails."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "lmm", *args], env=env_for(home), text=True,
                          capture_output=True)  # fmt: skip
    if proc.returncode:
        raise SystemExit(f"lmm {' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    print(f"lmm {args[0]}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)


def env_for(home: Path) -> dict[str, str]:
    env = dict(os.environ, LMM_HOME=str(home))
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(ROOT / "src"), env.get("PYTHONPATH")] if p)
    return env


def built_store(data: Path, cache: Path) -> Path:
    """The folder holding a store built from `data`/projects, from the cache when it has one."""
    target = cache / store_key(data)
    if (target / "lmm.db").exists():
        print(f"store: cached {target}", file=sys.stderr)
        return target
    build = Path(tempfile.mkdtemp(prefix="codemem-build-"))
    lmm(build, "ingest", str(data / "projects"))
    lmm(build, "extract")
    lmm(build, "embed")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(build, target, ignore=shutil.ignore_patterns("*.sock", "server.json"))
    shutil.rmtree(build, ignore_errors=True)
    return target


# ---- lmm serve


def start_server(home: Path) -> subprocess.Popen[bytes]:
    from lmm.serve import client

    log = (home / "serve.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "lmm", "serve", "--no-model"],
                            env=env_for(home), stdout=log, stderr=log)  # fmt: skip
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"lmm serve exited: {(home / 'serve.log').read_text()[-2000:]}")
        if client.try_call("ping", {}, timeout=5.0):
            return proc
        time.sleep(0.5)
    stop_server(proc)
    raise SystemExit("lmm serve did not answer within 300 s")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# ---- one question


@dataclass
class Outcome:
    question: dict[str, Any]
    text: str  # what reached the agent ("" for nothing)
    seconds: float = 0.0
    baseline: str = ""

    @property
    def kind(self) -> str:
        return str(self.question["type"])


def hook_text(command: str, question: dict[str, Any], cwd: str, home: Path) -> tuple[str, float]:
    """What the installed hook command prints for the question, and how long it took."""
    payload = {"hook_event_name": "UserPromptSubmit", "session_id": str(uuid.uuid4()),
               "transcript_path": None, "cwd": cwd, "prompt": question["question"]}  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.run(command, shell=True, input=json.dumps(payload), text=True,
                          capture_output=True, env=env_for(home), cwd=cwd if Path(cwd).is_dir()
                          else str(Path.home()))  # fmt: skip
    seconds = time.perf_counter() - t0
    if not proc.stdout.strip():
        return "", seconds
    return json.loads(proc.stdout)["hookSpecificOutput"]["additionalContext"], seconds


def baseline_text(query: str, cwd: str, k: int, max_tokens: int) -> str:
    """The plain top-k: retrieved turns, best first, one line each, within `max_tokens`."""
    from lmm.retrieve.synth import approx_tokens
    from lmm.serve import client
    from lmm.serve.hooks import wrap_memory

    result = client.call("search", {"query": query, "cwd": cwd, "k": k}, timeout=60.0)
    lines: list[str] = []
    for hit in result["hits"]:
        if hit["kind"] != "turn":
            continue
        line = " ".join(hit["text"].split())
        while line and approx_tokens(wrap_memory("\n".join([*lines, line]))) > max_tokens:
            line = line[: int(len(line) * 0.9)]  # the last line is cut to fit
        if not line:
            break
        lines.append(line)
    return wrap_memory("\n".join(lines), title="recall") if lines else ""


# ---- scoring


def readable(text: str) -> str:
    return text.replace("&lt;", "<").lower()


def present(question: dict[str, Any], text: str) -> list[bool]:
    low = readable(text)
    return [m.lower() in low for m in question["must_include"]]


def stale_leak(question: dict[str, Any], text: str) -> bool:
    low = readable(text)
    found = present(question, text)
    return any(s.lower() in low for s in question.get("stale", [])) and not all(found)


@dataclass
class Score:
    n: int = 0
    answered: int = 0
    partial: float = 0.0
    abstained: int = 0
    stale: int = 0
    tokens: list[int] = field(default_factory=list)

    def add(self, question: dict[str, Any], text: str) -> None:
        from lmm.retrieve.synth import approx_tokens

        self.n += 1
        self.abstained += not text
        if text:
            self.tokens.append(approx_tokens(text))
        if question["type"] == "abstention":
            return
        found = present(question, text)
        self.answered += all(found)
        self.partial += sum(found) / len(found)
        self.stale += stale_leak(question, text)


def pct(a: float, b: int) -> str:
    return f"{100 * a / b:.1f}" if b else "-"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(outcomes: list[Outcome]) -> str:
    kinds = sorted({o.kind for o in outcomes})
    rows = [f"{'kind':<24}{'n':>4}{'answer':>8}{'partial':>8}{'base':>7}{'b.part':>7}"
            f"{'abstain':>8}{'stale':>7}{'b.stale':>8}{'tok.med':>8}{'b.tok':>6}"]  # fmt: skip
    total, base = Score(), Score()
    for kind in [*kinds, "all"]:
        ours, theirs = Score(), Score()
        for o in outcomes:
            if kind in (o.kind, "all"):
                ours.add(o.question, o.text)
                theirs.add(o.question, o.baseline)
        if kind == "all":
            total, base = ours, theirs
        answerable = ours.n if kind != "all" else ours.n - sum(o.kind == "abstention"
                                                               for o in outcomes)  # fmt: skip
        if kind == "abstention":
            answerable = 0
        rows.append(
            f"{kind:<24}{ours.n:>4}{pct(ours.answered, answerable):>8}"
            f"{pct(ours.partial, answerable):>8}{pct(theirs.answered, answerable):>7}"
            f"{pct(theirs.partial, answerable):>7}{pct(ours.abstained, ours.n):>8}"
            f"{ours.stale:>7}{theirs.stale:>8}"
            f"{statistics.median(ours.tokens) if ours.tokens else 0:>8.0f}"
            f"{statistics.median(theirs.tokens) if theirs.tokens else 0:>6.0f}"
        )
    seconds = [1000 * o.seconds for o in outcomes]
    abstention = [o for o in outcomes if o.kind == "abstention"]
    updates = [o for o in outcomes if o.kind == "knowledge-update"]
    answerable = total.n - len(abstention)
    abstained = sum(not o.text for o in abstention)
    rows += [
        "",
        f"hook latency: p50 {percentile(seconds, 0.5):.0f} ms, p95 {percentile(seconds, 0.95):.0f}"
        f" ms; answerable questions left empty: {total.abstained - abstained}/{answerable}",
        f"baseline (top-k turns): answer {pct(base.answered, answerable)}%, tokens median "
        f"{statistics.median(base.tokens) if base.tokens else 0:.0f} p90 "
        f"{percentile(base.tokens, 0.9):.0f}, stale {base.stale}/{len(updates)}",
        f"CodeMem answer={pct(total.answered, answerable)} "
        f"abstain={pct(abstained, len(abstention))} stale={total.stale}/{len(updates)} "
        f"tokens_median={statistics.median(total.tokens) if total.tokens else 0:.0f} "
        f"tokens_p90={percentile(total.tokens, 0.9):.0f} "
        f"hook_p95_ms={percentile(seconds, 0.95):.0f}",
    ]
    return "\n".join(rows)


def show_failures(outcomes: list[Outcome], limit: int) -> None:
    shown = 0
    for o in outcomes:
        q = o.question
        wrong = bool(o.text) if o.kind == "abstention" else not all(present(q, o.text))
        if not wrong or shown >= limit:
            continue
        shown += 1
        print(f"\n--- {q['id']} {o.kind} ({split_of(q)}): {q['question']}", file=sys.stderr)
        print(f"    must_include {q['must_include']} stale {q.get('stale', [])}", file=sys.stderr)
        print(o.text or "(nothing)", file=sys.stderr)


# ---- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("dir", nargs="?", type=Path, default=DATA, help="the CodeMem folder")
    ap.add_argument("--split", help=f"comma-separated projects to report: {', '.join(SPLITS)}")
    ap.add_argument("--store-cache", type=Path, default=CACHE, help="built stores, by key")
    ap.add_argument("--k", type=int, default=12, help="baseline: hits retrieved (recall's k)")
    ap.add_argument("--show-failures", type=int, default=0, help="print N wrong briefs (stderr)")
    ap.add_argument("--out", type=Path, help="write one JSON line per question here")
    ap.add_argument("--extra-abstain", type=Path, action="append", default=[],
                    help="a file of questions never answered in the set (bench/abstain/*.json): "
                    "asked too, reported as kind 'abstention-extra'")  # fmt: skip
    args = ap.parse_args()
    if not (args.dir / "questions.json").exists():
        print(f"no CodeMem set at {args.dir}; pass its folder", file=sys.stderr)
        return 1
    questions = load_questions(args.dir, args.split) + extra_abstentions(args.extra_abstain)
    home_cwd = home_of(load_questions(args.dir, None))
    store = built_store(args.dir, args.store_cache)
    home = Path(tempfile.mkdtemp(prefix="codemem-home-"))
    for name in ("lmm.db", "lmm.db-wal"):
        if (store / name).exists():
            shutil.copy2(store / name, home / name)
    os.environ["LMM_HOME"] = str(home)  # `client.call` finds the server through it

    from lmm.serve.claude_settings import hook_command
    from lmm.serve.hooks import PROMPT_TOKENS

    command = hook_command("UserPromptSubmit")
    proc = start_server(home)
    outcomes: list[Outcome] = []
    try:
        for q in questions[:3]:  # warm the OS caches and the server's connections
            hook_text(command, q, q["project"] or home_cwd, home)
        for q in questions:
            cwd = q["project"] or home_cwd
            text, seconds = hook_text(command, q, cwd, home)
            base = baseline_text(q["question"], cwd, args.k, PROMPT_TOKENS)
            outcomes.append(Outcome(q, text, seconds, base))
    finally:
        stop_server(proc)
        shutil.rmtree(home, ignore_errors=True)
    if args.out:
        with args.out.open("w") as f:
            for o in outcomes:
                row = {"id": o.question["id"], "type": o.kind, "text": o.text,
                       "ms": round(1000 * o.seconds), "baseline": o.baseline}  # fmt: skip
                f.write(json.dumps(row) + "\n")
    extra = [o for o in outcomes if o.kind == "abstention-extra"]
    outcomes = [o for o in outcomes if o.kind != "abstention-extra"]
    show_failures(outcomes, args.show_failures)
    load = os.getloadavg()[0]
    print(f"CodeMem {args.dir.name}: {len(outcomes)} questions, split {args.split or 'all'}, "
          f"store {store.name}, load {load:.1f}")  # fmt: skip
    if extra:
        said = [o.question["question"] for o in extra if o.text]
        quiet = len(extra) - len(said)
        print(f"extra abstention questions: nothing injected for {pct(quiet, len(extra))}% "
              f"({quiet}/{len(extra)}); injected: {said}")  # fmt: skip
    print(report(outcomes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
