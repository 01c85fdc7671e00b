"""Per-project opt-out: a project that asks to be forgotten never reaches the store."""

from __future__ import annotations

import fnmatch
import functools
import logging
from pathlib import Path

from lmm import config, paths

log = logging.getLogger(__name__)

MARKER = ".lmm-ignore"


@functools.lru_cache(maxsize=1)
def _config_patterns(config_file: str) -> tuple[str, ...]:
    patterns = config.settings(config_file).privacy_exclude
    return tuple(str(Path(p).expanduser()).rstrip("/") for p in patterns)


@functools.lru_cache(maxsize=4096)
def _has_marker(folder: str) -> bool:
    here = Path(folder)
    for d in (here, *here.parents):
        try:
            if (d / MARKER).is_file():
                return True
        except OSError:
            return False
    return False


def excluded(project: str | None) -> bool:
    """True when `project` (a full folder path) has opted out of memory."""
    if not project:
        return False
    return _excluded(project, str(paths.config_file()))


@functools.lru_cache(maxsize=4096)
def _excluded(project: str, config: str) -> bool:
    project = project.rstrip("/") or "/"
    if _listed(project, _config_patterns(config)):
        return True
    return project.startswith("/") and _has_marker(project)


def _listed(folder: str, patterns: tuple[str, ...]) -> bool:
    """Whether `folder` is one of the config's paths or patterns, or below one."""
    return any(
        folder == p or fnmatch.fnmatch(folder, p) or folder.startswith(p + "/") for p in patterns
    )


def excluded_now(folder: str | None) -> bool:
    """`excluded`, without trusting earlier answers: for a long-lived process (`lmm serve`) and
    the hooks, so that a `.lmm-ignore` or config entry added a second ago already holds. Costs a
    stat per folder up to the root, and re-reads the config only when it changed."""
    if not folder:
        return False
    folder = folder.rstrip("/") or "/"
    try:
        mtime = paths.config_file().stat().st_mtime_ns
    except OSError:
        mtime = 0
    if _listed(folder, _fresh_patterns(str(paths.config_file()), mtime)):
        return True
    return folder.startswith("/") and _has_marker.__wrapped__(folder)


@functools.lru_cache(maxsize=2)
def _fresh_patterns(config: str, mtime_ns: int) -> tuple[str, ...]:
    return _config_patterns.__wrapped__(config)


def reset_cache() -> None:
    """Forget cached answers (tests, or a long-lived server after the config changed)."""
    _config_patterns.cache_clear()
    _has_marker.cache_clear()
    _excluded.cache_clear()
    _fresh_patterns.cache_clear()
