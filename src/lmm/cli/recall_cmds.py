"""`lmm recall | serve | hook | install-hooks | uninstall-hooks | mcp`: memory out to the agent."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from lmm.cli.output import emit

# ---- recall


def cmd_recall(args: argparse.Namespace) -> int:
    from lmm.retrieve import recall as rc
    from lmm.serve import client

    request: dict[str, Any] = {
        "query": args.query,
        "project": str(Path(args.project).expanduser().resolve()) if args.project else None,
        "generate": _generate(args),
        "model": args.model,
        "budget_seconds": args.budget_seconds,
        "max_tokens": args.max_tokens,
        "k": args.k,
        "on_none": args.on_none,
    }
    request = {k: v for k, v in request.items() if v is not None}
    if args.local:
        result = _recall_here(args, request)
    else:
        result = client.ask("recall", request, lambda: _recall_here(args, request), timeout=600.0)
    text = result["brief"] or "no relevant memory"
    if result["brief"] or result.get("mode") == "declined":
        text += "\n\n(" + rc.describe_json(result) + ")"
    emit(args, result, text)
    return 0


def _generate(args: argparse.Namespace) -> bool | str:
    """--generate: True; --no-generate: False; neither: "auto" (generate only where it is fast)."""
    return True if args.generate else False if args.no_generate else "auto"


def _recall_here(args: argparse.Namespace, request: dict[str, Any]) -> dict[str, Any]:
    from lmm.retrieve import recall as rc
    from lmm.store.db import open_store

    generate = _generate(args)
    config = rc.with_config(
        rc.RecallConfig(generate=None if generate == "auto" else bool(generate)),
        k=args.k,
        model=args.model,
        max_tokens=args.max_tokens,
        budget_seconds=args.budget_seconds,
        on_none=args.on_none,
    )
    with open_store() as store:
        embedder = rc.default_embedder(store, args.embedder)
        result = rc.recall(
            store, args.query, project=request.get("project"), config=config, embedder=embedder
        )
        return {**rc.to_json(result), "project": request.get("project")}


# ---- serve, hook, mcp


def cmd_serve(args: argparse.Namespace) -> int:
    from lmm.retrieve import recall as rc
    from lmm.serve import server
    from lmm.serve.client import ServerInfo
    from lmm.store.db import open_store

    with open_store() as store:
        embedder = rc.default_embedder(store, args.embedder)

    def ready(info: ServerInfo) -> None:
        where = info.socket or f"{info.host}:{info.port}"
        print(f"lmm: serving at {where} (pid {info.pid}); Ctrl-C stops", file=sys.stderr)

    server.serve(
        socket_path=Path(args.socket).expanduser() if args.socket else None,
        port=args.port,
        embedder=embedder,
        model=args.model,
        preload_model=not args.no_model,
        ready=ready,
    )
    return 0


def cmd_hook(args: argparse.Namespace) -> int:
    from lmm.serve import hooks

    return hooks.main([args.event])


def cmd_mcp(args: argparse.Namespace) -> int:
    from lmm.serve import mcp as mcp_server
    from lmm.serve.hooklog import setup_file_log

    setup_file_log()
    mcp_server.run()
    return 0


# ---- install-hooks, uninstall-hooks


def _settings_file(args: argparse.Namespace) -> Path:
    from lmm.serve import claude_settings

    return claude_settings.settings_path("project" if args.project else "user")


def cmd_install_hooks(args: argparse.Namespace) -> int:
    from lmm.serve import claude_settings

    report = claude_settings.install(_settings_file(args), act=args.act)
    if report.changed:
        text = f"installed lmm hooks ({', '.join(report.events)}) in {report.path}"
        text += f"\nbackup: {report.backup}" if report.backup else ""
    else:
        text = f"lmm hooks already installed in {report.path}"
    emit(args, {**vars(report), "path": str(report.path), "backup": str(report.backup)}, text)
    return 0


def cmd_uninstall_hooks(args: argparse.Namespace) -> int:
    from lmm.serve import claude_settings

    report = claude_settings.uninstall(_settings_file(args))
    if not report.changed:
        text = f"no lmm hooks in {report.path}"
    elif report.removed_file:
        text = f"removed {report.path} (lmm had created it)"
    elif report.restored:
        text = f"removed lmm hooks from {report.path} (restored {report.backup} byte for byte)"
    else:
        text = f"removed lmm hooks from {report.path}"
    emit(args, {**vars(report), "path": str(report.path), "backup": str(report.backup)}, text)
    return 0


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("recall", parents=[common], help="a short sourced memory brief for a query")
    p.add_argument("query", help="the task, question or context to recall memory for")
    p.add_argument("--project", help="only this project folder (and folders below it)")
    gen = p.add_mutually_exclusive_group()
    gen.add_argument("--generate", action="store_true", help="an LM writes the brief, however slow")
    gen.add_argument("--no-generate", action="store_true", help="the evidence only, no LM")
    p.add_argument("--model", help="LM: packaged name, folder, .gguf file or hub id")
    p.add_argument(
        "--budget-seconds",
        type=float,
        help="without --generate/--no-generate, an LM writes the brief only where its briefs "
        "took at most this long here, or on a GPU (default 15)",
    )
    p.add_argument("--max-tokens", type=int, help="brief length budget (default 340)")
    p.add_argument(
        "--on-none",
        choices=("fallback", "nothing"),
        help="when the model replies NONE: the evidence brief (fallback, the default) or no "
        "brief at all (nothing)",
    )
    p.add_argument("--k", type=int, help="hits retrieved before pruning (default 12)")
    p.add_argument("--embedder", help="embedding model, or 'none' for keyword-only")
    p.add_argument("--local", action="store_true", help="run in this process even if serve runs")
    p.set_defaults(func=cmd_recall)

    p = sub.add_parser("serve", parents=[common], help="keep models warm for hooks, CLI and MCP")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--socket", help="Unix socket path (default $LMM_HOME/lmm.sock)")
    where.add_argument("--port", type=int, help="listen on 127.0.0.1:PORT instead (0: any)")
    p.add_argument("--embedder", help="embedding model, or 'none' (default: the store's)")
    p.add_argument("--model", help="LM kept warm for generated briefs (default smollm2)")
    p.add_argument("--no-model", action="store_true", help="load no LM until one is needed")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("hook", parents=[common], help="answer a Claude Code hook (JSON on stdin)")
    p.add_argument(
        "event", help="SessionStart, UserPromptSubmit, SessionEnd, PreCompact or PreToolUse"
    )
    p.set_defaults(func=cmd_hook)

    for name, func, verb in (
        ("install-hooks", cmd_install_hooks, "add lmm's hooks to"),
        ("uninstall-hooks", cmd_uninstall_hooks, "remove lmm's hooks from"),
    ):
        p = sub.add_parser(name, parents=[common], help=f"{verb} Claude Code settings.json")
        scope = p.add_mutually_exclusive_group()
        scope.add_argument("--user", action="store_true", help="~/.claude/settings.json (default)")
        scope.add_argument("--project", action="store_true", help="./.claude/settings.json")
        if name == "install-hooks":
            p.add_argument("--act", action="store_true",
                           help="also recall lessons and rules before Bash, Edit and Write "
                                "(PreToolUse)")  # fmt: skip
        p.set_defaults(func=func)

    p = sub.add_parser("mcp", parents=[common], help="serve lmm's tools over MCP (stdio)")
    p.set_defaults(func=cmd_mcp)
