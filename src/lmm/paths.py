"""Where lmm keeps its store and where it looks for history."""

from __future__ import annotations

import os

from lmm import config

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing; mypy reads it as True
if TYPE_CHECKING:
    from pathlib import Path
    from typing import BinaryIO

DB_NAME = "lmm.db"
CONFIG_NAME = "config.toml"
SERVER_INFO = "server.json"  # where `lmm serve` listens and its token (serve/server.py)
SOCKET_NAME = "lmm.sock"  # the server's default Unix socket
INJECTIONS_NAME = "injections.jsonl"  # what the hooks injected lately (hooks.note_injection)


def home_dir() -> str:
    """The folder holding the store, as a string (no pathlib: the hook's fast path uses it)."""
    if env := config.settings().home:
        return os.path.expanduser(env)
    return config.default_home()


def home() -> Path:
    """The folder holding the store."""
    from pathlib import Path

    return Path(home_dir())


def db_path() -> Path:
    return home() / DB_NAME


def config_file() -> Path:
    """`$LMM_HOME/config.toml`: what config.Settings reads beside the environment."""
    return home() / CONFIG_NAME


def claude_projects() -> Path:
    """The default transcript source."""
    from pathlib import Path

    if env := config.settings().source:
        return Path(env).expanduser()
    return Path.home() / ".claude" / "projects"


def sample_projects() -> Path:
    """The embedded sample history the demo uses when there is no ~/.claude."""
    from pathlib import Path

    return Path(__file__).parent / "sample" / "projects"


def open_private(path: Path) -> BinaryIO:
    """`path` opened for writing (truncated), mode 0600 even if it existed: exports and training
    files hold the same text as the store, so they get the store's mode."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    if hasattr(os, "fchmod"):
        os.fchmod(fd, 0o600)
    return os.fdopen(fd, "wb")
