"""`lmm mcp`: lmm's memory as MCP tools over stdio (the official `mcp` SDK)."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from typing import Any, TypeVar

from lmm import paths
from lmm.errors import LmmError, MissingExtra
from lmm.serve import client
from lmm.serve.hooks import wrap_memory

log = logging.getLogger(__name__)

T = TypeVar("T", bound=Callable[..., str])


def _scope(project: str | None) -> dict[str, Any]:
    """No project given: the one the server was started in; "" (empty): every project."""
    if project is None:
        return {"cwd": os.getcwd()}
    return {"project": project} if project else {}


def _tool_error(message: str) -> Exception:
    """The SDK's ToolError (its text reaches the model), or a plain one outside the SDK."""
    import importlib

    for module in ("mcp.server.mcpserver.exceptions", "mcp.server.fastmcp.exceptions"):
        try:
            return importlib.import_module(module).ToolError(message)
        except ImportError:
            continue
    return LmmError(message)


def _guard(fn: T) -> T:
    """The tool boundary: an LmmError reaches the client with its message; anything else is
    logged with its traceback first."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> str:
        try:
            return fn(*args, **kwargs)
        except LmmError as exc:
            raise _tool_error(str(exc)) from exc
        except Exception as exc:
            log.exception("MCP tool %s failed", fn.__name__)
            raise _tool_error(
                f"lmm {fn.__name__} failed ({exc.__class__.__name__}: {exc}); "
                f"the traceback is in {paths.home() / 'hooks.log'}"
            ) from exc

    return wrapper  # type: ignore[return-value]


@_guard
def recall(query: str, project: str | None = None, generate: bool = False) -> str:
    """Recall what past coding sessions taught about a task or question: preferences, decisions,
    lessons (an error and its fix), workflows and facts, as a short brief whose every line cites
    its source session, date and file. Use it before starting work that earlier sessions may
    have touched, or when an error looks familiar. `query` is the task or question in plain
    words; `project` is a project path (default: the current project; "" searches every
    project); `generate=True` has a small local model write the brief instead of quoting the
    evidence (slower). Returns "no relevant memory" when nothing clears the relevance bar."""
    result = client.ask("recall", {"query": query, "generate": generate, **_scope(project)})
    if not result.get("brief"):
        return "no relevant memory"
    return wrap_memory(result["brief"], title="recall")


@_guard
def search(query: str, project: str | None = None, k: int = 10) -> str:
    """Search the memory store (past session turns and extracted knowledge) and list the best
    matches with their ids, kinds, scores and sources, without pruning or summarising: use it
    to browse raw evidence or to find the id of a cognition to forget. `project` is a project
    path (default: the current project; "" searches every project); `k` caps the results."""
    result = client.ask("search", {"query": query, "k": k, **_scope(project)})
    lines = []
    for h in result["hits"]:
        src = h["source"]
        when = (src.get("timestamp") or "")[:10]
        label = h["kind"] + (f"/{h['category']}" if h.get("category") else "")
        where = f"session {src['session_id'][:8]}" if src.get("session_id") else "user"
        text = " ".join(h["text"].split())[:400]
        lines.append(f"{label} #{h['id']} score {h['score']:.4f} ({when}, {where}): {text}")
    if not lines:
        return "no matches"
    return wrap_memory("\n".join(lines), title="search")


@_guard
def remember(text: str, project: str | None = None, category: str = "preference") -> str:
    """Store one piece of durable knowledge the user states directly, so that later sessions
    recall it: a preference ("use uv, not pip"), a decision with its reason, a lesson, a
    workflow, a gotcha or a fact. `category` is one of preference, decision, fact, lesson,
    workflow, gotcha; `project` is the project path it applies to (default: the current
    project; "" makes it apply to every project). Secrets are redacted before storing. A newer
    statement on the same subject supersedes an older contradicting one. Returns the new id."""
    from lmm.retrieve import recall
    from lmm.store import cognitions
    from lmm.store.db import open_store

    with open_store() as store:
        where = recall.resolve_project(store, os.getcwd()) if project is None else project or None
        cog_id = cognitions.remember(store, text, project=where, category=category)
    return f"remembered as cognition #{cog_id} ({category}, {where or 'every project'})"


@_guard
def forget(cognition_id: int) -> str:
    """Forget one stored cognition by its id (as shown by `search` or `recall` results): its
    text is erased, it disappears from every future recall and search, and extraction from old
    sessions will not bring it back. Use it when the user says a remembered preference, decision
    or fact is wrong or no longer wanted. Returns whether anything was forgotten."""
    from lmm.store import erase
    from lmm.store.db import open_store

    with open_store() as store:
        done = erase.forget(store, cognition_id)
    return f"forgot cognition #{cognition_id}" if done else f"no active cognition #{cognition_id}"


TOOLS: list[Callable[..., str]] = [recall, search, remember, forget]


def build() -> Any:
    """The MCP server object with lmm's tools registered."""
    import importlib

    try:
        server_class = importlib.import_module("mcp.server.mcpserver").MCPServer
    except ImportError:
        try:  # mcp 1.x
            server_class = importlib.import_module("mcp.server.fastmcp").FastMCP
        except ImportError as exc:
            raise MissingExtra("mcp", "mcp") from exc
    app = server_class("lmm", instructions="Local memory of past coding sessions: recall it, "
                    "search it, remember and forget cognitions.")  # fmt: skip
    for tool in TOOLS:
        app.add_tool(tool)
    return app


def run() -> None:
    """Serve the tools over stdio until the client disconnects."""
    build().run("stdio")
