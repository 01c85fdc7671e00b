"""`$LMM_HOME/hooks.log`: where the hooks, the background job and `lmm mcp` log, since their
stderr may reach the user. Imports nothing but lmm.paths until the log is set up (the hooks
import it)."""

from __future__ import annotations

from lmm import paths

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing; mypy reads it as True
if TYPE_CHECKING:
    from pathlib import Path

LOG_NAME = "hooks.log"


def log_file() -> Path:
    home = paths.home()
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    return home / LOG_NAME


def setup_file_log(level: int = 20) -> None:
    """Send lmm's log records to `$LMM_HOME/hooks.log` (1 MB, rotated once), and only there.
    `level` defaults to logging.INFO."""
    import logging
    import logging.handlers

    root = logging.getLogger("lmm")
    try:
        handler: logging.Handler = logging.handlers.RotatingFileHandler(
            log_file(), maxBytes=1_000_000, backupCount=1
        )
    except OSError:
        handler = logging.NullHandler()  # unwritable home: drop records rather than use stderr
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
    )
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False  # stderr stays quiet: Claude Code may show it to the user
