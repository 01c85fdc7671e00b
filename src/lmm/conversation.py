"""A session's turns in reading order, by the uuid/parentUuid graph their records carry."""

from __future__ import annotations

from itertools import chain

from lmm.records import Turn


def _sort_key(turn: Turn) -> tuple[str, int]:
    return (turn.timestamp or "", turn.line_no)


def _parents(turns: list[Turn], via_tool_calls: bool) -> list[int | None]:
    """Index of each turn's parent: by parentUuid, else (compaction) logical_parent_uuid, else
    (sub-agent roots, `via_tool_calls` only) the turn holding the tool call that started it."""
    by_uuid: dict[str, int] = {}
    for i, t in enumerate(turns):
        for uuid in t.uuids or ([t.uuid] if t.uuid else []):
            by_uuid.setdefault(uuid, i)
    calls: dict[str, int] = {}
    agent_calls: dict[str, str] = {}
    if via_tool_calls:
        for i, t in enumerate(turns):
            for call in t.tool_calls:
                calls.setdefault(call.id, i)
            if "agent_id" in t.extra and "tool_use_id" in t.extra:
                agent_calls.setdefault(t.extra["agent_id"], t.extra["tool_use_id"])
    parents: list[int | None] = []
    for i, t in enumerate(turns):
        parent = by_uuid.get(t.parent_uuid) if t.parent_uuid else None
        if parent is None and "logical_parent_uuid" in t.extra:
            parent = by_uuid.get(t.extra["logical_parent_uuid"])
        if parent is None and via_tool_calls:
            tool_use_id = t.parent_tool_use_id or (agent_calls.get(t.agent_id or "") or "")
            parent = calls.get(tool_use_id)
        parents.append(None if parent == i else parent)
    return parents


def conversation_order(turns: list[Turn]) -> list[Turn]:
    """A session's turns in reading order: depth first along the uuid/parentUuid graph, children
    (and roots) by (timestamp, line_no). Sub-agent roots go under the turn of their tool call.
    Dangling parents make roots; turns caught in a cycle are appended, each exactly once."""
    parents = _parents(turns, via_tool_calls=True)
    children: list[list[int]] = [[] for _ in turns]
    roots: list[int] = []
    for i, parent in enumerate(parents):
        (roots if parent is None else children[parent]).append(i)

    def key(i: int) -> tuple[str, int]:
        return _sort_key(turns[i])

    seen = [False] * len(turns)
    order: list[Turn] = []
    for start in chain(sorted(roots, key=key), sorted(range(len(turns)), key=key)):
        stack = [start]
        while stack:
            i = stack.pop()
            if seen[i]:
                continue
            seen[i] = True
            order.append(turns[i])
            stack.extend(sorted(children[i], key=key, reverse=True))
    return order


def main_branch(turns: list[Turn]) -> set[str]:
    """Keys of the turns on the path from a root to the latest main-line leaf, following
    compaction boundaries back to the conversation they continue, plus every result of a tool
    call on that path (parallel calls branch). Turns of abandoned rewind branches, sub-agents
    and summary records are not in it."""
    parents = _parents(turns, via_tool_calls=False)
    main = [i for i, t in enumerate(turns) if not t.is_sidechain and t.kind != "summary"]
    if not main:
        return set()
    has_child = {parents[i] for i in main}
    leaves = [i for i in main if i not in has_child] or main
    current: int | None = max(leaves, key=lambda i: _sort_key(turns[i]))
    keys: set[str] = set()
    visited: set[int] = set()
    while current is not None and current not in visited:
        visited.add(current)
        keys.add(turns[current].key)
        current = parents[current]
    # parallel tool calls: each result hangs off its own line of the calling message, and the
    # path above runs through one of them only; the others answer calls on the path too
    calls = {call.id for i in visited for call in turns[i].tool_calls}
    for i in main:
        turn = turns[i]
        answers = any(r.tool_use_id in calls for r in turn.tool_results)
        if i not in visited and parents[i] in visited and answers:
            keys.add(turn.key)
    return keys
