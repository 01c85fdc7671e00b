"""Synthesis on CodeMem: the extractive brief vs a base model's vs a trained model's brief.

    python bench/synth_eval.py prompts --out runs/synth/prompts.jsonl     # CPU: the eval prompts
    python bench/synth_eval.py generate --prompts P --base M.gguf --out O  # GPU: base model
    python bench/synth_eval.py generate --prompts P --base M.gguf --adapter RUN --out O2
    python bench/synth_eval.py score --prompts P --gen base=O --gen trained=O2

`prompts`: for every CodeMem question, what `lmm recall` would hand the model: the evidence that
`synth.select_evidence` keeps from the hits retrieved for the question (the store that
bench/codemem.py builds from the set's transcripts, cwd = the question's project), as
`synth.prompt_messages` with the word limit `synth.generate_brief` asks for; beside it the
extractive brief of the same evidence (what the hook injects today). A question with no evidence
gets no prompt: recall answers it with nothing, whatever the model.

`generate`: greedy decoding of every prompt (transformers; the base from a .gguf file or folder,
an `lmm train` run's LoRA adapter on top), one JSON line per question with the raw reply.

`score`, per system: answer (every `must_include` present, case-insensitive) in the raw reply and
in the brief `synth.generate_brief` makes of it (grounded sentences + sources, else its fallback to
the extractive brief); abstention (nothing or NONE on the abstention questions); the share of the
raw reply's sentences that fail `synth.ground` (before any filter); stale leaks (a `stale` value
present while not every `must_include` is); tokens (`synth.approx_tokens`).
Training rows must come from transcripts only (`lmm build-data`), never from these questions.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from codemem import present, stale_leak  # noqa: E402  (CodeMem's scoring, one for every bench)

NEW_TOKENS = 160  # generated tokens at most (the brief's room is usually smaller)


# ---- prompts (CPU)


def evidence_json(ev: Any) -> dict[str, Any]:
    h = ev.hit
    return {"n": ev.n, "text": ev.text, "kind": h.kind, "id": h.id, "hit_text": h.text,
            "category": h.category, "session_id": h.source.session_id,
            "timestamp": h.source.timestamp, "project": h.source.project}  # fmt: skip


def evidence_of(rows: list[dict[str, Any]]) -> list[Any]:
    """`synth.Evidence` rebuilt from `evidence_json` rows (what `ground` needs: n, hit text)."""
    from lmm.retrieve.search import Hit, Source
    from lmm.retrieve.synth import Evidence

    out = []
    for r in rows:
        src = Source(session_id=r["session_id"], timestamp=r["timestamp"], project=r["project"])
        hit = Hit(r["kind"], r["id"], r["hit_text"], 0.0, src, category=r["category"])
        out.append(Evidence(r["n"], hit, r["text"], 0.0))
    return out


def room(evidence: list[Any], cfg: Any) -> int:
    """The new tokens `synth.generate_brief` allows for this evidence."""
    from lmm.retrieve.synth import approx_tokens, sources_block

    reserve = approx_tokens(sources_block(evidence, {e.n for e in evidence}))
    return int(min(cfg.max_new_tokens, max(40, cfg.max_tokens - reserve)))


def cmd_prompts(args: argparse.Namespace) -> int:
    import codemem
    from lmm.retrieve import recall as rc
    from lmm.retrieve.synth import extractive_brief, prompt_messages, select_evidence
    from lmm.store.db import open_store

    questions = codemem.load_questions(args.dir, None)
    home_cwd = codemem.home_of(questions)
    store_dir = codemem.built_store(args.dir, args.store_cache)
    home = Path(tempfile.mkdtemp(prefix="synth-eval-"))  # a copy: the cached store stays as is
    shutil.copy2(store_dir / "lmm.db", home / "lmm.db")
    os.environ["LMM_HOME"] = str(home)
    cfg = rc.RecallConfig(generate=False)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with open_store() as store, args.out.open("w") as f:
        embedder = rc.default_embedder(store)
        for q in questions:
            cwd = q["project"] or home_cwd
            result = rc.recall(store, q["question"], project=rc.resolve_project(store, cwd),
                               config=cfg, embedder=embedder)  # fmt: skip
            evidence = select_evidence(result.query, result.hits, cfg.synth)
            extractive = extractive_brief(evidence, cfg.synth)
            new = room(evidence, cfg.synth) if evidence else 0
            row = {
                "id": q["id"], "type": q["type"], "project": codemem.split_of(q),
                "question": q["question"], "must_include": q["must_include"],
                "stale": q.get("stale", []),
                "messages": prompt_messages(result.query, evidence, int(new * 0.6))
                if evidence else [],
                "max_new_tokens": min(NEW_TOKENS, new),
                "evidence": [evidence_json(ev) for ev in evidence],
                "extractive": extractive.text or "", "extractive_tokens": extractive.tokens,
            }  # fmt: skip
            f.write(json.dumps(row) + "\n")
    print(f"{len(questions)} prompts in {time.perf_counter() - t0:.0f} s -> {args.out}")
    return 0


# ---- generate (GPU)


def cmd_generate(args: argparse.Namespace) -> int:
    import torch

    from lmm.lm.trained import find_weights, load_base

    rows = [json.loads(line) for line in args.prompts.read_text().splitlines()]
    todo = [r for r in rows if r["messages"]]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    t0 = time.perf_counter()
    model, tok = load_base(args.base, dtype, device)
    tok.padding_side = "left"
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    if args.base_out:  # the base model's replies first, from the same load
        model.eval()
        gen_s = decode(model, tok, rows, device, args.batch, args.base_out)
        print(f"{len(todo)} base replies on {name}: generate {gen_s:.0f} s -> {args.base_out}")
    if args.adapter:
        from peft import PeftModel

        kind, where = find_weights(Path(args.adapter))
        if kind != "adapter":
            raise SystemExit(f"{where} is a whole model: pass it as --base")
        model = PeftModel.from_pretrained(model, str(where)).merge_and_unload()
        print(f"adapter {where}", file=sys.stderr)
    model.eval()
    load_s = time.perf_counter() - t0
    gen_s = decode(model, tok, rows, device, args.batch, args.out)
    print(f"{len(todo)} replies on {name}: load {load_s:.0f} s, generate {gen_s:.0f} s "
          f"(batch {args.batch}) -> {args.out}")  # fmt: skip
    return 0


def decode(model: Any, tok: Any, rows: list[dict[str, Any]], device: str, batch: int,
           out_path: Path) -> float:  # fmt: skip
    """Greedy replies to every row with messages, written one JSON line per row; seconds."""
    import torch

    todo = [r for r in rows if r["messages"]]
    texts = [tok.apply_chat_template(r["messages"], tokenize=False, add_generation_prompt=True)
             for r in todo]  # fmt: skip
    order = sorted(range(len(todo)), key=lambda i: len(texts[i]))  # similar lengths batch well
    out: dict[str, dict[str, Any]] = {}
    t1 = time.perf_counter()
    for start in range(0, len(order), batch):
        idx = order[start : start + batch]
        enc = tok([texts[i] for i in idx], return_tensors="pt", padding=True).to(device)
        limit = max(todo[i]["max_new_tokens"] for i in idx)
        with torch.no_grad():
            gen = model.generate(**enc, max_new_tokens=limit, do_sample=False,
                                 pad_token_id=tok.pad_token_id)  # fmt: skip
        for j, i in enumerate(idx):
            ids = gen[j, enc["input_ids"].shape[1] :].tolist()
            ids = ids[: todo[i]["max_new_tokens"]]  # each prompt's own room
            if tok.eos_token_id in ids:
                ids = ids[: ids.index(tok.eos_token_id)]
            reply = tok.decode(ids, skip_special_tokens=True).strip()
            out[todo[i]["id"]] = {"id": todo[i]["id"], "reply": reply, "new_tokens": len(ids)}
    gen_s = time.perf_counter() - t1
    with out_path.open("w") as f:
        for r in rows:
            f.write(json.dumps(out.get(r["id"], {"id": r["id"], "reply": "", "new_tokens": 0}))
                    + "\n")  # fmt: skip
    return gen_s


# ---- score (CPU)


class Replay:
    """A `TextGenerator` that returns a stored reply: `generate_brief` post-processes it exactly
    as it would a live model's."""

    def __init__(self, name: str, reply: str) -> None:
        self.name = name
        self.reply = reply

    def generate(self, messages: list[dict[str, str]], max_new_tokens: int = 0) -> str:
        return self.reply


def is_none(text: str) -> bool:
    return not text.strip() or text.strip().rstrip(".").upper() == "NONE"


@dataclass
class Tally:
    n: int = 0  # answerable questions
    answer: int = 0
    abst_n: int = 0
    abstained: int = 0
    stale: int = 0
    sentences: int = 0
    ungrounded: int = 0
    tokens: list[int] = field(default_factory=list)
    generated: int = 0  # briefs in which a generated sentence survived (vs fallback)
    nones: int = 0  # replies that were NONE on answerable questions

    def row(self, name: str) -> str:
        tok = statistics.median(self.tokens) if self.tokens else 0
        fail = f"{100 * self.ungrounded / self.sentences:.1f}" if self.sentences else "-"
        return (f"| {name} | {100 * self.answer / self.n:.1f} | {self.abstained}/{self.abst_n} "
                f"| {self.stale} | {fail} ({self.ungrounded}/{self.sentences}) | {tok:.0f} "
                f"| {sum(self.tokens)} | {self.generated} | {self.nones} |")  # fmt: skip


def cmd_score(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from lmm.retrieve.synth import SynthConfig, approx_tokens, generate_brief, ground

    rows = [json.loads(line) for line in args.prompts.read_text().splitlines()]
    if args.types:
        rows = [r for r in rows if r["type"] in args.types.split(",")]
    if args.split:
        rows = [r for r in rows if r["project"] in args.split.split(",")]
    cfg = SynthConfig()
    gens: dict[str, dict[str, dict[str, Any]]] = {}
    for spec in args.gen:
        name, _, path = spec.partition("=")
        lines = Path(path).read_text().splitlines()
        gens[name] = {g["id"]: g for g in map(json.loads, lines)}
    tallies: dict[str, Tally] = {"extractive": Tally()}
    for name in gens:
        tallies[f"{name} (raw reply)"] = Tally()
        tallies[f"{name} (brief)"] = Tally()
        tallies[f"{name} (brief, NONE = nothing)"] = Tally()
    declined = replace(cfg, on_none="nothing")
    for r in rows:
        evidence = evidence_of(r["evidence"])
        texts = {"extractive": (r["extractive"], None)}
        for name, by_id in gens.items():
            reply = by_id[r["id"]]["reply"] if r["messages"] else ""
            brief = (generate_brief(r["question"], evidence, Replay(name, reply), cfg)
                     if evidence else None)  # fmt: skip
            final = brief.text or "" if brief else ""
            texts[f"{name} (raw reply)"] = ("" if is_none(reply) else reply, reply)
            texts[f"{name} (brief)"] = (final, brief.mode if brief else "none")
            strict = (generate_brief(r["question"], evidence, Replay(name, reply), declined)
                      if evidence else None)  # fmt: skip
            texts[f"{name} (brief, NONE = nothing)"] = (
                strict.text or "" if strict else "",
                strict.mode if strict else "none",
            )
        for name, (text, extra) in texts.items():
            t = tallies[name]
            if text:
                t.tokens.append(approx_tokens(text))
            if name.endswith("(raw reply)") and extra is not None and r["messages"]:
                kept, dropped = ground(extra, evidence, cfg.min_support)
                if not is_none(extra):
                    t.sentences += len(kept) + len(dropped)
                    t.ungrounded += len(dropped)
                t.nones += is_none(extra) and r["type"] != "abstention"
            if "(brief" in name:
                t.generated += extra == "generated"
            if r["type"] == "abstention":
                t.abst_n += 1
                t.abstained += not text
                continue
            t.n += 1
            t.answer += all(present(r, text))
            t.stale += stale_leak(r, text)
    print(f"{len(rows)} questions ({sum(1 for r in rows if r['messages'])} with evidence)")
    print("| system | answer % | abstained | stale leaks | ungrounded sentences % | tokens "
          "median | tokens total | generated briefs | NONE on answerable |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for name, t in tallies.items():
        print(t.row(name))
    return 0


def main() -> int:
    import codemem

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prompts", help="CPU: the eval prompts from recall's evidence")
    p.add_argument("--dir", type=Path, default=codemem.DATA, help="the CodeMem folder")
    p.add_argument("--store-cache", type=Path, default=codemem.CACHE, help="built stores")
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=cmd_prompts)
    p = sub.add_parser("generate", help="GPU: greedy replies of a base model (+ adapter)")
    p.add_argument("--prompts", type=Path, required=True)
    p.add_argument("--base", required=True, help=".gguf file, folder or packaged name")
    p.add_argument("--adapter", help="an `lmm train` run (or adapter folder) to apply")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--base-out", type=Path, help="also the base model's replies, before --adapter")
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=cmd_generate)
    p = sub.add_parser("score", help="CPU: extractive vs generated replies")
    p.add_argument("--prompts", type=Path, required=True)
    p.add_argument("--gen", action="append", default=[], help="NAME=replies.jsonl (repeatable)")
    p.add_argument("--types", help="comma-separated question types to score (default: all)")
    p.add_argument("--split", help="comma-separated projects to score (logslice, ..., none)")
    p.set_defaults(func=cmd_score)
    args = ap.parse_args()
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
