"""Mutual proof of the server token without sending it: what `lmm serve` and its clients say
before a request, so that a process squatting a stale `server.json` address learns nothing.

A client opens with `{"hello": N_c}`; the server answers `{"ok": true, "result": {"proof":
proof(token, "server", N_c), "nonce": N_s}}`; the client checks that proof and sends its request
with `"auth": proof(token, "client", N_s)` in place of the token. Neither side ever sends the
token, and each proof is bound to the other side's fresh nonce, so a recorded one is worthless.

HMAC-SHA256 on the builtin `_sha256` (`_sha2` from Python 3.12) and `_operator`'s constant-time
compare: importing `hmac`/`hashlib` loads OpenSSL, a cost every hook would pay.
"""

from __future__ import annotations

import os
from _operator import _compare_digest

try:
    from _sha256 import sha256  # Python 3.11
except ImportError:  # Python 3.12 moved it into _sha2
    from _sha2 import sha256

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
