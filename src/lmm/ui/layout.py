"""The memory browser's page shell: one inline stylesheet, the left nav, escaping and link helpers.

Every piece of stored text reaches HTML through `esc` (html.escape, quotes included). Links and
forms carry the session token through `Links`. Pages load no script and nothing from elsewhere:
the server's Content-Security-Policy forbids both.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

CSS = """
:root { --ink:#1d2330; --muted:#677085; --line:#e3e6ee; --bg:#f6f7fb; --card:#fff;
  --accent:#3a5bd9; --accent-soft:#e8edff; --warn:#b3261e; --ok:#1e7f4f; --nav:#161b26; }
* { box-sizing:border-box; }
body { margin:0; font:15px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
  color:var(--ink); background:var(--bg); display:flex; min-height:100vh; }
a { color:var(--accent); text-decoration:none; } a:hover { text-decoration:underline; }
a.card { display:block; color:var(--ink); } a.card:hover { border-color:var(--accent);
  text-decoration:none; }
nav { width:210px; flex:none; background:var(--nav); color:#cfd5e4; padding:22px 14px;
  position:sticky; top:0; height:100vh; }
nav .brand { font-weight:700; font-size:18px; color:#fff; margin:0 8px 4px; letter-spacing:.3px; }
nav .tag { font-size:12px; color:#8891a7; margin:0 8px 22px; }
nav a { display:block; color:#cfd5e4; padding:7px 10px; border-radius:7px; margin-bottom:2px; }
nav a:hover { background:#242b3b; text-decoration:none; }
nav a.on { background:var(--accent); color:#fff; }
nav .foot { position:absolute; bottom:18px; left:22px; right:14px; font-size:11.5px;
  color:#7b849a; }
main { flex:1; padding:26px 36px 60px; max-width:1080px; min-width:0; }
h1 { font-size:23px; margin:0 0 4px; } h2 { font-size:17px; margin:28px 0 10px; }
h3 { font-size:15px; margin:18px 0 8px; }
.sub { color:var(--muted); margin:0 0 20px; font-size:13.5px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:10px;
  padding:12px 16px; margin-bottom:10px; }
.grid { display:grid; grid-template-columns:repeat(auto-fill,minmax(240px,1fr)); gap:10px; }
.meta { color:var(--muted); font-size:12.5px; }
.mono, code, pre { font-family:ui-monospace,"SFMono-Regular",Menlo,Consolas,"DejaVu Sans Mono",
  monospace; font-size:12.5px; }
pre { white-space:pre-wrap; word-break:break-word; margin:6px 0; background:#f3f4f8;
  border-radius:7px; padding:9px 11px; }
.text { white-space:pre-wrap; word-break:break-word; }
table { border-collapse:collapse; width:100%; background:var(--card); font-size:13.5px; }
th, td { text-align:left; padding:7px 10px; border-bottom:1px solid var(--line);
  vertical-align:top; }
th { color:var(--muted); font-weight:600; font-size:12px; text-transform:uppercase; }
.badge { display:inline-block; font-size:11.5px; padding:1px 8px; border-radius:10px;
  background:var(--accent-soft); color:var(--accent); font-weight:600; }
.b-preference { background:#efe7ff; color:#6b3fc4; }
.b-decision { background:#e2f4ea; color:#1e7f4f; }
.b-fact { background:#e9eef5; color:#44526b; }
.b-lesson { background:#fff1dc; color:#9a5b00; }
.b-workflow { background:#e3f3fb; color:#0c6a92; }
.b-gotcha { background:#fde6e4; color:#b3261e; }
.b-superseded, .b-forgotten { background:#eee; color:#777; }
.b-active { background:#e2f4ea; color:#1e7f4f; }
.chips a { display:inline-block; margin:0 6px 6px 0; padding:3px 11px; border-radius:14px;
  border:1px solid var(--line); background:var(--card); font-size:13px; color:var(--ink); }
.chips a.on { background:var(--ink); color:#fff; border-color:var(--ink); }
.turn { background:var(--card); border:1px solid var(--line); border-radius:10px;
  padding:9px 14px; margin-bottom:8px; scroll-margin-top:16px; }
.turn.user { border-left:4px solid var(--accent); }
.turn.assistant { border-left:4px solid #9aa3b8; }
.turn.tool { padding:3px 14px; border-left:4px solid var(--line); }
.turn.side { margin-left:34px; background:#fbfbfd; }
.turn.quiet { padding:4px 14px; background:transparent; border-style:dashed; }
.turn:target { box-shadow:0 0 0 3px #ffd54a; }
.who { font-weight:650; font-size:13px; margin-right:8px; }
details { margin:4px 0; } summary { cursor:pointer; color:var(--muted); font-size:13px; }
details[open] > summary { margin-bottom:4px; }
.err summary { color:var(--warn); }
form.inline { display:inline; }
input[type=text], input[type=search], select, textarea { font:inherit; padding:7px 10px;
  border:1px solid #cbd1de; border-radius:7px; background:#fff; color:var(--ink); }
textarea { width:100%; min-height:70px; }
button { font:inherit; padding:7px 15px; border-radius:7px; border:1px solid var(--accent);
  background:var(--accent); color:#fff; cursor:pointer; }
button.plain { background:#fff; color:var(--ink); border-color:#cbd1de; }
button.danger { background:#fff; color:var(--warn); border-color:#e6b3ae; }
.row { display:flex; gap:8px; align-items:center; flex-wrap:wrap; }
.flash { background:#e2f4ea; color:#14532d; border:1px solid #b6e0c6; padding:8px 14px;
  border-radius:8px; margin-bottom:16px; }
.empty { color:var(--muted); font-style:italic; }
.score { font-variant-numeric:tabular-nums; color:var(--muted); }
.inject { border:1px solid #c9d3f5; background:#f7f9ff; }
img.plot { max-width:100%; border:1px solid var(--line); border-radius:8px; background:#fff; }
.md table { margin:8px 0 14px; } .md h1 { font-size:20px; margin-top:8px; }
"""

NAV = [
    ("sessions", "/", "Sessions"),
    ("memories", "/memories", "Memories"),
    ("recall", "/recall", "Recall"),
    ("reports", "/reports", "Reports"),
]


def esc(value: object) -> str:
    """HTML-escape any value (None becomes empty), quotes included, for text and attributes."""
    return html.escape("" if value is None else str(value), quote=True)


@dataclass(frozen=True)
class Links:
    """Builds URLs that carry the session token, so every link and form keeps working."""

    token: str

    def raw(self, path: str, fragment: str = "", /, **params: Any) -> str:
        query = {k: v for k, v in params.items() if v is not None and v != ""}
        query["token"] = self.token
        frag = "#" + quote(fragment, safe="") if fragment else ""
        return f"{path}?{urlencode(query)}{frag}"

    def href(self, path: str, fragment: str = "", /, **params: Any) -> str:
        """`raw`, escaped for an HTML attribute."""
        return esc(self.raw(path, fragment, **params))

    def hidden(self) -> str:
        """The token as a hidden form field (POST forms send it in the body)."""
        return f'<input type="hidden" name="token" value="{esc(self.token)}">'


def page(title: str, body: str, links: Links, active: str, flash: str | None = None) -> str:
    """A whole HTML document: the nav on the left, `body` (already escaped HTML) on the right."""
    nav = "".join(
        f'<a href="{links.href(path)}" class="{"on" if key == active else ""}">{esc(label)}</a>'
        for key, path, label in NAV
    )
    note = f'<div class="flash">{esc(flash)}</div>' if flash else ""
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="same-origin">'
        f"<title>{esc(title)} · lmm</title><style>{CSS}</style></head>"
        f'<body><nav><div class="brand">lmm</div><div class="tag">what your agent remembers</div>'
        f'{nav}<div class="foot">local only · 127.0.0.1</div></nav>'
        f"<main>{note}{body}</main></body></html>"
    )


def badge(text: str, cls: str = "") -> str:
    return f'<span class="badge {esc(cls)}">{esc(text)}</span>'


def when(timestamp: str | None) -> str:
    """'2026-01-07 14:21' from an ISO timestamp ('' when unknown)."""
    return (timestamp or "")[:16].replace("T", " ")


def shorten(text: str, limit: int) -> str:
    """`text` on one line, cut to `limit` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def options(choices: list[tuple[str, str]], selected: str | None) -> str:
    """<option> tags for (value, label) pairs."""
    return "".join(
        f'<option value="{esc(v)}"{" selected" if v == (selected or "") else ""}>{esc(label)}'
        "</option>"
        for v, label in choices
    )
