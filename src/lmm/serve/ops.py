"""The ops `lmm serve` answers (ping, recall, search, project_brief, act, embed), as functions of
a store: the server runs them with its warm embedder and model, and a client runs them in its own
process when no server answers (`lmm.serve.client.in_process`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lmm.errors import LmmError
from lmm.ingest import privacy
from lmm.lm import speed

if TYPE_CHECKING:
    from lmm.lm.base import TextGenerator
    from lmm.retrieve.embed import Embedder
    from lmm.store.db import Store

EMBED_TEXTS = 256  # texts per `embed` request


def _arg(args: dict[str, Any], name: str, kind: type, default: Any = None) -> Any:
    value = args.get(name, default)
    if value is not None and not isinstance(value, kind):
        raise LmmError(f"argument {name!r} must be {kind.__name__}, not {type(value).__name__}")
    if kind is int and isinstance(value, bool):
        raise LmmError(f"argument {name!r} must be int, not bool")
    return value


def dispatch(
    store: Store,
    op: str,
    args: dict[str, Any],
    *,
    embedder: Embedder | None = None,
    lm: Callable[[], TextGenerator] | None = None,
    loaded: Callable[[], TextGenerator | None] | None = None,
) -> dict[str, Any]:
    """Run one op against `store`. `lm` gives the generator (loaded on first use); `loaded` the
    one already loaded, if any (never loads).

    recall: query, project | cwd, generate=False (or "auto", or "warm": only when a model is
        already loaded and a GPU is here, what the prompt hook asks), budget_seconds, on_none,
        exclude_session,
        max_tokens, k, model, hits=True (False: the reply leaves out the hits, for callers that
        read only the brief)
    search: query, project | cwd, k=10 -> {"hits": [...]}
    project_brief: project | cwd, max_tokens=2000 -> {"project", "brief"}
    act: tool_name, tool_input, project | cwd, session_id, ask=True -> {"context", "decision",
        "reason", "matches"} (lmm.retrieve.act: what applies to the tool call about to run, each
        cognition once per session)
    embed: texts (at most EMBED_TEXTS) -> {"model", "dim", "vectors": base64 of little-endian
        float32, one row per text}: the warm embedder for a background job's new turns
    """
    from lmm.retrieve import recall as rc
    from lmm.retrieve.search import retrieve

    if op == "ping":
        return ping(embedder)
    if op == "embed":
        return _embed(embedder, args)
    project = _arg(args, "project", str)
    cwd = _arg(args, "cwd", str)
    if privacy.excluded_now(cwd) or privacy.excluded_now(project):
        return _opted_out(op, project or cwd)  # opted out since it was stored: say nothing
    if project is None and cwd:
        project = rc.resolve_project(store, cwd)
    if op in ("recall", "search"):
        query = _arg(args, "query", str)
        if not query:
            raise LmmError(f"{op} needs a non-empty string argument 'query'")
    if op == "recall":
        generate = args.get("generate", False)
        if generate not in (True, False, "auto", "warm"):
            raise LmmError('argument \'generate\' must be true, false, "auto" or "warm"')
        warm_lm = None
        if generate == "warm":  # the hook's deadline allows no model load and no CPU decode
            warm_lm = loaded() if loaded is not None else None
            generate = warm_lm is not None and speed.gpu_available()
        config = rc.with_config(
            rc.RecallConfig(generate=None if generate == "auto" else generate),
            k=_arg(args, "k", int),
            model=_arg(args, "model", str),
            max_tokens=_arg(args, "max_tokens", int),
            budget_seconds=_arg(args, "budget_seconds", float),
            on_none=_arg(args, "on_none", str),
        )
        wanted = rc.choose_generation(config).generate
        model = lm() if wanted and lm is not None and config.model is None else None
        model = warm_lm if warm_lm is not None and wanted else model
        result = rc.recall(
            store,
            query,
            project=project,
            config=config,
            embedder=embedder,
            lm=model,
            exclude_session=_arg(args, "exclude_session", str),
        )
        from lmm.text.redact import redact

        out = {**rc.to_json(result), "project": project, "query_redacted": redact(query)}
        if not _arg(args, "hits", bool, True):
            out["hits"] = []
        return out
    if op == "search":
        k = _arg(args, "k", int, 10)
        hits = retrieve(store, query, project=project, k=max(1, k), embedder=embedder)
        return {"project": project, "hits": [rc.hit_json(h) for h in hits]}
    if op == "project_brief":
        max_tokens = _arg(args, "max_tokens", int, 2_000)
        return {
            "project": project,
            "brief": rc.project_brief(store, project, max_tokens=max_tokens),
        }
    if op == "act":
        from lmm.retrieve import act

        tool_name = _arg(args, "tool_name", str) or ""
        tool_input = args.get("tool_input")
        if not isinstance(tool_input, dict):
            raise LmmError("act needs an object argument 'tool_input' (the hook's tool_input)")
        call = act.tool_call(tool_name, tool_input, _arg(args, "cwd", str))
        ask = bool(_arg(args, "ask", bool, True))
        session = _arg(args, "session_id", str)
        found = act.recall_once(store, call, project, session, ask=ask)
        return {"project": project, **act.to_json(found)}
    raise LmmError(f"unknown op {op!r}; use ping, recall, search, project_brief, act or embed")


def _embed(embedder: Embedder | None, args: dict[str, Any]) -> dict[str, Any]:
    import base64

    texts = _arg(args, "texts", list)
    if not texts or len(texts) > EMBED_TEXTS or not all(isinstance(t, str) for t in texts):
        raise LmmError(f"embed needs 'texts': a list of 1 to {EMBED_TEXTS} strings")
    if embedder is None:
        raise LmmError("this lmm server keeps no embedder (started with --embedder none)")
    vectors = embedder.embed(texts).astype("<f4")
    return {
        "model": embedder.name,
        "dim": embedder.dim,
        "vectors": base64.b64encode(vectors.tobytes()).decode(),
    }


def _opted_out(op: str, where: str | None) -> dict[str, Any]:
    """What an op answers for a folder that has opted out of memory: nothing."""
    if op == "recall":
        return {"query": "", "brief": None, "mode": "none", "model": None, "evidence": [],
                "hits": [], "seconds": 0.0, "project": where, "opted_out": True}  # fmt: skip
    if op == "search":
        return {"project": where, "hits": [], "opted_out": True}
    return {"project": where, "brief": None, "opted_out": True}


def ping(embedder: Embedder | None) -> dict[str, Any]:
    return {"pid": os.getpid(), "embedder": embedder.name if embedder else None}
