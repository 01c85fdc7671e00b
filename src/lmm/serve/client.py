"""The one client of `lmm serve`: find it through `$LMM_HOME/server.json`, connect, prove the token
both ways, send one request and read its reply; and the fallback every caller uses, the server's
answer when one runs, else the op computed in this process (`ask`)."""

from __future__ import annotations

import os
from _operator import _compare_digest

from lmm import paths
from lmm.errors import LmmError, NotTheServer, ServerError, ServerUnavailable

try:
    from _sha256 import sha256  # Python 3.11
except ImportError:  # Python 3.12 moved it into _sha2
    from _sha2 import sha256

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing; mypy reads it as True
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar

    T = TypeVar("T")

MAX_REPLY = 64_000_000  # bytes of one reply line
CONNECT_TIMEOUT = 0.05  # seconds: a running server accepts at once; anything slower is not ours


INFO_FIELDS = ("token", "pid", "socket", "host", "port")


class ServerInfo:
    """What `$LMM_HOME/server.json` says: where the server listens and its token. A plain class:
    a dataclass or namedtuple would cost every hook its import or its creation (~0.2 ms)."""

    __slots__ = INFO_FIELDS

    def __init__(
        self,
        token: str,
        pid: int,
        socket: str | None = None,
        host: str | None = None,
        port: int | None = None,
    ) -> None:
        self.token, self.pid, self.socket, self.host, self.port = token, pid, socket, host, port

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in INFO_FIELDS)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ServerInfo) and self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in INFO_FIELDS)
        return f"ServerInfo({fields})"


# ---- JSON through CPython's C codec: what json.loads/json.dumps call, without `import json`
# (it imports re and compiles six patterns: ~6 ms of every hook). Output is json.dumps' own.

_CONSTANTS = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


class _Decoding:
    """The options json.JSONDecoder() hands the C scanner: the defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__


try:
    import _json

    # typeshed types the scanner's context as the scanner itself (its own TODO: a duck type)
    _scan = _json.make_scanner(_Decoding)  # type: ignore[arg-type]
    C_JSON = True
except ImportError:  # not CPython: the json module does the same, a little later
    C_JSON = False


def loads(raw: bytes | str) -> Any:
    """`json.loads` for UTF-8 bytes or text; ValueError (UnicodeDecodeError) when not JSON."""
    text = raw.decode().removeprefix("\ufeff") if isinstance(raw, bytes) else raw
    if not C_JSON:
        import json

        return json.loads(text)
    text = text.strip(" \t\n\r")
    try:
        value, end = _scan(text, 0)
    except StopIteration as exc:
        raise ValueError(f"expecting a JSON value at char {exc.value}") from None
    if end != len(text):
        raise ValueError(f"extra data after char {end}")
    return value


def dumps(value: Any) -> str:
    """`json.dumps(value)`, byte for byte."""
    if not C_JSON:
        import json

        return json.dumps(value)
    encode = _json.make_encoder(
        {}, _not_json, _json.encode_basestring_ascii, None, ": ", ", ", False, False, True
    )
    return "".join(encode(value, 0))


def _not_json(value: Any) -> Any:
    raise TypeError(f"Object of type {value.__class__.__name__} is not JSON serializable")


# ---- the handshake

BLOCK = 64  # SHA-256 block size, bytes


def nonce() -> str:
    return os.urandom(16).hex()


def proof(token: str, side: str, peer_nonce: str) -> str:
    """HMAC-SHA256(token, f"lmm-{side}:{peer_nonce}") as hex; `side` is "server" or "client"."""
    key = token.encode()
    if len(key) > BLOCK:
        key = sha256(key).digest()
    key = key.ljust(BLOCK, b"\0")
    message = f"lmm-{side}:{peer_nonce}".encode()
    inner = sha256(bytes(b ^ 0x36 for b in key) + message).digest()
    return sha256(bytes(b ^ 0x5C for b in key) + inner).hexdigest()


def check(token: str, side: str, peer_nonce: str, claimed: object) -> bool:
    """Whether `claimed` is the `side`'s proof for `peer_nonce` (constant time)."""
    if not isinstance(claimed, str) or not peer_nonce:
        return False
    return bool(_compare_digest(proof(token, side, peer_nonce).encode(), claimed.encode()))


def reply_parts(reply: object) -> tuple[str, str] | None:
    """(proof, nonce) from the server's parsed answer to a hello, or None for anything else."""
    result = reply.get("result") if isinstance(reply, dict) else None
    if not isinstance(result, dict):
        return None
    proof, nonce = result.get("proof"), result.get("nonce")
    return (proof, nonce) if isinstance(proof, str) and isinstance(nonce, str) else None


# ---- talking to the server


def info_path() -> str:
    """`$LMM_HOME/server.json`, as a string (pathlib would cost the hook its import)."""
    return os.path.join(paths.home_dir(), paths.SERVER_INFO)


def read_info() -> ServerInfo | None:
    """What `server.json` says, or None when it is absent or not one that `lmm serve` wrote."""
    try:
        with open(info_path(), "rb") as f:
            info = ServerInfo(**loads(f.read()))
    except (OSError, ValueError, TypeError):  # absent, not JSON, not its fields
        return None
    return info if isinstance(info.token, str) else None


def connect(info: ServerInfo, timeout: float) -> Any:
    """A socket connected to the address in `info` (the C socket module: socket.py costs ~2 ms
    more); ServerUnavailable when nothing accepts within `timeout` seconds."""
    import _socket

    family = _socket.AF_UNIX if info.socket else _socket.AF_INET
    sock = _socket.socket(family, _socket.SOCK_STREAM)
    sock.settimeout(timeout)
    address: Any = info.socket
    try:
        address = address or (info.host or "127.0.0.1", int(info.port or 0))
        sock.connect(address)
    except (OSError, ValueError, TypeError, OverflowError) as exc:  # or a port that is none
        sock.close()
        raise ServerUnavailable(
            f"no lmm server at {address} ({exc}); start one: lmm serve"
        ) from exc
    return sock


def call(
    op: str,
    args: dict[str, Any] | None = None,
    *,
    timeout: float = 30.0,
    info: ServerInfo | None = None,
    connect_timeout: float = CONNECT_TIMEOUT,
) -> dict[str, Any]:
    """Send one request to the running server and return its result. `timeout` bounds each read
    and write after the connection is made (a hook passes what is left of its deadline).

    Raises ServerUnavailable when no server accepts the connection or what accepts it cannot
    prove the token, ServerError when the server refuses the request or does not answer."""
    info = info or read_info()
    if info is None:
        raise ServerUnavailable(f"no lmm server is running ({info_path()} is absent): lmm serve")
    sock = connect(info, connect_timeout)
    try:
        sock.settimeout(timeout)
        mine = nonce()
        sock.sendall(dumps({"hello": mine}).encode() + b"\n")
        theirs = _hello_reply(read_line(sock))
        if theirs is None or not check(info.token, "server", mine, theirs[0]):
            raise NotTheServer(
                f"the process at {info.socket or info.port} is not the lmm server that "
                f"wrote {info_path()} (it cannot prove the token); start one: lmm serve",
                info.socket or (info.host or "127.0.0.1", info.port),
            )  # a stranger on a dead server's port learns nothing but a nonce
        auth = proof(info.token, "client", theirs[1])
        sock.sendall(dumps({"auth": auth, "op": op, "args": args or {}}).encode() + b"\n")
        line = read_line(sock)
    except OSError as exc:  # timeouts included
        raise ServerError(
            f"the lmm server did not answer {op!r} in {timeout:.1f} s: {exc}"
        ) from exc
    finally:
        sock.close()
    return _result(op, line)


def _hello_reply(line: bytes) -> tuple[str, str] | None:
    """(proof, nonce) from the server's answer to a hello, or None for anything else."""
    try:
        return reply_parts(loads(line))
    except ValueError:
        return None


def read_line(sock: Any) -> bytes:
    """Bytes up to the first newline (the server sends one line per request), or to EOF."""
    chunks: list[bytes] = []
    size = 0
    while size <= MAX_REPLY:
        chunk = sock.recv(1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if b"\n" in chunk:
            break
    return b"".join(chunks).split(b"\n", 1)[0]


def _result(op: str, line: bytes) -> dict[str, Any]:
    """The result in a reply line; ServerError for a refusal or a line that is no reply."""
    try:
        reply = loads(line)
    except ValueError as exc:
        raise ServerError(f"the lmm server sent no valid reply to {op!r}: {line[:200]!r}") from exc
    result = reply.get("result") if isinstance(reply, dict) and reply.get("ok") else None
    if not isinstance(result, dict):
        error = reply.get("error") if isinstance(reply, dict) else reply
        raise ServerError(f"the lmm server refused {op!r}: {error}")
    return result


def try_call(
    op: str, args: dict[str, Any] | None = None, *, timeout: float = 30.0
) -> dict[str, Any] | None:
    """`call`, or None when no server is running (the caller then works in-process)."""
    try:
        return call(op, args, timeout=timeout)
    except ServerUnavailable as exc:
        _log_debug(exc)
        return None


def alive(info: ServerInfo | None = None) -> bool:
    """Whether a server answers a ping."""
    try:
        call("ping", info=info, timeout=1.0)
    except LmmError:
        return False
    return True


# ---- the fallback: the server if one runs, else this process


def ask(
    op: str,
    args: dict[str, Any],
    here: Callable[[], T] | None = None,
    *,
    timeout: float = 30.0,
    unavailable: Callable[[ServerUnavailable], None] | None = None,
) -> dict[str, Any] | T:
    """The op's result from the running server, else `here()` (default: `in_process(op, args)`).

    `unavailable(exc)` hears why no server answered (default: a debug log line; the hook logs to
    its own file). A refusal or a server that does not answer within `timeout` is no reason to
    work in-process: ServerError reaches the caller."""
    try:
        return call(op, args, timeout=timeout)
    except ServerUnavailable as exc:
        (unavailable or _log_debug)(exc)
    return here() if here is not None else in_process(op, args)


def in_process(op: str, args: dict[str, Any]) -> dict[str, Any]:
    """The op run in this process on the default store as the server would run it, but
    keyword-only (no embedder) and without a model."""
    from lmm.serve import ops
    from lmm.store.db import open_store

    with open_store() as store:
        return ops.dispatch(store, op, args)


def _log_debug(exc: Exception) -> None:
    import logging

    logging.getLogger(__name__).debug("%s", exc)
