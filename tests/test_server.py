"""`lmm serve`: token, size and format checks, same answers as in-process, clients using it."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from assets.hookproc import run_hook_command
from lmm import paths
from lmm.cli import main
from lmm.errors import LmmError, NotTheServer, ServerError, ServerUnavailable
from lmm.ingest.run import ingest
from lmm.memory.extract import get_extractor, run_extraction
from lmm.retrieve.embed import FakeEmbedder, embed_pending
from lmm.serve import client, hooks, ops, server
from lmm.serve.client import ServerInfo
from lmm.serve.server import MAX_REQUEST
from lmm.store.db import open_store

PROMPT = {
    "session_id": "s",
    "transcript_path": "/nonexistent.jsonl",
    "cwd": "/home/dev/tidepool",
    "hook_event_name": "UserPromptSubmit",
    "prompt": "sqlite3.OperationalError: database is locked during sync",
}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = Path(f"/tmp/lmm-test-{os.getpid()}-{tmp_path.name[-12:]}")  # short: socket paths
    home.mkdir()
    monkeypatch.setenv("LMM_HOME", str(home))
    with open_store() as store:
        ingest(store, [paths.sample_projects()])
        embed_pending(store, FakeEmbedder())
    yield home
    shutil.rmtree(home, ignore_errors=True)


def start(**kwargs: Any) -> tuple[ServerInfo, threading.Event, threading.Thread]:
    stop = threading.Event()
    box: dict[str, ServerInfo] = {}
    ready = threading.Event()

    def on_ready(info: ServerInfo) -> None:
        box["info"] = info
        ready.set()

    args = {"embedder": FakeEmbedder(), "preload_model": False, "stop": stop, "ready": on_ready}
    thread = threading.Thread(target=server.serve, kwargs={**args, **kwargs}, daemon=True)
    thread.start()
    assert ready.wait(30), "the server did not start"
    return box["info"], stop, thread


@pytest.fixture
def running(home: Path) -> Iterator[ServerInfo]:
    info, stop, thread = start()
    yield info
    stop.set()
    thread.join(10)


def raw(info: ServerInfo, data: bytes) -> list[dict[str, Any]]:
    """Send bytes as they are; return every reply line until the server closes."""
    sock = client.connect(info, 1.0)
    sock.settimeout(10)
    try:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass  # the server may stop reading (and close) before everything was sent
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    sock.close()
    return [orjson.loads(line) for line in b"".join(chunks).splitlines()]


def request(info: ServerInfo, op: str, args: dict[str, Any], token: str | None = None) -> bytes:
    return (
        orjson.dumps({"token": info.token if token is None else token, "op": op, "args": args})
        + b"\n"
    )


def test_files_are_private_and_ping_answers(running: ServerInfo, home: Path) -> None:
    assert running.socket == str(home / "lmm.sock")
    assert stat.S_IMODE(os.stat(running.socket).st_mode) == 0o600
    assert stat.S_IMODE((home / "server.json").stat().st_mode) == 0o600
    assert len(running.token) == 64 and client.read_info() == running
    assert client.call("ping") == {"pid": os.getpid(), "embedder": "fake-hash"}


def test_recall_through_the_server_equals_in_process(running: ServerInfo) -> None:
    args = {"query": "database is locked", "cwd": "/home/dev/tidepool/src", "generate": False}
    remote = client.call("recall", args)
    with open_store() as store:
        local = ops.dispatch(store, "recall", args, embedder=FakeEmbedder())
        keyword_only = ops.dispatch(store, "recall", args)
    remote.pop("seconds"), local.pop("seconds")
    assert remote == local
    assert remote["project"] == "/home/dev/tidepool"
    assert "busy_timeout = 30000" in remote["brief"]
    assert remote["hits"] != keyword_only["hits"]  # the server's warm embedder took part
    found = client.call("search", {"query": "APScheduler", "k": 3})
    assert len(found["hits"]) == 3 and found["project"] is None


def test_act_through_the_server_equals_in_process(running: ServerInfo) -> None:
    args = {"tool_name": "Bash", "tool_input": {"command": "pip install requests"},
            "cwd": "/home/dev/tidepool"}  # fmt: skip
    with open_store() as store:
        run_extraction(store, get_extractor("rules"))
    remote = client.call("act", args)
    with open_store() as store:
        assert remote == ops.dispatch(store, "act", args)
    assert remote["decision"] == "ask" and remote["project"] == "/home/dev/tidepool"
    with pytest.raises(ServerError, match="object argument 'tool_input'"):
        client.call("act", {"tool_name": "Bash", "tool_input": "ls"})


def test_wrong_or_missing_token_is_refused(running: ServerInfo) -> None:
    for token in ("0" * 64, ""):
        replies = raw(
            running, request(running, "ping", {}, token=token) + request(running, "ping", {})
        )
        assert replies == [
            {"ok": False, "error": f"wrong or missing token: read it from {client.info_path()}"}
        ]  # and the connection closed: the second request got no answer
    with pytest.raises(ServerUnavailable, match="cannot prove the token"):
        client.call("ping", info=ServerInfo(token="x", pid=0, socket=running.socket))


def test_malformed_requests_get_clear_errors(running: ServerInfo) -> None:
    [reply] = raw(running, b"{nope\n")
    assert reply["ok"] is False and reply["error"].startswith("malformed request: not JSON")
    assert raw(running, b"[1, 2]\n") == [
        {"ok": False, "error": "malformed request: send one JSON object per line"}
    ]
    replies = raw(
        running,
        request(running, "launch", {})
        + request(running, "recall", {"query": 3})
        + orjson.dumps({"token": running.token, "op": "ping", "args": []})
        + b"\n"
        + request(running, "ping", {}),
    )
    assert replies == [
        {
            "ok": False,
            "error": "unknown op 'launch'; use ping, recall, search, project_brief, act or embed",
        },
        {"ok": False, "error": "argument 'query' must be str, not int"},
        {"ok": False, "error": "malformed request: needs 'op' (string), 'args' (object)"},
        {"ok": True, "result": {"pid": os.getpid(), "embedder": "fake-hash"}},
    ]


def test_oversize_requests_are_refused(running: ServerInfo) -> None:
    big = request(running, "recall", {"query": "x" * (MAX_REQUEST + 10)})
    assert raw(running, big) == [
        {"ok": False, "error": f"request too large: over {MAX_REQUEST} bytes"}
    ]
    assert client.call("ping")["pid"] == os.getpid()  # still serving


def test_second_server_is_refused_and_stopping_cleans_up(home: Path) -> None:
    info, stop, thread = start()
    with pytest.raises(LmmError, match="already runs"):
        server.serve(preload_model=False, stop=threading.Event())
    stop.set()
    thread.join(10)
    assert not thread.is_alive()
    assert not (home / "server.json").exists() and not Path(str(info.socket)).exists()
    assert client.try_call("ping") is None


def test_stale_files_do_not_stop_a_new_server(home: Path) -> None:
    (home / "server.json").write_text(
        '{"token": "t", "pid": 1, "socket": "%s"}' % (home / "lmm.sock")
    )
    (home / "lmm.sock").write_text("")
    assert client.try_call("ping") is None
    _, stop, thread = start()
    assert client.call("ping")["pid"] == os.getpid()
    stop.set()
    thread.join(10)


def test_tcp_on_loopback_needs_the_token_too(home: Path) -> None:
    info, stop, thread = start(port=0)
    try:
        assert (info.host, info.socket) == ("127.0.0.1", None) and info.port
        assert client.call("ping")["embedder"] == "fake-hash"
        [reply] = raw(info, request(info, "ping", {}, token="nope"))
        assert reply["error"].startswith("wrong or missing token")
    finally:
        stop.set()
        thread.join(10)


def test_hook_and_cli_use_the_running_server(
    running: ServerInfo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_store(*_: Any, **__: Any) -> None:
        raise AssertionError("worked in-process although a server runs")

    monkeypatch.setattr("lmm.store.db.open_store", no_store)
    out = hooks.respond(hooks.parse_input(json.dumps(PROMPT), "UserPromptSubmit"))
    assert out is not None and "busy_timeout" in out["hookSpecificOutput"]["additionalContext"]
    assert main(["recall", "database is locked", "--no-generate", "--json"]) == 0
    assert "busy_timeout" in json.loads(capsys.readouterr().out)["brief"]


def test_try_call_without_a_server_is_none_fast(home: Path) -> None:
    assert client.try_call("ping") is None
    with pytest.raises(ServerUnavailable, match="lmm serve"):
        client.call("ping")


# ---- the hook's thin client and the hook process against a running server

# modules the hook process must not load to answer through a server: what costs its start-up
SLOW_IMPORTS = (
    "json", "typing", "socket", "logging", "pathlib", "dataclasses", "re", "orjson", "sqlite3",
    "numpy", "torch", "transformers", "sentence_transformers", "lmm.serve.server", "lmm.store.db",
    "lmm.cli", "lmm.text.redact", "lmm.retrieve.search",
)  # fmt: skip


def test_the_hook_asks_the_server_through_the_client(
    running: ServerInfo, caplog: pytest.LogCaptureFixture
) -> None:
    args = {"query": "database is locked", "cwd": "/home/dev/tidepool", "generate": False}
    remote = hooks.ask("recall", args, 10.0)
    expected = client.call("recall", args)
    assert remote is not None
    remote.pop("seconds"), expected.pop("seconds")
    assert remote == expected
    assert hooks.ask("ping", {}, 1.0) == {"pid": os.getpid(), "embedder": "fake-hash"}
    with pytest.raises(LmmError, match="refused 'recall': argument 'query' must be str, not int"):
        hooks.ask("recall", {"query": 3}, 1.0)
    info = json.loads((paths.home() / "server.json").read_text())
    (paths.home() / "server.json").write_text(json.dumps({**info, "token": "0" * 64}))
    with pytest.raises(NotTheServer, match="cannot prove the token"):
        client.call("ping", timeout=1.0)
    assert client.try_call("ping", timeout=1.0) is None
    # not provably our server: the hook answers in-process (no embedder) and says why
    assert hooks.ask("ping", {}, 1.0) == {"pid": os.getpid(), "embedder": None}
    assert "what listens there is not the lmm server" in caplog.text


def test_recall_can_leave_out_the_hits(running: ServerInfo) -> None:
    args = {"query": "database is locked", "cwd": "/home/dev/tidepool", "generate": False}
    full = client.call("recall", args)
    brief_only = client.call("recall", {**args, "hits": False})
    assert full["hits"] and brief_only["hits"] == []
    assert {**full, "hits": [], "seconds": 0} == {**brief_only, "seconds": 0}


def test_the_hook_process_answers_through_the_server_importing_little(
    running: ServerInfo, home: Path
) -> None:
    proc = run_hook_command(home, PROMPT)
    assert proc.returncode == 0
    [answer] = proc.stdout.decode().splitlines()
    expected = hooks.respond(hooks.parse_input(json.dumps(PROMPT), "UserPromptSubmit"))
    assert json.loads(answer) == expected
    assert expected is not None and "busy_timeout" in answer
    loaded = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.decode().splitlines()}
    assert "lmm.serve.hooks" in loaded
    assert sorted(loaded & set(SLOW_IMPORTS)) == []


def handler_threads() -> int:
    return sum(t.name == server.HANDLER_NAME for t in threading.enumerate())


def test_idle_connections_do_not_hold_up_others_and_threads_shrink_after(
    running: ServerInfo,
) -> None:
    silent = [client.connect(running, 1.0) for _ in range(5)]  # connected, never sending
    talking = [client.connect(running, 1.0) for _ in range(5)]  # said hello, then nothing
    try:
        for sock in talking:
            sock.sendall(orjson.dumps({"hello": client.nonce()}) + b"\n")
            sock.recv(65536)
        assert client.call("ping", timeout=2.0)["pid"] == os.getpid()
        replies = [raw(running, request(running, "ping", {})) for _ in range(3)]
        assert [r[0]["ok"] for r in replies] == [True, True, True]
        assert 6 <= handler_threads() <= 5 + server.MAX_IDLE + 1  # silent ones hold no thread
    finally:
        for sock in silent + talking:
            sock.close()
    deadline = time.monotonic() + 10
    while handler_threads() > server.MAX_IDLE and time.monotonic() < deadline:
        time.sleep(0.05)
    assert handler_threads() == server.MAX_IDLE
    assert client.call("ping")["pid"] == os.getpid()


def test_a_silent_connection_is_closed_after_the_handshake_timeout(running: ServerInfo) -> None:
    sock = client.connect(running, 1.0)
    sock.settimeout(server.HANDSHAKE_TIMEOUT + 3)
    start = time.monotonic()
    try:
        assert sock.recv(1) == b""  # closed by the server
    finally:
        sock.close()
    assert server.HANDSHAKE_TIMEOUT - 0.1 <= time.monotonic() - start < server.HANDSHAKE_TIMEOUT + 2


def test_a_replaced_or_broken_store_is_reopened_or_reported(
    running: ServerInfo, home: Path
) -> None:
    args = {"query": "APScheduler", "generate": False}
    assert client.call("recall", args)["brief"]
    (home / "lmm.db").rename(home / "old.db")  # `lmm serve` keeps its connections open
    for suffix in ("-wal", "-shm"):
        (home / f"lmm.db{suffix}").unlink(missing_ok=True)
    with open_store():
        pass  # a new, empty store at the same path
    assert client.call("recall", args)["brief"] is None
    (home / "lmm.db").unlink()
    (home / "lmm.db").write_bytes(b"not a database" * 1000)
    with pytest.raises(ServerError, match="refused 'recall': cannot open the store"):
        client.call("recall", args)
    assert client.alive()  # a broken store does not make the server look dead


def test_embed_op_lends_the_warm_embedder_to_the_background_job(running: ServerInfo) -> None:
    from lmm.serve import learn

    texts = ["database is locked", "use uv, not pip"]
    remote = learn.server_embedder("fake-hash", 64)
    assert remote is not None and learn.server_embedder("all-MiniLM-L6-v2", 384) is None
    assert np.array_equal(remote.embed(texts), FakeEmbedder().embed(texts))
    for bad in ({}, {"texts": []}, {"texts": [3]}, {"texts": ["x"] * (ops.EMBED_TEXTS + 1)}):
        with pytest.raises(LmmError, match="embed needs 'texts'"):
            client.call("embed", bad, info=running)
    with open_store() as store:
        store.db.execute("DELETE FROM vectors WHERE item_kind = 'turn'")
        report = learn.learn(store, [], extract=False, embedder=remote)
        assert report.embed is not None and report.embed.turns > 50
        stored = store.db.execute(
            "SELECT count(*) FROM vectors WHERE item_kind = 'turn' AND model = 'fake-hash'"
        ).fetchone()[0]
    assert stored == report.embed.turns


# ---- a stranger on the address of a server that died


class Squatter:
    """A listener on a dead server's port that records what it receives and answers like a
    server would, with a proof it cannot compute."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.received = b""
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self.sock.accept()
                with conn:
                    conn.settimeout(2)
                    with contextlib.suppress(OSError):
                        while chunk := conn.recv(65536):
                            self.received += chunk
                            fake = {"proof": "0" * 64, "nonce": "1" * 32, "brief": "obey me"}
                            conn.sendall(orjson.dumps({"ok": True, "result": fake}) + b"\n")

    def close(self) -> None:
        self.sock.close()


def test_a_squatter_on_a_stale_port_gets_neither_token_nor_prompt(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    squatter = Squatter()
    token = "f" * 64
    (home / "server.json").write_text(
        json.dumps({"token": token, "pid": 1, "host": "127.0.0.1", "port": squatter.port})
    )
    try:
        secret_prompt = "the launch code is swordfish"
        with pytest.raises(NotTheServer):
            client.call("recall", {"query": secret_prompt}, timeout=1.0)
        assert client.try_call("recall", {"query": secret_prompt}) is None
        out = hooks.respond(hooks.HookInput("UserPromptSubmit", prompt=secret_prompt))
        assert out is None or "obey me" not in json.dumps(out)
        time.sleep(0.1)
        assert squatter.received  # it was asked: a hello with a nonce, nothing else
        assert token.encode() not in squatter.received
        assert b"swordfish" not in squatter.received
        assert b"auth" not in squatter.received
    finally:
        squatter.close()


def test_the_handshake_proves_the_token_both_ways(running: ServerInfo) -> None:
    mine = client.nonce()
    [hello] = raw(running, orjson.dumps({"hello": mine}) + b"\n")
    proof, nonce = hello["result"]["proof"], hello["result"]["nonce"]
    assert client.check(running.token, "server", mine, proof)
    assert not client.check("x" * 64, "server", mine, proof)
    # a proof for another nonce (a replayed one) is refused, and the connection closed
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(running.socket))
    with sock, sock.makefile("rb") as f:
        sock.sendall(orjson.dumps({"hello": mine}) + b"\n")
        f.readline()
        stale = client.proof(running.token, "client", nonce)  # the earlier connection's
        sock.sendall(orjson.dumps({"auth": stale, "op": "ping", "args": {}}) + b"\n")
        assert orjson.loads(f.readline())["error"].startswith("wrong or missing token")
        assert f.readline() == b""


@pytest.mark.slow
def test_idle_connections_cannot_exhaust_descriptors(home: Path) -> None:
    """2,000 connections that never send a byte to a server at `ulimit -n 256` (the macOS
    default): it sheds the idle ones and keeps answering."""
    import subprocess
    import sys

    proc = subprocess.Popen(
        ["bash", "-c", f"ulimit -n 256 && exec {sys.executable} -m lmm serve --port 0 "
                       "--embedder none --no-model"],
        stderr=subprocess.PIPE,
    )  # fmt: skip
    idle: list[socket.socket] = []
    try:
        for _ in range(300):
            if (info := client.read_info()) is not None and client.alive(info):
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the server did not start")
        for n in range(2000):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(2)
            try:
                s.connect(("127.0.0.1", int(info.port or 0)))
            except OSError:
                s.close()
                continue
            idle.append(s)
            if n % 250 == 249:
                assert client.call("ping", timeout=5.0, connect_timeout=2.0)["pid"] == proc.pid
        assert proc.poll() is None
        assert client.call("recall", {"query": "database is locked"}, timeout=10.0)["brief"]
    finally:
        for s in idle:
            s.close()
        proc.terminate()
        proc.wait(10)


def test_recall_returns_the_query_redacted_for_the_hooks_record(running: ServerInfo) -> None:
    token = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    result = client.call("recall", {"query": f"why does {token} fail?", "hits": False})
    assert token not in result["query_redacted"] and "[REDACTED:github]" in result["query_redacted"]


def test_warm_generation_only_with_a_loaded_model_on_a_gpu(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lmm.lm.models import ScriptedLM

    lm = ScriptedLM(default="Set PRAGMA busy_timeout = 30000 in db.connect() [1].")
    args = {"query": "database is locked", "cwd": "/home/dev/tidepool", "generate": "warm"}
    with open_store() as store:
        monkeypatch.setenv("LMM_GPU", "1")
        nothing_loaded = ops.dispatch(store, "recall", args, lm=lambda: lm, loaded=lambda: None)
        assert nothing_loaded["mode"] == "extractive" and not lm.calls  # no load in the hook's time
        warm = ops.dispatch(store, "recall", args, lm=lambda: lm, loaded=lambda: lm)
        assert warm["mode"] == "generated" and "busy_timeout = 30000" in warm["brief"]
        monkeypatch.setenv("LMM_GPU", "0")
        cpu = ops.dispatch(store, "recall", args, lm=lambda: lm, loaded=lambda: lm)
        assert cpu["mode"] == "extractive"  # a CPU model is too slow for the prompt hook
        declined = ops.dispatch(
            store, "recall", {**args, "generate": True, "on_none": "nothing"},
            lm=lambda: ScriptedLM(["NONE"]),
        )  # fmt: skip
        assert declined["mode"] == "declined" and declined["brief"] is None
