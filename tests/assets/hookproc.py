"""The installed hook command run as Claude Code runs it, under `-X importtime` (every module it
loads is listed on stderr)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any


def run_hook_command(home: Path, payload: dict[str, Any], event: str = "UserPromptSubmit") -> Any:
    """`python -X importtime -m lmm hook EVENT` with `payload` on stdin and LMM_HOME=home."""
    env = {**os.environ, "LMM_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "lmm", "hook", event],
        input=json.dumps(payload).encode(),
        capture_output=True,
        env=env,
        timeout=60,
    )
