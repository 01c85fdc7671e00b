"""The server handshake's HMAC-SHA256 on the builtin hash module (`_sha256`, `_sha2` on 3.12)."""

from __future__ import annotations

import hashlib
import hmac

from lmm.serve import client


def test_proof_is_hmac_sha256() -> None:
    for token in ("t" * 64, "k" * 100):  # a key longer than the block is hashed first
        want = hmac.new(token.encode(), b"lmm-server:abc", hashlib.sha256).hexdigest()
        assert client.proof(token, "server", "abc") == want
    good = client.proof("t" * 64, "client", "n1")
    assert client.check("t" * 64, "client", "n1", good)
    assert not client.check("t" * 64, "client", "n2", good)
