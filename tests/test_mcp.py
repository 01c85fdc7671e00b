"""`lmm mcp` through the official SDK's own client: stdio_client spawns `python -m lmm mcp`."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from lmm import paths
from lmm.ingest.run import ingest
from lmm.memory.extract import get_extractor, run_extraction
from lmm.store.db import open_store

mcp = pytest.importorskip("mcp", reason="the MCP SDK is not installed: pip install 'lmm[mcp]'")
from mcp import ClientSession  # noqa: E402
from mcp.client.stdio import StdioServerParameters, stdio_client  # noqa: E402

PROJECT = "/home/dev/tidepool"


def text_of(result: Any) -> str:
    assert not getattr(result, "is_error", getattr(result, "isError", False)), result
    return "".join(block.text for block in result.content)


def error_of(result: Any) -> str:
    assert getattr(result, "is_error", getattr(result, "isError", False)), result
    return "".join(block.text for block in result.content)


async def session_round_trip(home: Path, cwd: Path) -> dict[str, Any]:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "lmm", "mcp"], env={"LMM_HOME": str(home)}, cwd=cwd
    )
    out: dict[str, Any] = {}
    with (home / "mcp.stderr").open("w") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            tools = (await session.list_tools()).tools
            out["tools"] = {t.name: t.description for t in tools}
            call = session.call_tool
            out["recall"] = text_of(
                await call("recall", {"query": "database is locked", "project": PROJECT})
            )
            out["recall_all"] = text_of(
                await call("recall", {"query": "database is locked", "project": ""})
            )
            out["recall_here"] = text_of(await call("recall", {"query": "database is locked"}))
            out["nothing"] = text_of(await call("recall", {"query": "weather in Paris"}))
            out["remember"] = text_of(
                await call(
                    "remember", {"text": "Deploys happen on Tuesdays only.", "category": "workflow"}
                )
            )
            out["search"] = text_of(await call("search", {"query": "deploys Tuesdays", "k": 3}))
            cog_id = int(out["remember"].split("#")[1].split(" ")[0])
            out["forget"] = text_of(await call("forget", {"cognition_id": cog_id}))
            out["forget_again"] = text_of(await call("forget", {"cognition_id": cog_id}))
            out["search_after"] = text_of(await call("search", {"query": "deploys Tuesdays"}))
            out["bad"] = error_of(await call("remember", {"text": "x", "category": "mood"}))
    return out


def test_mcp_round_trip(tmp_path: Path) -> None:
    home = tmp_path / "home"
    cwd = tmp_path / "work"
    cwd.mkdir()
    os.environ["LMM_HOME"] = str(home)
    try:
        with open_store() as store:
            ingest(store, [paths.sample_projects()])
            run_extraction(store, get_extractor("rules"))
    finally:
        del os.environ["LMM_HOME"]
    out = anyio.run(session_round_trip, home, cwd)
    assert sorted(out["tools"]) == ["forget", "recall", "remember", "search"]
    assert all(len(d.split()) > 30 for d in out["tools"].values())  # a real paragraph each
    assert out["recall"].startswith('<lmm-memory kind="recall">')
    assert "PRAGMA busy_timeout = 30000" in out["recall"]
    assert out["recall_all"] == out["recall"]
    assert out["recall_here"] == "no relevant memory"  # the server's cwd has no history
    assert out["nothing"] == "no relevant memory"
    assert out["remember"].endswith(f"(workflow, {cwd})")
    assert "Deploys happen on Tuesdays only." in out["search"]
    assert out["forget"].startswith("forgot cognition #")
    assert out["forget_again"].startswith("no active cognition #")
    assert "Tuesdays" not in out["search_after"]
    assert "category 'mood' is not one of preference, decision" in out["bad"]
