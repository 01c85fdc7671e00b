"""`lmm ui`: the memory browser, a small stdlib HTTP server over the store."""

from __future__ import annotations

import hmac
import logging
import re
import secrets
import threading
import webbrowser
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote, urlsplit

from lmm import paths
from lmm.errors import CognitionError, LmmError
from lmm.store.db import Store
from lmm.ui import injected, memories, reports, sessions
from lmm.ui import recall as recall_page
from lmm.ui import search as search_page
from lmm.ui.layout import ICON, SCRIPT, Links, esc, page

if TYPE_CHECKING:
    from lmm.retrieve.embed import Embedder

log = logging.getLogger(__name__)

HOST = "127.0.0.1"  # never 0.0.0.0: the store holds your whole history
MAX_BODY = 1_000_000  # bytes of a POST body
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; "
    "script-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class UIConfig:
    """What `lmm ui` serves."""

    db: Path | None = None  # the store file (default: $LMM_HOME/lmm.db)
    port: int = 0  # 0: any free port (--port)
    reports: reports.ReportSources = field(default_factory=reports.default_sources)
    embedder: Embedder | None = None  # for the recall page; None: keyword-only, like a bare hook
    # loads the embedder on a background thread once the server listens (the URL is printed at
    # once); the recall page waits for it. Used when `embedder` is None.
    load_embedder: Callable[[], Embedder | None] | None = None
    token: str = ""  # the URL token; empty: a fresh random one

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise LmmError(f"--port must be within 0..65535 (got {self.port})")


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    location: str | None = None


def _text(status: int, message: str) -> Response:
    return Response(status, message.encode() + b"\n", "text/plain; charset=utf-8")


_ID = r"(\d{1,18})"  # a row id: more digits than SQLite's 64-bit integers hold is no page


def _int(value: str | None) -> int | None:
    return int(value) if value and re.fullmatch(r"\d{1,18}", value, re.ASCII) else None


STATIC = {
    "/app.js": (SCRIPT.encode(), "text/javascript; charset=utf-8"),
    "/favicon.svg": (ICON.encode(), "image/svg+xml"),
    "/favicon.ico": (ICON.encode(), "image/svg+xml"),
}

FORBIDDEN = "403: this page needs the token of the URL that `lmm ui` printed; open that URL."


@dataclass
class App:
    """The request logic, apart from the socket: `handle` maps a request to a `Response`."""

    config: UIConfig
    token: str
    port: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)  # one recall at a time
    loaded: threading.Event = field(default_factory=threading.Event)
    embedder: Embedder | None = None

    def __post_init__(self) -> None:
        self.embedder = self.config.embedder
        if self.config.load_embedder is None:
            self.loaded.set()

    def load_embedder(self) -> None:
        """Load the configured embedder (run on a background thread by `serve`)."""
        try:
            if self.config.load_embedder is not None:
                self.embedder = self.config.load_embedder()
        except LmmError as exc:
            log.warning("recall stays keyword-only: %s", exc)
        finally:
            self.loaded.set()

    def home(self) -> Path:
        """The folder of the store: where the hooks note their injections."""
        return (self.config.db or paths.db_path()).parent

    def hosts(self) -> set[str]:
        return {f"127.0.0.1:{self.port}", f"localhost:{self.port}"}

    def same_origin(self, headers: Mapping[str, str]) -> bool:
        origins = {f"http://{h}" for h in self.hosts()}
        if origin := headers.get("origin"):
            return origin in origins
        referer = headers.get("referer") or ""
        return any(referer.startswith(o + "/") for o in origins)

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Response:
        """Answer one request; `headers` has lower-case names."""
        url = urlsplit(target)
        query = dict(parse_qsl(url.query))
        if headers.get("host") not in self.hosts():
            return _text(403, "403: unexpected Host header; use the 127.0.0.1 URL lmm ui printed.")
        if method == "GET" and url.path in STATIC:
            return Response(200, *STATIC[url.path])
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        token = (form.get("token") if method == "POST" else None) or query.get("token") or ""
        if not hmac.compare_digest(token.encode(), self.token.encode()):
            return _text(403, FORBIDDEN)
        if method == "POST" and not self.same_origin(headers):
            return _text(403, "403: a change must come from the lmm ui page itself.")
        links = Links(self.token)
        if method == "GET" and url.path == "/file":
            path = reports.allowed_file(self.config.reports, query.get("path", ""))
            if path is None:
                return _text(404, "404: no such report image.")
            return Response(200, path.read_bytes(), reports.IMAGE_TYPES[path.suffix.lower()])
        try:
            with Store(self.config.db or paths.db_path()) as store:
                if method == "POST":
                    return self.post(store, url.path, form, links)
                return self.get(store, url.path, query, links)
        except LmmError as exc:
            return Response(
                400, page("Error", f"<h1>Error</h1><p>{esc(exc)}</p>", links, "").encode()
            )

    def get(self, store: Store, path: str, query: dict[str, str], links: Links) -> Response:
        project = _int(query.get("project"))
        shown: tuple[str, str] | None
        if path == "/":
            shown = sessions.sessions_page(
                store, links, project, query.get("q", "")[:500], query.get("page", "")
            )
            active = "sessions"
        elif m := re.fullmatch(r"/session/([^/]+)", path):
            sid = unquote(m.group(1))
            shown, active = sessions.session_page(store, links, sid), "sessions"
        elif path == "/memories":
            wanted = memories.MemoryFilter.of(query, project)
            shown = memories.memories_page(store, links, wanted, query.get("page", ""))
            active = "memories"
        elif m := re.fullmatch(rf"/memory/{_ID}", path, re.ASCII):
            shown, active = memories.memory_page(store, links, int(m.group(1))), "memories"
        elif m := re.fullmatch(rf"/memory/{_ID}/forget", path, re.ASCII):
            shown, active = memories.forget_page(store, links, int(m.group(1))), "memories"
        elif path == "/search":
            found = search_page.search_page(store, links, query.get("q", "")[:500], project)
            shown, active = found, ""
        elif path == "/injected":
            live = query.get("live") != "0"
            title, html = injected.injected_page(links, live, self.home())
            body = page(title, html, links, "injected", refresh=injected.REFRESH if live else None)
            return Response(200, body.encode())
        elif path == "/recall":
            with self.lock:
                self.loaded.wait()
                shown = recall_page.recall_page(
                    store, links, query.get("q", ""), project, self.embedder
                )
            active = "recall"
        elif path == "/reports":
            chosen = query.get("folder", "")
            shown, active = reports.reports_page(self.config.reports, links, chosen), "reports"
        else:
            shown, active = None, ""
        if shown is None:
            body = "<h1>Not found</h1><p class='empty'>Nothing lives at this address.</p>"
            return Response(404, page("Not found", body, links, active).encode())
        title, html = shown
        return Response(200, page(title, html, links, active, query.get("msg")).encode())

    def post(self, store: Store, path: str, form: dict[str, str], links: Links) -> Response:
        if m := re.fullmatch(rf"/memory/{_ID}/(edit|forget|scope)", path, re.ASCII):
            cog_id = int(m.group(1))
            if m.group(2) == "edit":
                try:
                    shown, msg = memories.edit_action(store, cog_id, form)
                except CognitionError as exc:  # the same page again, the typed text kept
                    again = memories.memory_page(
                        store, links, cog_id, form.get("text", ""), form.get("category", "")
                    )
                    if again is None:
                        raise
                    html = page(again[0], again[1], links, "memories", str(exc), bad=True)
                    return Response(400, html.encode())
            elif m.group(2) == "scope":
                shown, msg = memories.scope_action(store, cog_id, form)
            else:
                shown, msg = memories.forget_action(store, cog_id)
        elif path == "/remember":
            try:
                shown, msg = memories.remember_action(store, form)
            except CognitionError as exc:
                title, html = memories.memories_page(
                    store, links, memories.MemoryFilter(), draft=form.get("text", "")
                )
                return Response(
                    400, page(title, html, links, "memories", str(exc), bad=True).encode()
                )
        else:
            return _text(404, "404: no such action.")
        return Response(303, b"", location=links.raw(f"/memory/{shown}", msg=msg))


class _Handler(BaseHTTPRequestHandler):
    app: App  # set on the subclass `make_server` builds
    server_version = "lmm-ui"
    protocol_version = "HTTP/1.0"

    def _send(self, r: Response) -> None:
        self.send_response(r.status)
        for name, value in HEADERS.items():
            self.send_header(name, value)
        self.send_header("Content-Type", r.content_type)
        self.send_header("Content-Length", str(len(r.body)))
        if r.location:
            self.send_header("Location", r.location)
        self.end_headers()
        self.wfile.write(r.body)

    def _headers(self) -> dict[str, str]:
        return {k.lower(): v for k, v in self.headers.items()}

    def do_GET(self) -> None:
        self._send(self.app.handle("GET", self.path, self._headers(), b""))

    def do_POST(self) -> None:
        raw = (self.headers.get("Content-Length") or "0").strip()
        if not raw.isascii() or not raw.isdigit():
            self._send(_text(400, "400: Content-Length is not a number."))
            return
        length = int(raw)
        if length > MAX_BODY:
            self._send(_text(413, "413: request body too large."))
            return
        self._send(self.app.handle("POST", self.path, self._headers(), self.rfile.read(length)))

    def log_message(self, format: str, *args: object) -> None:
        # the request line carries the token: log the path only
        log.info("%s %s", self.command, urlsplit(self.path).path)


def make_server(config: UIConfig) -> tuple[ThreadingHTTPServer, str]:
    """A server bound to 127.0.0.1 (not yet serving) and the URL to open, token included."""
    app = App(config, config.token or secrets.token_urlsafe(24))
    handler = type("UIHandler", (_Handler,), {"app": app})
    try:
        httpd = ThreadingHTTPServer((HOST, config.port), handler)
    except OSError as exc:
        raise LmmError(
            f"cannot listen on {HOST}:{config.port} ({exc.strerror}); pick another --port, "
            "or leave it out for a free one"
        ) from exc
    httpd.daemon_threads = True
    app.port = int(httpd.server_address[1])
    return httpd, f"http://{HOST}:{app.port}/?token={app.token}"


def serve(
    config: UIConfig, *, open_browser: bool = False, ready: Callable[[str], None] | None = None
) -> None:
    """Serve until interrupted. `ready` gets the URL once the socket listens."""
    httpd, url = make_server(config)
    app: App = httpd.RequestHandlerClass.app  # type: ignore[attr-defined]
    try:
        if ready is not None:
            ready(url)
        if config.load_embedder is not None:
            threading.Thread(target=app.load_embedder, name="lmm-ui-embedder", daemon=True).start()
        if open_browser:
            webbrowser.open(url)
        httpd.serve_forever()
    except KeyboardInterrupt:
        log.info("lmm ui stopped")
    finally:
        httpd.server_close()
