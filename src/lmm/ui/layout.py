"""The memory browser's page shell: one inline stylesheet, the nav, escaping and link helpers."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

CSS = """
:root { color-scheme:light; --ink:#1d2330; --muted:#5c6579; --line:#e3e6ee; --bg:#f6f7fb;
  --card:#fff; --field:#fff; --field-line:#cbd1de; --code:#f3f4f8; --accent:#3a5bd9;
  --accent-soft:#e8edff; --warn:#b3261e; --ok:#1e7f4f; --nav:#161b26; --add:#e6f6ec;
  --del:#fdecea; --hl:#ffd54a; --sel:#fff6d6; }
:root[data-theme=dark] { color-scheme:dark; --ink:#e4e7ef; --muted:#a3abbd; --line:#2c3343;
  --bg:#10131a; --card:#181c26; --field:#11151d; --field-line:#3a4255; --code:#11151d;
  --accent:#8ea6ff; --accent-soft:#232c4d; --warn:#ff8a80; --ok:#7fd6a4; --nav:#0b0d12;
  --add:#163323; --del:#3d1c1c; --hl:#b8941c; --sel:#2c2a1a; }
@media (prefers-color-scheme: dark) { :root:not([data-theme=light]) { color-scheme:dark;
  --ink:#e4e7ef; --muted:#a3abbd; --line:#2c3343; --bg:#10131a; --card:#181c26;
  --field:#11151d; --field-line:#3a4255; --code:#11151d; --accent:#8ea6ff;
  --accent-soft:#232c4d; --warn:#ff8a80; --ok:#7fd6a4; --nav:#0b0d12; --add:#163323;
  --del:#3d1c1c; --hl:#b8941c; --sel:#2c2a1a; } }
* { box-sizing:border-box; }
body { margin:0; font:15px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
  color:var(--ink); background:var(--bg); display:flex; min-height:100vh; }
a { color:var(--accent); text-decoration:none; } a:hover { text-decoration:underline; }
a.card { display:block; color:var(--ink); } a.card:hover { border-color:var(--accent);
  text-decoration:none; }
nav { width:210px; flex:none; background:var(--nav); color:#cfd5e4; padding:22px 14px;
  position:sticky; top:0; height:100vh; }
nav .brand { font-weight:700; font-size:18px; color:#fff; margin:0 8px 4px; letter-spacing:.3px; }
nav .tag { font-size:12px; color:#9aa3b8; margin:0 8px 22px; }
nav a { display:block; color:#cfd5e4; padding:7px 10px; border-radius:7px; margin-bottom:2px; }
nav a:hover { background:#242b3b; text-decoration:none; }
nav a.on { background:#3a5bd9; color:#fff; font-weight:600; }
nav form { margin:0 0 14px; } nav input[type=search] { width:100%; }
nav .foot { position:absolute; bottom:18px; left:22px; right:14px; font-size:11.5px;
  color:#9aa3b8; }
nav button.theme { margin-top:8px; font-size:12px; padding:3px 10px; background:transparent;
  color:#cfd5e4; border-color:#3a4255; }
main { flex:1; padding:26px 36px 60px; max-width:1080px; min-width:0; }
h1 { font-size:23px; margin:0 0 4px; overflow-wrap:anywhere; } h2 { font-size:17px;
  margin:28px 0 10px; } h3 { font-size:15px; margin:18px 0 8px; }
.sub { color:var(--muted); margin:0 0 20px; font-size:13.5px; overflow-wrap:anywhere; }
.card { background:var(--card); border:1px solid var(--line); border-radius:10px;
  padding:12px 16px; margin-bottom:10px; min-width:0; }
.grid { display:grid; grid-template-columns:repeat(auto-fill,minmax(240px,1fr)); gap:10px; }
.meta { color:var(--muted); font-size:12.5px; overflow-wrap:anywhere; }
.mono, code, pre { font-family:ui-monospace,"SFMono-Regular",Menlo,Consolas,"DejaVu Sans Mono",
  monospace; font-size:12.5px; overflow-wrap:anywhere; }
code { background:var(--code); border-radius:4px; padding:0 3px; }
pre { white-space:pre-wrap; word-break:break-word; margin:6px 0; background:var(--code);
  border-radius:7px; padding:9px 11px; }
pre code { padding:0; }
.text { white-space:pre-wrap; word-break:break-word; overflow-wrap:anywhere; }
.md ul, .md ol { margin:4px 0; padding-left:22px; white-space:normal; }
table { border-collapse:collapse; width:100%; background:var(--card); font-size:13.5px;
  table-layout:auto; }
th, td { text-align:left; padding:7px 10px; border-bottom:1px solid var(--line);
  vertical-align:top; overflow-wrap:anywhere; }
th { color:var(--muted); font-weight:600; font-size:12px; text-transform:uppercase;
  overflow-wrap:normal; }
tr.sel td, .card.sel { background:var(--sel); }
.badge { display:inline-block; font-size:11.5px; padding:1px 8px; border-radius:10px;
  background:var(--accent-soft); color:var(--accent); font-weight:600; }
.b-preference { background:#efe7ff; color:#5b2fb0; }
.b-decision { background:#e2f4ea; color:#176640; }
.b-fact { background:#e9eef5; color:#3b475d; }
.b-lesson { background:#fff1dc; color:#7d4a00; }
.b-workflow { background:#e3f3fb; color:#0a5877; }
.b-gotcha { background:#fde6e4; color:#a3211a; }
.b-superseded, .b-forgotten { background:#e6e6e6; color:#474747; }
.b-active { background:#e2f4ea; color:#176640; }
.chips { display:flex; flex-wrap:wrap; }
.chips a { display:inline-block; margin:0 6px 6px 0; padding:3px 11px; border-radius:14px;
  border:1px solid var(--line); background:var(--card); font-size:13px; color:var(--ink);
  max-width:100%; overflow-wrap:anywhere; }
.chips a.on { background:var(--ink); color:var(--bg); border-color:var(--ink); }
.turn { background:var(--card); border:1px solid var(--line); border-radius:10px;
  padding:9px 14px; margin-bottom:8px; scroll-margin-top:16px; min-width:0; }
.turn.user { border-left:4px solid var(--accent); }
.turn.assistant { border-left:4px solid #9aa3b8; }
.turn.tool { padding:3px 14px; border-left:4px solid var(--line); }
.turn.side { margin-left:34px; background:var(--bg); }
.turn.quiet { padding:4px 14px; background:transparent; border-style:dashed; }
.turn:target { box-shadow:0 0 0 3px var(--hl); }
.who { font-weight:650; font-size:13px; margin-right:8px; }
details { margin:4px 0; min-width:0; } summary { cursor:pointer; color:var(--muted);
  font-size:13px; overflow-wrap:anywhere; }
details[open] > summary { margin-bottom:4px; }
.err summary { color:var(--warn); }
.diff { padding:0; overflow:hidden; } .diff div { padding:0 11px; white-space:pre-wrap;
  overflow-wrap:anywhere; }
.diff .add { background:var(--add); } .diff .del { background:var(--del); }
.diff .hunk { color:var(--muted); }
form.inline { display:inline; }
label { font-size:13px; color:var(--muted); }
.vh { position:absolute; width:1px; height:1px; overflow:hidden; clip:rect(0 0 0 0);
  white-space:nowrap; }
input[type=text], input[type=search], select, textarea { font:inherit; padding:7px 10px;
  border:1px solid var(--field-line); border-radius:7px; background:var(--field);
  color:var(--ink); max-width:100%; min-width:0; }
textarea { width:100%; min-height:70px; }
button, a.button { font:inherit; padding:7px 15px; border-radius:7px;
  border:1px solid var(--accent);
  background:#3a5bd9; color:#fff; cursor:pointer; display:inline-block; }
button.plain, a.button.plain { background:var(--card); color:var(--ink);
  border-color:var(--field-line); }
button.danger, a.button.danger { background:var(--card); color:var(--warn);
  border-color:var(--warn); }
button.danger.solid { background:#b3261e; color:#fff; border-color:#b3261e; }
.row { display:flex; gap:8px; align-items:center; flex-wrap:wrap; min-width:0; }
.grow { flex:1 1 220px; }
.flash { background:#e2f4ea; color:#14532d; border:1px solid #b6e0c6; padding:8px 14px;
  border-radius:8px; margin-bottom:16px; }
.flash.bad { background:#fde6e4; color:#7a1711; border-color:#f0b8b2; }
.empty { color:var(--muted); font-style:italic; }
.score { font-variant-numeric:tabular-nums; color:var(--muted); }
.inject { border:1px solid var(--accent-soft); }
.pager { display:flex; gap:12px; align-items:center; flex-wrap:wrap; margin:12px 0;
  font-size:13.5px; }
img.plot { max-width:100%; border:1px solid var(--line); border-radius:8px; background:#fff; }
.md table { margin:8px 0 14px; } .md h1 { font-size:20px; margin-top:8px; }
@media (max-width: 760px) {
  body { display:block; }
  nav { width:auto; height:auto; position:static; padding:10px 12px; display:flex;
    flex-wrap:wrap; align-items:center; gap:4px 6px; }
  nav .brand { margin:0 10px 0 0; } nav .tag, nav .foot { display:none; }
  nav a { display:inline-block; margin:0; padding:5px 9px; }
  nav form { order:9; flex:1 1 100%; margin:4px 0 0; }
  nav button.theme { margin:0 0 0 auto; }
  main { padding:16px 12px 40px; }
  .wide { display:none; }
  .chips { flex-wrap:nowrap; overflow-x:auto; scrollbar-width:none; }
  .chips a { flex:none; }
  .turn.side { margin-left:10px; }
  th, td { padding:6px 6px; }
}
"""

NAV = [
    ("sessions", "/", "Sessions"),
    ("memories", "/memories", "Memories"),
    ("injected", "/injected", "Injected"),
    ("recall", "/recall", "Recall"),
    ("reports", "/reports", "Reports"),
]

# The one script, served from /app.js (the CSP allows scripts from the page's own origin only).
# Pages work without it; it adds the theme toggle and keys: / search, j/k move, Enter opens.
SCRIPT = """
(function () {
  var root = document.documentElement;
  var saved = localStorage.getItem('lmm-theme');
  if (saved) root.dataset.theme = saved;
  function dark() {
    return root.dataset.theme ? root.dataset.theme === 'dark'
      : matchMedia('(prefers-color-scheme: dark)').matches;
  }
  document.addEventListener('DOMContentLoaded', function () {
    var b = document.getElementById('theme');
    if (b) {
      b.hidden = false;
      var label = function () { b.textContent = dark() ? 'Light theme' : 'Dark theme'; };
      label();
      b.addEventListener('click', function () {
        root.dataset.theme = dark() ? 'light' : 'dark';
        localStorage.setItem('lmm-theme', root.dataset.theme);
        label();
      });
    }
  });
  var at = -1;
  document.addEventListener('keydown', function (e) {
    var t = e.target.tagName;
    if (e.ctrlKey || e.metaKey || e.altKey || t === 'INPUT' || t === 'TEXTAREA' ||
        t === 'SELECT') return;
    if (e.key === '/') {
      var box = document.querySelector('main input[type=search]') ||
        document.querySelector('nav input[type=search]');
      if (box) { e.preventDefault(); box.focus(); box.select(); }
      return;
    }
    var items = document.querySelectorAll('[data-item]');
    if (!items.length) return;
    if (e.key === 'j' || e.key === 'k' || e.key === 'ArrowDown' && e.shiftKey ||
        e.key === 'ArrowUp' && e.shiftKey) {
      if (at >= 0 && items[at]) items[at].classList.remove('sel');
      var down = e.key === 'j' || e.key === 'ArrowDown';
      at = Math.max(0, Math.min(items.length - 1, at + (down ? 1 : -1)));
      items[at].classList.add('sel');
      items[at].scrollIntoView({block: 'nearest'});
      e.preventDefault();
    } else if (e.key === 'Enter' && at >= 0 && items[at]) {
      var a = items[at].querySelector('a[href]');
      if (a) a.click();
    }
  });
})();
"""

# A small icon, served at /favicon.svg and /favicon.ico (no token: it holds nothing).
ICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" '
    'rx="7" fill="#3a5bd9"/><path d="M8 23V9h3v11h5v3zm10 0V9h3l2 6 2-6h3v14h-3v-8l-2 6-2-6v8z" '
    'fill="#fff"/></svg>'
)


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


def page(
    title: str,
    body: str,
    links: Links,
    active: str,
    flash: str | None = None,
    *,
    bad: bool = False,
    refresh: int | None = None,
) -> str:
    """A whole HTML document: the nav (the active page marked), `body` (already escaped HTML).
    `bad` shows `flash` as an error; `refresh` reloads the page every that many seconds."""
    nav = "".join(
        f'<a href="{links.href(path)}"'
        + (' class="on" aria-current="page"' if key == active else "")
        + f">{esc(label)}</a>"
        for key, path, label in NAV
    )
    search = (
        f"<form method='get' action='/search' role='search'>{links.hidden()}"
        "<label for='nav-q' class='vh'>Search sessions and memories</label>"
        "<input type='search' id='nav-q' name='q' placeholder='Search all  ( / )'></form>"
    )
    note = f'<div class="flash{" bad" if bad else ""}">{esc(flash)}</div>' if flash else ""
    reload = f'<meta http-equiv="refresh" content="{int(refresh)}">' if refresh else ""
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="same-origin">'
        '<meta name="color-scheme" content="light dark">'
        f"{reload}<title>{esc(title)} · lmm</title>"
        '<link rel="icon" href="/favicon.svg" type="image/svg+xml">'
        f'<style>{CSS}</style><script src="/app.js"></script></head>'
        f'<body><nav aria-label="lmm"><div class="brand">lmm</div>'
        f'<div class="tag">what your agent remembers</div>{search}{nav}'
        '<button type="button" id="theme" class="theme" hidden>Dark theme</button>'
        '<div class="foot">keys: / search · j k move · Enter open<br>local only · 127.0.0.1'
        "</div></nav>"
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


def label(for_id: str, text: str, hidden: bool = False) -> str:
    """A <label> for the control with id `for_id` (`hidden`: read by screen readers only)."""
    return f"<label for='{esc(for_id)}'{' class=vh' if hidden else ''}>{esc(text)}</label>"


@dataclass(frozen=True)
class Paging:
    """One page of a long list: `offset` of the first row shown, `size` rows, `total` in all."""

    offset: int
    size: int
    total: int

    @classmethod
    def of(cls, raw: str | None, total: int, size: int = 50) -> Paging:
        """The page numbered `raw` (1-based; bad or past the end: clamped) of `total` rows."""
        pages = max(1, -(-total // size))
        number = int(raw) if raw and raw.isdigit() and len(raw) < 9 else 1
        return cls((min(max(number, 1), pages) - 1) * size, size, total)

    @property
    def number(self) -> int:
        return self.offset // self.size + 1

    def nav(self, links: Links, path: str, noun: str, **keep: Any) -> str:
        """'51–100 of 1,500 sessions · ← Newer · Older →' with links that keep the filters."""
        if self.total == 0:
            return ""
        last = min(self.offset + self.size, self.total)
        parts = [f"<span class='meta pos'>{self.offset + 1:,}–{last:,} of {self.total:,} "
                 f"{esc(noun)}</span>"]  # fmt: skip
        if self.offset > 0:
            prev = links.href(path, page=self.number - 1, **keep)
            parts.append(f'<a href="{prev}" rel="prev">← Previous</a>')
        if last < self.total:
            nxt = links.href(path, page=self.number + 1, **keep)
            parts.append(f'<a href="{nxt}" rel="next">Next →</a>')
        return f"<div class='pager'>{''.join(parts)}</div>"
