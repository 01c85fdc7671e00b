"""Transcript text as safe HTML: everything escaped first, then a small Markdown subset (code
fences, inline code, bold, bullet and numbered lists; links shown as text), never raw HTML from a
transcript. File edits the agent made (Edit, MultiEdit, Write) are shown as a diff.
"""

from __future__ import annotations

import difflib
import json
import re
from typing import Any

from lmm.ui.layout import esc

_INLINE = re.compile(r"(`[^`\n]+`|\*\*[^*\n]+\*\*|\[[^\]\n]+\]\([^)\s]+\))")
_ITEM = re.compile(r"\s{0,6}(?:[-*+]|\d{1,3}[.)])\s+(.*)")
MAX_DIFF_LINES = 400  # lines of one diff shown; the rest is counted


def inline(text: str) -> str:
    """One line's `code`, **bold** and [link](url) (as 'link (url)', never a live link)."""
    out = []
    for part in _INLINE.split(text):
        if len(part) > 2 and part[0] == "`" and part[-1] == "`":
            out.append(f"<code>{esc(part[1:-1])}</code>")
        elif len(part) > 4 and part.startswith("**") and part.endswith("**"):
            out.append(f"<b>{esc(part[2:-2])}</b>")
        elif m := re.fullmatch(r"\[([^\]]+)\]\(([^)\s]+)\)", part):
            out.append(f"{esc(m.group(1))} <span class='meta'>({esc(m.group(2))})</span>")
        else:
            out.append(esc(part))
    return "".join(out)


def render(text: str) -> str:
    """`text` as HTML: fenced code as <pre>, list runs as <ul>/<ol>, other lines kept as typed
    (line breaks preserved) with inline formatting."""
    out: list[str] = []
    lines = text.split("\n")
    prose: list[str] = []

    def flush() -> None:
        if "".join(prose).strip():
            out.append(f"<div class='text'>{chr(10).join(inline(p) for p in prose).strip()}</div>")
        prose.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        fence = re.match(r"\s{0,3}(```+|~~~+)", line)
        if fence:
            flush()
            mark = fence.group(1)
            j = i + 1
            while j < len(lines) and not lines[j].lstrip().startswith(mark):
                j += 1
            out.append(f"<pre><code>{esc(chr(10).join(lines[i + 1 : j]))}</code></pre>")
            i = j + 1
        elif _ITEM.match(line):
            flush()
            ordered = bool(re.match(r"\s*\d", line))
            items = []
            while i < len(lines) and (m := _ITEM.match(lines[i])):
                items.append(f"<li>{inline(m.group(1))}</li>")
                i += 1
            tag = "ol" if ordered else "ul"
            out.append(f"<{tag}>{''.join(items)}</{tag}>")
        else:
            prose.append(line)
            i += 1
    flush()
    return f"<div class='md'>{''.join(out)}</div>"


def _diff(path: str, old: str, new: str) -> str:
    rows = []
    diff = list(difflib.unified_diff(old.split("\n"), new.split("\n"), lineterm="", n=2))[2:]
    for line in diff[:MAX_DIFF_LINES]:
        cls = {"+": "add", "-": "del", "@": "hunk"}.get(line[:1], "")
        rows.append(f"<div class='{cls}'>{esc(line)}</div>")
    if len(diff) > MAX_DIFF_LINES:
        rows.append(f"<div class='hunk'>… {len(diff) - MAX_DIFF_LINES} more lines</div>")
    head = f"<div class='hunk'>{esc(path)}</div>" if path else ""
    return f"<pre class='diff'>{head}{''.join(rows)}</pre>"


def edited_file(input_json: str) -> str:
    """The file_path of an edit call's input ('' when it has none)."""
    try:
        data: Any = json.loads(input_json)
    except ValueError:
        return ""
    return str(data.get("file_path") or "") if isinstance(data, dict) else ""


def edit_diff(name: str, input_json: str) -> str | None:
    """An Edit / MultiEdit / Write call as a diff (Write: every line added), or None when the
    call is another tool or its input is not the shape these tools send."""
    if name not in ("Edit", "MultiEdit", "Write"):
        return None
    try:
        data: Any = json.loads(input_json)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    path = str(data.get("file_path") or "")
    if name == "Write" and isinstance(data.get("content"), str):
        return _diff(path, "", data["content"])
    edits = data.get("edits") if name == "MultiEdit" else [data]
    if not isinstance(edits, list) or not edits:
        return None
    parts = []
    for e in edits:
        if not (isinstance(e, dict) and isinstance(e.get("old_string"), str)
                and isinstance(e.get("new_string"), str)):  # fmt: skip
            return None
        parts.append(_diff(path, e["old_string"], e["new_string"]))
    return "".join(parts)
