"""Where lmm keeps its store and where it looks for history.

`LMM_HOME` selects the folder holding the store (default: the user's data dir, `~/.local/share/lmm`
or `$XDG_DATA_HOME/lmm`). `LMM_SOURCE` overrides the default transcript folder
(`~/.claude/projects`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DB_NAME = "lmm.db"


def home() -> Path:
    """The folder holding the store."""
    if env := os.environ.get("LMM_HOME"):
        return Path(env).expanduser()
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "lmm"
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "lmm"
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "lmm"


def db_path() -> Path:
    return home() / DB_NAME


def claude_projects() -> Path:
    """The default transcript source."""
    if env := os.environ.get("LMM_SOURCE"):
        return Path(env).expanduser()
    return Path.home() / ".claude" / "projects"


def sample_projects() -> Path:
    """The embedded sample history the demo uses when there is no ~/.claude."""
    return Path(__file__).parent / "sample" / "projects"
