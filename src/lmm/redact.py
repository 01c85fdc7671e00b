"""Secrets out before anything is stored.

`redact(text)` replaces every secret it recognises with a `[REDACTED:<kind>]` marker and drops
user-marked `<private>...</private>` spans. The store calls it on every text it writes.
"""

from __future__ import annotations

import re

_PRIVATE = re.compile(r"<private>.*?(?:</private>|\Z)", re.S | re.I)
_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("anthropic", re.compile(r"sk-ant-[A-Za-z0-9_\-]{20,}")),
    ("openai", re.compile(r"sk-(?:proj-)?[A-Za-z0-9_\-]{20,}")),
    ("aws-access-key", re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b")),
    ("github", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b")),
]


def redact(text: str) -> str:
    """Return `text` with secrets replaced by `[REDACTED:<kind>]` markers."""
    if not text:
        return text
    text = _PRIVATE.sub("[PRIVATE]", text)
    for kind, pattern in _PATTERNS:
        text = pattern.sub(f"[REDACTED:{kind}]", text)
    return text
