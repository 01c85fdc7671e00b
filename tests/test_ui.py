"""The memory browser over HTTP (no browser): token, loopback, escaping, pages and actions."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest

from lmm import paths
from lmm.errors import LmmError
from lmm.ingest import run as ingest
from lmm.memory.extract import get_extractor, run_extraction
from lmm.records import SessionInfo, ToolCall, Turn
from lmm.serve.hooks import wrap_memory
from lmm.store import cognitions
from lmm.store.cognitions import Cognition, SourceRef
from lmm.store.db import Store
from lmm.ui import UIConfig, make_server
from lmm.ui.layout import Links
from lmm.ui.recall import hook_config
from lmm.ui.reports import ReportSources, markdown
from lmm.ui.sessions import turn_anchor

HOSTILE = "<script>alert(1)</script>"
EVIL_ID = "evil <id>/#?&"  # generic imports may name sessions anything
OWN_SCRIPT = '<script src="/app.js"></script>'
TOOLS_SESSION = "e3b8afa4-b77f-4150-a7f3-a1049b2966f7"


@dataclass
class UI:
    base: str
    token: str
    db: Path

    def url(self, path: str, **params: str) -> str:
        return f"{self.base}{path}?{urlencode({**params, 'token': self.token})}"


def fetch(url: str, data: dict[str, str] | None = None, headers: dict[str, str] | None = None
          ) -> tuple[int, str, dict[str, str]]:  # fmt: skip
    """(status, body, headers) without following redirects."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    body = urlencode(data).encode() if data is not None else None
    req = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with urllib.request.build_opener(NoRedirect).open(req, timeout=30) as r:
            return r.status, r.read().decode(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), dict(e.headers)


def sample_store(db: Path) -> None:
    """The bundled sample history, ingested and run through the rule extractor."""
    with Store(db) as store:
        ingest.ingest(store, [paths.sample_projects()])
        run_extraction(store, get_extractor("rules"))


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UI]:
    home = tmp_path_factory.mktemp("ui")
    db = home / "lmm.db"
    sample_store(db)
    reports = ReportSources(home / "benchmarks.md", (home / "runs",))
    httpd, url = make_server(UIConfig(db=db, reports=reports, token="t0k3n"))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield UI(url.split("/?")[0], "t0k3n", db)
    httpd.shutdown()
    httpd.server_close()


def origin(ui: UI) -> dict[str, str]:
    return {"Origin": ui.base}


# ---- safety


def test_binds_loopback_only_and_prints_a_token_url(tmp_path: Path) -> None:
    httpd, url = make_server(UIConfig(db=tmp_path / "lmm.db"))
    try:
        host, port = httpd.socket.getsockname()[:2]
        assert host == "127.0.0.1"
        token = url.split("token=", 1)[1]
        assert url == f"http://127.0.0.1:{port}/?token={token}"
        assert len(token) >= 32 and re.fullmatch(r"[A-Za-z0-9_-]+", token)
    finally:
        httpd.server_close()
    other, url2 = make_server(UIConfig(db=tmp_path / "lmm.db"))
    other.server_close()
    assert url2.split("token=")[1] != token  # a fresh token per server


def test_requests_without_the_token_are_refused(ui: UI) -> None:
    for url in (
        ui.base + "/",
        ui.base + "/memories",
        ui.base + "/memory/1",
        ui.base + "/recall?q=tests",
        ui.base + "/file?path=/etc/passwd",
        ui.base + "/?token=wrong",
        ui.base + "/?token=t0k3",
    ):
        status, body, _ = fetch(url)
        assert (status, body.split(":")[0]) == (403, "403"), url
    status, _, _ = fetch(ui.base + "/remember", {"text": "x", "category": "fact"}, origin(ui))
    assert status == 403
    assert fetch(ui.url("/"))[0] == 200


def test_foreign_host_header_is_refused(ui: UI) -> None:
    status, body, _ = fetch(ui.url("/"), headers={"Host": "evil.example"})
    assert (status, body) == (403, "403: unexpected Host header; use the 127.0.0.1 URL lmm ui "
                                    "printed.\n")  # fmt: skip


def test_post_from_another_origin_is_refused(ui: UI) -> None:
    with Store(ui.db) as store:
        before = cognitions.dump(store)
    form = {"token": ui.token, "text": "Use poetry.", "category": "preference"}
    for headers in ({"Origin": "http://evil.example"}, {"Referer": "http://evil.example/x"}, {}):
        status, body, _ = fetch(ui.base + "/memory/1/edit", form, headers)
        assert (status, body) == (403, "403: a change must come from the lmm ui page itself.\n")
    with Store(ui.db) as store:
        assert cognitions.dump(store) == before


def test_security_headers(ui: UI) -> None:
    _, _, headers = fetch(ui.url("/"))
    assert headers["Content-Security-Policy"] == (
        "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Cache-Control"] == "no-store"


def test_hostile_transcript_is_escaped(tmp_path: Path) -> None:
    db = tmp_path / "lmm.db"
    with Store(db) as store:
        store.add_session(SessionInfo(EVIL_ID, "claude", project="/p/<b>x</b>", title=HOSTILE))
        store.add_turns([
            Turn(EVIL_ID, "u1", "user", "message", HOSTILE, uuid="u1",
                 timestamp="2026-01-01T00:00:00Z", cwd="/p/<b>x</b>"),
            Turn(EVIL_ID, "a1", "assistant", "message", '[tool: Bash] {"command":"<img src=x>"}',
                 uuid="a1", parent_uuid="u1", cwd="/p/<b>x</b>",
                 tool_calls=[ToolCall("c1", "Bash", '{"command":"<img src=x onerror=alert(2)>"}')]),
        ])  # fmt: skip
        pid = store.project_id("/p/<b>x</b>")
        source = SourceRef(EVIL_ID, "u1", quote=HOSTILE)
        cognitions.add(store, Cognition(HOSTILE + " is a fact", "fact", project_id=pid,
                                        sources=[source]))  # fmt: skip
    httpd, url = make_server(UIConfig(db=db, token="tok"))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        base = url.split("/?")[0]
        evil_path = "/session/" + quote(EVIL_ID, safe="")
        pages = ("/", evil_path, "/memories", "/memory/1", "/memory/1/forget", "/recall",
                 "/search", "/injected")  # fmt: skip
        for path in pages:
            status, body, _ = fetch(f"{base}{path}?token=tok&q=" + HOSTILE)
            assert status == 200, path
            assert body.count(OWN_SCRIPT) == 1, path  # the page's one script: our own
            body = body.replace(OWN_SCRIPT, "")
            assert "<script" not in body and "<img" not in body and "<b>x" not in body, path
        _, body, _ = fetch(f"{base}{evil_path}?token=tok")
        assert body.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 3  # <title>, <h1>, turn
        assert "&lt;img src=x onerror=alert(2)&gt;" in body
        _, body, _ = fetch(f"{base}/?token=tok")
        assert f'href="{evil_path}?token=tok"' in body
    finally:
        httpd.shutdown()
        httpd.server_close()


# ---- pages


def test_sessions_newest_first(ui: UI) -> None:
    _, body, _ = fetch(ui.url("/"))
    shown = re.findall(r"/session/([0-9a-f-]{36})\?", body)
    with Store(ui.db) as store:
        expected = [r[0] for r in store.db.execute(
            "SELECT id FROM sessions ORDER BY coalesce(ended_at, started_at) DESC")]  # fmt: skip
    assert shown == expected
    assert len(shown) == 7


def test_transcript_in_conversation_order_with_tool_calls_collapsed(ui: UI) -> None:
    status, body, _ = fetch(ui.url(f"/session/{TOOLS_SESSION}"))
    assert status == 200
    with Store(ui.db) as store:
        turns = store.session_turns(TOOLS_SESSION)
    anchors = re.findall(r'class="turn[^"]*" id="([^"]+)"', body)
    assert anchors == [turn_anchor(t.key) for t in turns]
    calls = [c for t in turns for c in t.tool_calls]
    summaries = re.findall(r"<details class='tool'><summary>tool call · <b>([^<]+)</b>", body)
    assert summaries == [c.name for c in calls]
    assert len(calls) == 13


def test_memory_sources_link_to_turn_anchors(ui: UI) -> None:
    with Store(ui.db) as store:
        cog = cognitions.list_(store, category="preference")[0]
    _, body, _ = fetch(ui.url(f"/memory/{cog.id}"))
    links = [unescape(h) for h in re.findall(r'href="([^"]+)" class="source-link"', body)]
    assert links == [
        f"/session/{s.session_id}?token=t0k3n#{turn_anchor(s.turn_key or '')}" for s in cog.sources
    ]
    for s in cog.sources:
        _, page, _ = fetch(ui.url(f"/session/{s.session_id}"))
        assert f'id="{turn_anchor(s.turn_key or "")}"' in page


def test_memories_filtered_by_project_category_and_status(ui: UI) -> None:
    with Store(ui.db) as store:
        pid = store.project_id("/home/dev/tidepool")
        expected = [c.id for c in cognitions.list_(store, project="/home/dev/tidepool",
                                                   category="lesson")]  # fmt: skip
    _, body, _ = fetch(ui.url("/memories", project=str(pid), category="lesson"))
    assert [int(i) for i in re.findall(r'class="meta">#(\d+)</a>', body)] == expected
    assert expected
    status, body, _ = fetch(ui.url("/memories", category="nonsense"))
    assert status == 400 and "category &#x27;nonsense&#x27; is not one of" in body


def test_edit_supersedes_and_keeps_history(ui: UI) -> None:
    with Store(ui.db) as store:
        old = cognitions.list_(store, category="workflow")[0]
    form = {"token": ui.token, "text": "Run the tests with `make check`.", "category": "workflow"}
    status, _, headers = fetch(ui.base + f"/memory/{old.id}/edit", form, origin(ui))
    assert status == 303
    new_id = int(re.match(r"/memory/(\d+)\?", headers["Location"]).group(1))  # type: ignore[union-attr]
    with Store(ui.db) as store:
        new, was = cognitions.get(store, new_id), cognitions.get(store, old.id)
    assert new is not None and was is not None
    assert (new.text, new.category, new.origin, new.status, new.project_id) == (
        "Run the tests with `make check`.",
        "workflow",
        "user",
        "active",
        old.project_id,
    )
    assert (was.text, was.status, was.superseded_by) == (old.text, "superseded", new_id)
    _, body, _ = fetch(ui.base + headers["Location"])
    assert f"Saved. #{new_id} replaces #{old.id}, which is kept as history." in unescape(body)
    history = re.findall(r'<tr><td><a href="[^"]+">#(\d+)</a>', body)
    assert history == [str(old.id), str(new_id)]


def test_forget_and_remember(ui: UI) -> None:
    form = {"token": ui.token, "text": "Deploys go out on Tuesdays.", "category": "fact",
            "project": ""}  # fmt: skip
    status, _, headers = fetch(ui.base + "/remember", form, origin(ui))
    assert status == 303
    cog_id = int(re.match(r"/memory/(\d+)\?", headers["Location"]).group(1))  # type: ignore[union-attr]
    with Store(ui.db) as store:
        cog = cognitions.get(store, cog_id)
        assert cog is not None
        assert (cog.text, cog.category, cog.origin, cog.project_id) == (
            "Deploys go out on Tuesdays.",
            "fact",
            "user",
            None,
        )
    status, _, _ = fetch(ui.base + f"/memory/{cog_id}/forget", {"token": ui.token}, origin(ui))
    assert status == 303
    with Store(ui.db) as store:
        gone = cognitions.get(store, cog_id)
        assert gone is not None and (gone.status, gone.text) == ("forgotten", "")
    _, body, _ = fetch(ui.url("/memories", status="all"))
    assert "Deploys go out on Tuesdays." not in body


def test_recall_page_shows_what_the_hook_injects(ui: UI) -> None:
    from lmm.retrieve.recall import recall

    query = "how do I run the tests"
    with Store(ui.db) as store:
        expected = recall(store, query, config=hook_config())
    assert expected.brief.text
    _, body, _ = fetch(ui.url("/recall", q=query))
    injected = re.search(r"<pre class='injected'>(.*?)</pre>", body, re.S)
    assert injected and unescape(injected.group(1)) == wrap_memory(expected.brief.text,
                                                                   title="recall")  # fmt: skip
    assert re.search(r"<b class='brief-tokens'>(\d+)</b>", body).group(1) == str(  # type: ignore[union-attr]
        expected.brief.tokens
    )
    scores = re.findall(r"<tr class='hit'><td class='score'>\d+</td><td class='score'>([0-9.]+)",
                        body)  # fmt: skip
    assert scores == [f"{h.score:.4f}" for h in expected.hits]


def test_recall_page_without_results(ui: UI) -> None:
    _, body, _ = fetch(ui.url("/recall", q="zzyzx qwv"))
    assert "Nothing: no hit cleared the relevance threshold" in body


# ---- reports


PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00"
       b"\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00"
       b"\x00\x00\x00IEND\xaeB`\x82")  # fmt: skip


def test_reports_show_benchmarks_and_the_newest_eval_folder(tmp_path: Path) -> None:
    import os

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "benchmarks.md").write_text(
        "# Benchmarks\n\n| task | recall@5 |\n|---|---:|\n| locomo | **0.81** |\n\n"
        "![speed](speed.png)\n"
    )
    (tmp_path / "docs" / "speed.png").write_bytes(PNG)
    old, new = tmp_path / "runs" / "eval-1", tmp_path / "runs" / "eval-2"
    for folder, stamp in ((old, 1_000_000), (new, 2_000_000)):
        folder.mkdir(parents=True)
        (folder / "report.md").write_text(f"Report of {folder.name} <i>x</i>\n")
        (folder / "metrics.json").write_text(json.dumps({"f1": 0.5, "rows": list(range(20))}))
        (folder / "plot.png").write_bytes(PNG)
        for f in folder.iterdir():
            os.utime(f, (stamp, stamp))
    (tmp_path / "secret.png").write_bytes(PNG)
    sources = ReportSources(tmp_path / "docs" / "benchmarks.md", (tmp_path / "runs",))
    httpd, url = make_server(UIConfig(db=tmp_path / "lmm.db", reports=sources, token="tok"))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        base = url.split("/?")[0]
        _, body, _ = fetch(f"{base}/reports?token=tok")
        assert "<table><tr><th>task</th><th>recall@5</th></tr><tr><td>locomo</td><td><b>0.81</b>" \
            "</td></tr></table>" in body  # fmt: skip
        assert "Report of eval-2 &lt;i&gt;x&lt;/i&gt;" in body and "Report of eval-1" not in body
        assert re.findall(r"<div class=.chips.>.*?</div>", body) == [
            f'<div class=\'chips\'><a class="on" href="/reports?folder={quote(str(new), safe="")}'
            f'&amp;token=tok">eval-2</a><a class="" href="/reports?folder='
            f'{quote(str(old), safe="")}&amp;token=tok">eval-1</a></div>'
        ]
        assert "&quot;f1&quot;: 0.5" in body
        assert "7,\n    &quot;... 12 more&quot;\n  ]" in body  # long lists are abridged
        images = [unescape(s) for s in re.findall(r'<img class="plot" alt="[^"]*" src="([^"]+)"',
                                                  body)]  # fmt: skip
        assert len(images) == 2  # the benchmarks plot and the eval plot
        for src in images:
            with urllib.request.urlopen(base + src, timeout=30) as r:
                assert (r.status, r.headers["Content-Type"], r.read()) == (200, "image/png", PNG)
        for bad in (tmp_path / "secret.png", tmp_path / "runs" / ".." / "secret.png",
                    new / "metrics.json", Path("/etc/passwd")):  # fmt: skip
            status, _, _ = fetch(f"{base}/file?" + urlencode({"path": str(bad), "token": "tok"}))
            assert status == 404, bad
        _, body, _ = fetch(f"{base}/reports?" + urlencode({"folder": str(old), "token": "tok"}))
        assert "Report of eval-1" in body and "Report of eval-2" not in body
        _, body, _ = fetch(f"{base}/reports?" + urlencode({"folder": "/etc", "token": "tok"}))
        assert "Report of eval-2" in body  # not a report folder: the newest is shown
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_markdown_escapes_everything() -> None:
    html = markdown("# T <x>\n\n- `<a>` and [l](javascript:x)\n", Path("/nowhere"), Links("k"))
    assert html == (
        "<div class='md'><h2>T &lt;x&gt;</h2><ul><li><code>&lt;a&gt;</code> and l "
        "<span class='meta'>(javascript:x)</span></li></ul></div>"
    )


# ---- the library function the edit action uses, and the command


def test_edit_function_keeps_a_forgotten_text_away(tmp_path: Path) -> None:
    with Store(tmp_path / "lmm.db") as store:
        a = cognitions.remember(store, "Use uv.", project="/p")
        b = cognitions.remember(store, "Prefer tabs.", project="/p")
        cognitions.forget(store, b)
        assert cognitions.edit(store, a, "use uv.") == a  # same normalised text: nothing to do
        with pytest.raises(LmmError, match="was forgotten"):
            cognitions.edit(store, a, "Prefer tabs.")
        with pytest.raises(LmmError, match="only active ones can be edited"):
            cognitions.edit(store, b, "Prefer spaces.")
        with pytest.raises(LmmError, match="there is no cognition #99"):
            cognitions.edit(store, 99, "x")


def test_config_rejects_a_bad_port() -> None:
    with pytest.raises(LmmError, match=r"--port must be within 0\.\.65535"):
        UIConfig(port=70_000)


def test_lmm_ui_command_prints_a_url_that_serves(tmp_path: Path) -> None:
    sample_store(tmp_path / "lmm.db")
    env = {"LMM_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen([sys.executable, "-m", "lmm", "ui", "--embedder", "none"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=tmp_path)  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        m = re.fullmatch(r"lmm ui: (http://127\.0\.0\.1:\d+/\?token=[\w-]+)\n", line)
        assert m, line
        status, body, _ = fetch(m.group(1))
        assert status == 200 and "NOAA fetcher and SQLite database-locked fix" in body
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_open_asks_the_browser_for_the_token_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import webbrowser

    from lmm.ui import serve

    printed: list[str] = []
    opened: list[str] = []

    def fake_open(url: str) -> bool:
        opened.append(url)
        raise KeyboardInterrupt  # stands for Ctrl-C: serve returns and closes its socket

    monkeypatch.setattr(webbrowser, "open", fake_open)
    serve(UIConfig(db=tmp_path / "lmm.db", token="tok"), open_browser=True, ready=printed.append)
    assert len(opened) == 1 and opened == printed
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/\?token=tok", opened[0])
    with pytest.raises(urllib.error.URLError):  # the socket is closed
        urllib.request.urlopen(opened[0], timeout=5)


def test_terminal_escapes_and_slash_commands_render_quietly() -> None:
    from lmm.ui.sessions import plain, render_turn

    assert plain("\x1b[1mContext\x1b[22m \x1b[38;2;153;153;153m66k\x1b[39m") == "Context 66k"
    turn = Turn("s", "k1", "user", "message", "<local-command-stdout>\x1b[1mok\x1b[22m"
                "</local-command-stdout>", timestamp="2026-01-01T00:00:00Z")  # fmt: skip
    assert render_turn(turn, Links("t"), {}, []) == (
        '<div class="turn user quiet" id="t-k1"><details><summary>command · '
        "&lt;local-command-stdout&gt;ok&lt;/local-command-stdout&gt;</summary><div class='text'>"
        "&lt;local-command-stdout&gt;ok&lt;/local-command-stdout&gt;</div></details></div>"
    )


def test_every_page_of_the_real_transcripts_renders(tmp_path: Path) -> None:
    data = Path(__file__).resolve().parents[2] / "shared" / "data" / "claude_sessions"
    if not data.is_dir():
        pytest.skip(f"real transcripts not found at {data} (see shared/data/README.md)")
    db = tmp_path / "lmm.db"
    with Store(db) as store:
        ingest.ingest(store, [data])
        run_extraction(store, get_extractor("rules"))
        sessions = [r[0] for r in store.db.execute("SELECT id FROM sessions")]
        memories = [r[0] for r in store.db.execute("SELECT id FROM cognitions")]
    assert len(sessions) > 50 and len(memories) > 20
    httpd, url = make_server(UIConfig(db=db, token="tok"))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        base = url.split("/?")[0]
        pages = ["/", "/memories?status=all", "/recall?q=commit+the+changes"]
        pages += ["/session/" + quote(s, safe="") for s in sessions]
        pages += [f"/memory/{m}" for m in memories]
        failed = [
            p for p in pages if fetch(f"{base}{p}{'&' if '?' in p else '?'}token=tok")[0] != 200
        ]
        assert failed == []
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_each_memory_moves_between_scopes(ui: UI) -> None:
    with Store(ui.db) as store:
        cog = next(c for c in cognitions.list_(store, category="decision") if c.project)
    assert cog.id is not None and cog.project == cog.learned_in_path
    _, body, _ = fetch(ui.url("/memories", category="decision"))
    action = f"action='/memory/{cog.id}/scope'"
    assert action in body and "Use in every project" in body
    form = {"token": ui.token, "scope": "user"}
    status, _, _ = fetch(ui.base + f"/memory/{cog.id}/scope", form)  # no Origin: refused
    assert status == 403
    status, _, _ = fetch(ui.base + f"/memory/{cog.id}/scope", {"scope": "user"}, origin(ui))
    assert status == 403  # no token: refused
    with Store(ui.db) as store:
        assert (got := cognitions.get(store, cog.id)) is not None and got.scope == "project"
    status, _, headers = fetch(ui.base + f"/memory/{cog.id}/scope", form, origin(ui))
    assert status == 303 and headers["Location"].startswith(f"/memory/{cog.id}?")
    with Store(ui.db) as store:
        moved = cognitions.get(store, cog.id)
        assert moved is not None and (moved.scope, moved.scope_by) == ("user", "user")
    _, body, _ = fetch(ui.base + headers["Location"])
    assert "Now applies to every project." in unescape(body)
    assert f"Only in {cog.project}" in unescape(body)
    user_ids = re.findall(r'class="meta">#(\d+)</a>', fetch(ui.url("/memories", scope="user"))[1])
    own_ids = re.findall(r'class="meta">#(\d+)</a>', fetch(ui.url("/memories", scope="project"))[1])
    assert str(cog.id) in user_ids and str(cog.id) not in own_ids
    back = {"token": ui.token, "scope": "project"}
    status, _, _ = fetch(ui.base + f"/memory/{cog.id}/scope", back, origin(ui))
    assert status == 303
    with Store(ui.db) as store:
        again = cognitions.get(store, cog.id)
        assert again is not None and (again.scope, again.project) == ("project", cog.project)


def _raw_request(ui: UI, head: str, body: bytes = b"") -> bytes:
    """Send `head` (request line and headers) as raw bytes; the server's whole answer."""
    import socket

    host, port = ui.base.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("length", ["abc", "-5", "1e3", "\u0661\u0662", "99999999999999999999"])
def test_a_bad_content_length_gets_an_answer(ui: UI, length: str) -> None:
    host = ui.base.split("//")[1]
    head = (f"POST /remember?token={ui.token} HTTP/1.0\nHost: {host}\nOrigin: {ui.base}\n"
            f"Content-Length: {length}\n")  # fmt: skip
    answer = _raw_request(ui, head, b"text=x")
    assert answer.split(b"\r\n", 1)[0] in (
        b"HTTP/1.0 400 Bad Request",
        b"HTTP/1.0 413 Request Entity Too Large",
    )


@pytest.mark.parametrize("path", ["/memory/99999999999999999999999", "/memory/%D9%A1"])
def test_a_huge_or_odd_id_is_not_found(ui: UI, path: str) -> None:
    assert fetch(ui.url(path))[0] == 404
    assert fetch(ui.url("/memories", project="99999999999999999999999"))[0] == 200
    assert fetch(ui.url(path + "/forget"), {"token": ui.token}, origin(ui))[0] == 404


# ---- finding, paging, confirming, the live injections


def test_icon_and_script_need_no_token_but_the_host_check_stays(ui: UI) -> None:
    for path, kind in (("/favicon.ico", "image/svg+xml"), ("/favicon.svg", "image/svg+xml"),
                       ("/app.js", "text/javascript; charset=utf-8")):  # fmt: skip
        status, body, headers = fetch(ui.base + path)
        assert (status, headers["Content-Type"]) == (200, kind) and body
    status, _, _ = fetch(ui.base + "/app.js", headers={"Host": "evil.example:80"})
    assert status == 403


def test_sessions_search_and_pages(ui: UI) -> None:
    _, body, _ = fetch(ui.url("/", q="httpx"))
    with Store(ui.db) as store:
        expected = {r[0] for r in store.db.execute(
            "SELECT DISTINCT session_id FROM turns WHERE text LIKE '%httpx%'")}  # fmt: skip
    assert set(re.findall(r"/session/([0-9a-f-]{36})\?", body)) == expected
    assert 0 < len(expected) < 7
    assert f"1–{len(expected)} of {len(expected)} sessions" in body
    _, body, _ = fetch(ui.url("/", q="zzzznothing"))
    assert "No session matches." in body
    _, body, _ = fetch(ui.url("/", page="99"))  # past the end: the last page
    assert "1–7 of 7 sessions" in body


def test_memories_by_origin_search_and_citing_session(ui: UI) -> None:
    with Store(ui.db) as store:
        rules = [c.id for c in cognitions.list_(store) if c.origin == "rules"]
        rows = store.db.execute(
            "SELECT cognition_id FROM cognition_sources WHERE session_id = ?", (TOOLS_SESSION,)
        )
        cited = sorted({r[0] for r in rows})
    _, body, _ = fetch(ui.url("/memories", origin="rules"))
    assert [int(i) for i in re.findall(r'class="meta">#(\d+)</a>', body)] == rules
    _, body, _ = fetch(ui.url("/memories", origin="code"))
    assert "No memories match." in body
    _, body, _ = fetch(ui.url("/memories", q="httpx"))
    shown = re.findall(r"<div class='text' style='margin:6px 0 4px'>([^<]*)</div>", body)
    assert shown and all("httpx" in unescape(t).lower() for t in shown)
    _, page, _ = fetch(ui.url(f"/session/{TOOLS_SESSION}"))
    link = re.search(r'<a href="([^"]+)">(\d+) memories cite it</a>', page)
    assert link and int(link.group(2)) == len(cited)
    _, body, _ = fetch(ui.base + unescape(link.group(1)))
    assert sorted(int(i) for i in re.findall(r'class="meta">#(\d+)</a>', body)) == cited


def test_a_source_is_named_by_its_session_title(ui: UI) -> None:
    with Store(ui.db) as store:
        cog = cognitions.list_(store, category="preference")[0]
    _, body, _ = fetch(ui.url(f"/memory/{cog.id}"))
    names = re.findall(r'class="source-link">([^<]+) · turn</a>', body)
    assert names and not any(n.startswith("session ") for n in names)


def test_a_blank_edit_keeps_the_typed_text_on_the_same_page(ui: UI) -> None:
    with Store(ui.db) as store:
        cog = cognitions.list_(store, category="lesson")[0]
    form = {"token": ui.token, "text": "   \n ", "category": "gotcha"}
    status, body, _ = fetch(ui.base + f"/memory/{cog.id}/edit", form, origin(ui))
    assert status == 400
    assert '<div class="flash bad">a memory needs some text; use Forget to remove it</div>' in body
    assert "<textarea id='e-text' name='text' required>   \n </textarea>" in body
    assert '<option value="gotcha" selected>' in body and f"<h1>Memory #{cog.id}</h1>" in body
    status, body, _ = fetch(ui.base + "/remember", {"token": ui.token, "text": " "}, origin(ui))
    assert status == 400 and "type what lmm should remember" in body
    assert (
        "<textarea id='r-text' name='text' required placeholder='e.g. Use uv, not pip.'> " in body
    )


def test_forget_asks_first_and_says_it_cannot_be_undone(ui: UI) -> None:
    with Store(ui.db) as store:
        cog = cognitions.remember(store, "Staging deploys need a ticket.", category="workflow")
    _, page, _ = fetch(ui.url(f"/memory/{cog}"))
    assert f'href="/memory/{cog}/forget?token=t0k3n">Forget this memory…</a>' in page
    status, body, _ = fetch(ui.url(f"/memory/{cog}/forget"))
    assert status == 200 and "This cannot be undone." in body
    assert f"<form method='post' action='/memory/{cog}/forget' class='row'>" in body
    with Store(ui.db) as store:  # asking changed nothing
        assert cognitions.get(store, cog).status == "active"  # type: ignore[union-attr]


def test_every_form_control_has_a_label(ui: UI) -> None:
    with Store(ui.db) as store:
        cog = cognitions.list_(store)[0]
    for path in ("/", "/memories", f"/memory/{cog.id}", "/recall", "/search?q=tests"):
        _, body, _ = fetch(ui.url(path.split("?")[0], **dict([path.split("?")[1].split("=")])
                                  if "?" in path else {}))  # fmt: skip
        controls = [c for c in re.findall(r"<(?:input|select|textarea)\b[^>]*>", body)
                    if "type='hidden'" not in c and 'type="hidden"' not in c]  # fmt: skip
        ids = {m.group(1) if (m := re.search(r"id='([^']+)'", c)) else c for c in controls}
        labelled = set(re.findall(r"<label for='([^']+)'", body))
        assert ids and ids <= labelled, (path, ids - labelled)
    _, body, _ = fetch(ui.url("/memories"))
    assert '<a href="/memories?token=t0k3n" class="on" aria-current="page">Memories</a>' in body


def test_markdown_and_edits_render_escaped() -> None:
    from lmm.ui.markup import edit_diff, render

    html = render("Run **this**:\n```sh\nmake <check>\n```\n- one `<b>`\n- [x](javascript:y)\n<i>")
    assert html == (
        "<div class='md'><div class='text'>Run <b>this</b>:</div>"
        "<pre><code>make &lt;check&gt;</code></pre>"
        "<ul><li>one <code>&lt;b&gt;</code></li>"
        "<li>x <span class='meta'>(javascript:y)</span></li></ul>"
        "<div class='text'>&lt;i&gt;</div></div>"
    )
    diff = edit_diff("Edit", json.dumps({"file_path": "a.py", "old_string": "x = 1\ny = <2>",
                                         "new_string": "x = 1\ny = 3"}))  # fmt: skip
    assert diff == (
        "<pre class='diff'><div class='hunk'>a.py</div><div class='hunk'>@@ -1,2 +1,2 @@</div>"
        "<div class=''> x = 1</div><div class='del'>-y = &lt;2&gt;</div>"
        "<div class='add'>+y = 3</div></pre>"
    )
    assert edit_diff("Edit", '{"file_path": "a.py"}') is None
    assert edit_diff("Bash", '{"command": "ls"}') is None


def test_injections_are_noted_rotated_and_shown_live(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from lmm.serve import hooks
    from lmm.ui.injected import recent

    monkeypatch.setenv("LMM_HOME", str(tmp_path))
    monkeypatch.setattr(hooks, "INJECTIONS_MAX", 2_000)
    hook = hooks.HookInput(*[None] * len(hooks.HookInput._fields))._replace(
        hook_event_name="UserPromptSubmit", session_id="s1", cwd="/p",
        prompt="use key sk-ant-api03-" + "A" * 95 + " and " + HOSTILE)  # fmt: skip
    from lmm.text.redact import redact

    for i in range(12):
        out = hooks.context_output("UserPromptSubmit", f"<lmm-memory>fact {i}</lmm-memory>")
        assert hooks.note_injection(hook, out, prompt=redact(hook.prompt)) is out
    path = tmp_path / hooks.INJECTIONS_NAME
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert b"sk-ant-api03-AAAA" not in path.read_bytes()  # the prompt as typed is never written
    assert path.with_name(path.name + ".1").exists() and path.stat().st_size <= 2_000 + 400
    shown = recent(tmp_path)
    assert [i.text for i in shown[:2]] == ["<lmm-memory>fact 11</lmm-memory>",
                                           "<lmm-memory>fact 10</lmm-memory>"]  # fmt: skip
    sample_store(tmp_path / "lmm.db")
    httpd, url = make_server(UIConfig(db=tmp_path / "lmm.db", token="tok"))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        base = url.split("/?")[0]
        _, body, _ = fetch(f"{base}/injected?token=tok")
        assert '<meta http-equiv="refresh" content="5">' in body
        assert "&lt;lmm-memory&gt;fact 11&lt;/lmm-memory&gt;" in body
        assert "sk-ant-api03-AAAA" not in body and "<script>" not in body
        _, body, _ = fetch(f"{base}/injected?token=tok&live=0")
        assert "http-equiv" not in body
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_the_recall_page_waits_for_the_embedder_loaded_in_the_background(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lmm.retrieve.embed import FakeEmbedder
    from lmm.ui import server

    sample_store(tmp_path / "lmm.db")
    started, release = threading.Event(), threading.Event()

    def load() -> FakeEmbedder:
        started.set()
        release.wait(10)
        return FakeEmbedder()

    made: list[object] = []

    def keep(config: UIConfig) -> tuple[object, str]:
        made.append(made_ := make_server(config))
        return made_

    monkeypatch.setattr(server, "make_server", keep)
    printed: list[str] = []
    config = UIConfig(db=tmp_path / "lmm.db", token="tok", load_embedder=load)
    thread = threading.Thread(target=server.serve, args=(config,),
                              kwargs={"ready": printed.append}, daemon=True)  # fmt: skip
    thread.start()
    try:
        assert started.wait(10) and printed  # the URL came before the embedder
        status, _, _ = fetch(printed[0])  # other pages do not wait for it
        assert status == 200
        release.set()
        _, body, _ = fetch(printed[0].replace("/?", "/recall?q=tests&"))
        assert "hybrid (keyword + fake-hash" in body
    finally:
        release.set()
        httpd = made[0][0]  # type: ignore[index]
        httpd.shutdown()
        thread.join(10)


def test_reports_fall_back_to_the_checkout_benchmarks(tmp_path: Path) -> None:
    from lmm.ui.reports import default_sources

    checkout = tmp_path / "checkout"
    (checkout / "docs").mkdir(parents=True)
    (checkout / "docs" / "benchmarks.md").write_text("# Numbers\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert default_sources(elsewhere, checkout).benchmarks == checkout / "docs/benchmarks.md"
    (elsewhere / "docs").mkdir()
    (elsewhere / "docs" / "benchmarks.md").write_text("# Mine\n")
    assert default_sources(elsewhere, checkout).benchmarks == elsewhere / "docs/benchmarks.md"


def test_search_finds_sessions_and_memories_within_a_project(ui: UI) -> None:
    with Store(ui.db) as store:
        pid = store.project_id("/home/dev/tidepool")
        sessions_ = {r[0] for r in store.db.execute(
            "SELECT DISTINCT session_id FROM turns WHERE text LIKE '%httpx%'")}  # fmt: skip
        memories_ = [
            c.id for c in cognitions.list_(store, status=None) if "httpx" in c.text.lower()
        ]
    _, body, _ = fetch(ui.url("/search", q="httpx", project=str(pid)))
    assert f"<h2>Sessions <span class='meta'>{len(sessions_)}</span></h2>" in body
    assert f"<h2>Memories <span class='meta'>{len(memories_)}</span></h2>" in body
    assert set(re.findall(r"/session/([0-9a-f-]{36})\?", body)) == sessions_
    _, body, _ = fetch(ui.url("/search", q="httpx", project="999"))  # no such project
    assert "<h2>Sessions <span class='meta'>0</span></h2>" in body
    assert "<h2>Memories <span class='meta'>0</span></h2>" in body


def test_starting_the_browser_imports_no_model_library() -> None:
    code = (
        "import sys, lmm.ui, lmm.ui.server, lmm.cli, lmm.cli.ui_cmds\n"
        "lmm.cli.build_parser()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('torch', 'transformers', 'sentence_transformers', 'onnxruntime', 'numpy')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(Path(__file__).parents[1] / "src")})  # fmt: skip
    assert out.stdout.strip() == "[]"


def test_forgetting_erases_the_record_of_recent_injections(tmp_path: Path) -> None:
    from lmm import paths
    from lmm.store import erase

    record = tmp_path / paths.INJECTIONS_NAME
    old = tmp_path / (paths.INJECTIONS_NAME + ".1")
    with Store(tmp_path / "lmm.db") as store:
        with store.transaction():
            cog = cognitions.remember(store, "The launch codename is HERON.")
        record.write_text('{"text": "The launch codename is HERON."}\n')
        old.write_text('{"text": "older"}\n')
        assert erase.forget(store, cog)
    assert not record.exists() and not old.exists()
