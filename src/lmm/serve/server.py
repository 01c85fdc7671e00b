"""`lmm serve`: a long-lived local process that keeps the embedder and the LM warm."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from lmm import paths
from lmm.errors import LmmError
from lmm.serve import client, ops
from lmm.serve.client import ServerInfo

if TYPE_CHECKING:
    import numpy as np

    from lmm.lm.base import Message
    from lmm.retrieve.embed import Embedder
    from lmm.store.db import Store

log = logging.getLogger(__name__)

MAX_REQUEST = 1_000_000  # bytes of one request line
SOCKET_NAME = paths.SOCKET_NAME
IDLE_TIMEOUT = 60.0  # seconds an authenticated connection may sit without sending a request
HANDSHAKE_TIMEOUT = 2.0  # seconds a new connection may take to send its first line
MAX_THREADS = 16  # handler threads at most; more ready connections queue for them
MAX_IDLE = 2  # handler threads (each with its store open) kept waiting after a burst
HANDLER_NAME = "lmm-serve-handler"


# ---- the server


@dataclass
class Locked:
    """An embedder or generator shared by connection threads, one call at a time."""

    inner: Any
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def name(self) -> str:
        return str(self.inner.name)

    @property
    def dim(self) -> int:
        return int(self.inner.dim)

    def embed(self, texts: list[str]) -> np.ndarray:
        with self.lock:
            return self.inner.embed(texts)

    def generate(self, messages: list[Message], max_new_tokens: int = 256) -> str:
        with self.lock:
            return str(self.inner.generate(messages, max_new_tokens=max_new_tokens))


@dataclass
class Warm:
    """What the server keeps loaded between requests."""

    token: str
    store_path: Path
    embedder: Any = None  # Locked(Embedder) or None: keyword-only retrieval
    model: str | None = None  # generator spec; None: the default (models.DEFAULT_MODEL)
    lm: Any = None  # Locked(TextGenerator), loaded at start or on first generate
    lm_lock: threading.Lock = field(default_factory=threading.Lock)

    def generator(self) -> Any:
        with self.lm_lock:
            if self.lm is None:
                from lmm.lm.models import generator, warm_decoder

                lm = generator(self.model)
                warm_decoder(lm)  # on a GPU: compile and capture the decode step now, not later
                self.lm = Locked(lm)
            return self.lm

    def loaded(self) -> Any:
        """The generator if it is loaded already, else None (never loads one)."""
        return self.lm


@dataclass
class Peer:
    """One connection's handshake state: the nonce the server sent, and whether the client has
    proved the token (then later requests on the connection need no proof)."""

    nonce: str | None = None
    trusted: bool = False


def answer(
    warm: Warm, line: bytes, store: Callable[[], Store], peer: Peer | None = None
) -> tuple[dict[str, Any], bool]:
    """The reply to one request line, and whether the connection may stay open. `store()` gives
    the store (opened on first use); a ping never needs it, so a broken store cannot make a
    running server look dead. `peer` carries the connection's handshake (see
    `lmm.serve.client`)."""
    import hmac  # server side only: clients (hooks) skip its OpenSSL import

    peer = peer if peer is not None else Peer()
    try:
        request = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return {"ok": False, "error": f"malformed request: not JSON ({exc})"}, False
    if not isinstance(request, dict):
        return {"ok": False, "error": "malformed request: send one JSON object per line"}, False
    if "hello" in request and not peer.trusted:
        theirs = request["hello"]
        if not isinstance(theirs, str) or not 16 <= len(theirs) <= 128:
            return {"ok": False, "error": "malformed hello: send a nonce of 16-128 chars"}, False
        peer.nonce = client.nonce()
        result = {"proof": client.proof(warm.token, "server", theirs), "nonce": peer.nonce}
        return {"ok": True, "result": result}, True
    if not peer.trusted:
        if "auth" in request:
            peer.trusted = client.check(warm.token, "client", peer.nonce or "", request["auth"])
        else:
            token = str(request.get("token", "")).encode()
            peer.trusted = hmac.compare_digest(token, warm.token.encode())
    if not peer.trusted:
        error = f"wrong or missing token: read it from {client.info_path()}"
        return {"ok": False, "error": error}, False
    op, args = request.get("op"), request.get("args", {})
    if not isinstance(op, str) or not isinstance(args, dict):
        return {
            "ok": False,
            "error": "malformed request: needs 'op' (string), 'args' (object)",
        }, True
    try:
        if op == "ping":
            result = ops.ping(warm.embedder)
        else:
            result = ops.dispatch(
                store(), op, args, embedder=warm.embedder, lm=warm.generator, loaded=warm.loaded
            )
    except LmmError as exc:
        return {"ok": False, "error": str(exc)}, True
    except Exception as exc:  # one bad request must not take the server down
        log.exception("op %s failed", op)
        return {"ok": False, "error": f"internal error in {op}: {exc.__class__.__name__}"}, True
    return {"ok": True, "result": result}, True


def _connection(conn: socket.socket, warm: Warm, store: ThreadStore) -> None:
    peer = Peer()
    conn.settimeout(HANDSHAKE_TIMEOUT)  # until the client has proved the token
    try:
        with conn, conn.makefile("rb") as reader:
            while line := reader.readline(MAX_REQUEST + 1):
                if len(line) > MAX_REQUEST:
                    reply: dict[str, Any] = {
                        "ok": False,
                        "error": f"request too large: over {MAX_REQUEST} bytes",
                    }
                    conn.sendall(orjson.dumps(reply) + b"\n")
                    return
                if not line.strip():
                    continue
                reply, keep = answer(warm, line, store.get, peer)
                conn.sendall(orjson.dumps(reply, default=str) + b"\n")
                if not keep:
                    return
                if peer.trusted:
                    conn.settimeout(IDLE_TIMEOUT)
    except OSError as exc:
        log.debug("connection closed: %s", exc)


@dataclass
class ThreadStore:
    """A handler thread's own store (an SQLite connection stays in the thread that opened it),
    kept open across connections and reopened when the file at `path` was replaced."""

    path: Path
    store: Store | None = None
    file_id: tuple[int, int] | None = None  # (st_dev, st_ino) of the open file

    def get(self) -> Store:
        from lmm.store.db import Store

        if self.store is not None and self.file_id == _file_id(self.path):
            return self.store
        self.close()
        self.store = Store(self.path)
        self.file_id = _file_id(self.path)
        return self.store

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


@dataclass
class Handlers:
    """Long-lived threads serving accepted connections, one connection at a time each, each with
    its store open. A thread is started whenever every thread is busy, so a client that keeps its
    connection open never holds up another; past a burst, threads beyond `MAX_IDLE` idle ones exit
    (closing their stores: each holds an SQLite page cache of up to 2 MB)."""

    warm: Warm
    pending: deque[socket.socket] = field(default_factory=deque)
    idle: int = 0  # threads started and not serving a connection
    stopping: bool = False
    cond: threading.Condition = field(default_factory=threading.Condition)
    threads: set[threading.Thread] = field(default_factory=set)

    def submit(self, conn: socket.socket) -> None:
        with self.cond:
            self.pending.append(conn)
            if len(self.pending) > self.idle and len(self.threads) < MAX_THREADS:
                self.spawn()
            self.cond.notify()

    def spawn(self) -> None:
        with self.cond:
            self.idle += 1
            thread = threading.Thread(target=self._run, name=HANDLER_NAME, daemon=True)
            self.threads.add(thread)
            thread.start()

    def _run(self) -> None:
        store = ThreadStore(self.warm.store_path)
        with contextlib.suppress(LmmError):
            store.get()  # open it now, not during the first request
        try:
            while (conn := self._next()) is not None:
                try:
                    _connection(conn, self.warm, store)
                except Exception:  # keep the thread (and the idle count) right
                    log.exception("connection failed")
                if not self._stay():
                    return
        finally:
            store.close()
            with self.cond:
                self.threads.discard(threading.current_thread())

    def _next(self) -> socket.socket | None:
        """The next connection to serve, or None when this thread should exit."""
        with self.cond:
            while not self.pending and not self.stopping:
                self.cond.wait()
            if self.stopping:
                return None
            self.idle -= 1
            return self.pending.popleft()

    def _stay(self) -> bool:
        """After a connection: whether this thread waits for another (False: it exits)."""
        with self.cond:
            if self.idle >= MAX_IDLE:
                return False  # enough threads wait already (and one per pending connection)
            self.idle += 1
            return True

    def stop(self, timeout: float = 1.0) -> None:
        """Close unserved connections; idle threads exit (closing their stores) at once, busy
        ones after their connection (daemon threads: not waited for past `timeout`)."""
        with self.cond:
            self.stopping = True
            while self.pending:
                self.pending.popleft().close()
            self.cond.notify_all()
            threads = list(self.threads)
        end = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, end - time.monotonic()))


def max_waiting() -> int:
    """How many connections may wait for their first line: half the descriptors this process
    may open beyond a reserve for stores, logs and models (at `ulimit -n 256`: 96)."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft <= 0:
        soft = 4096
    return max(8, min(1024, (soft - 64) // 2))


@dataclass
class Waiting:
    """The accept loop: new connections wait here, on one selector and without a thread, until
    they send something (then a handler thread takes them) or `HANDSHAKE_TIMEOUT` passes (then
    they are closed). Past `limit` waiting connections the oldest is closed; when the process runs
    out of descriptors, waiting connections are shed instead of the server falling over."""

    listener: socket.socket
    handlers: Handlers
    limit: int = field(default_factory=max_waiting)
    since: dict[socket.socket, float] = field(default_factory=dict)  # insertion order: oldest first

    def __post_init__(self) -> None:
        import selectors

        self.listener.setblocking(False)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ)

    def step(self, timeout: float) -> None:
        """Wait up to `timeout` s; accept, hand over what is ready, expire what waited too long."""
        for key, _ in self.selector.select(timeout):
            if key.fileobj is self.listener:
                self._accept()
            else:
                conn = key.fileobj
                assert isinstance(conn, socket.socket)
                self._drop(conn, close=False)
                conn.setblocking(True)
                self.handlers.submit(conn)
        deadline = time.monotonic() - HANDSHAKE_TIMEOUT
        for conn in [c for c, t in self.since.items() if t < deadline]:
            self._drop(conn)

    def _accept(self) -> None:
        import selectors

        for _ in range(64):  # a burst at most per step: the timeouts still get their turn
            try:
                conn, _ = self.listener.accept()
            except BlockingIOError:
                return
            except OSError as exc:  # EMFILE / ENFILE: shed the oldest waiting connections
                log.warning("cannot accept a connection (%s); closing idle ones", exc)
                for old in list(self.since)[: max(1, len(self.since) // 4)]:
                    self._drop(old)
                if not self.since:
                    time.sleep(0.05)  # nothing to shed: let handler threads finish
                return
            if len(self.since) >= self.limit:
                self._drop(next(iter(self.since)))
            conn.setblocking(False)
            self.since[conn] = time.monotonic()
            self.selector.register(conn, selectors.EVENT_READ)

    def _drop(self, conn: socket.socket, close: bool = True) -> None:
        self.since.pop(conn, None)
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(conn)
        if close:
            conn.close()

    def close(self) -> None:
        for conn in list(self.since):
            self._drop(conn)
        self.selector.close()


def _listen(socket_path: Path | None, port: int | None) -> tuple[socket.socket, dict[str, Any]]:
    if port is not None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(64)
        return sock, {"host": "127.0.0.1", "port": sock.getsockname()[1]}
    path = socket_path or paths.home() / SOCKET_NAME
    if len(str(path).encode()) > 100:
        raise LmmError(f"the socket path {path} is too long for a Unix socket; pass --port PORT")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # stale: `serve` checked that no server answers on it
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)  # the socket is created 0600: no window where others may connect
    try:
        sock.bind(str(path))
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    sock.listen(64)
    return sock, {"socket": str(path)}


def _write_info(info: dict[str, Any]) -> None:
    target = Path(client.info_path())
    tmp = target.with_name(target.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(orjson.dumps(info))
    tmp.replace(target)


def serve(
    *,
    socket_path: Path | None = None,
    port: int | None = None,
    embedder: Embedder | None = None,
    model: str | None = None,
    preload_model: bool = True,
    stop: threading.Event | None = None,
    ready: Callable[[ServerInfo], None] | None = None,
) -> None:
    """Listen until `stop` is set (or SIGINT/SIGTERM): load the LM (unless not `preload_model`),
    warm retrieval, write `server.json`, answer requests in threads, clean up on exit."""
    import secrets
    import signal

    from lmm.store.db import open_store

    running = client.read_info()
    if running is not None and client.alive(running):
        raise LmmError(f"an lmm server already runs (pid {running.pid}); stop it first")
    stop = stop or threading.Event()
    with open_store() as store:
        warm = Warm(
            secrets.token_hex(32), store.path, Locked(embedder) if embedder else None, model
        )
        if preload_model:
            warm.generator()
        t0 = time.perf_counter()
        warm_up = {"query": "warm up", "generate": False}
        ops.dispatch(store, "recall", warm_up, embedder=warm.embedder)
        log.info("retrieval warmed in %.2f s", time.perf_counter() - t0)
    sock, address = _listen(socket_path, port)
    info = ServerInfo(token=warm.token, pid=os.getpid(), **address)
    _write_info({"token": info.token, "pid": info.pid, **address})
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    log.info("lmm server ready at %s (pid %d)", address, info.pid)
    if ready is not None:
        ready(info)
    handlers = Handlers(warm)
    handlers.spawn()  # one thread with its store open before the first request
    waiting = Waiting(sock, handlers)
    try:
        while not stop.is_set():
            waiting.step(0.2)
    finally:
        waiting.close()
        sock.close()
        handlers.stop()
        if client.read_info() == info:
            Path(client.info_path()).unlink(missing_ok=True)
        if info.socket:
            Path(info.socket).unlink(missing_ok=True)
        log.info("lmm server stopped")
