"""lmm's settings in one place: every `LMM_*` environment variable it reads and what
`$LMM_HOME/config.toml` holds, as one frozen `Settings` (how it is read: docs/architecture.md)."""

from __future__ import annotations

import os
import sys

FILE_FIELDS = {"privacy_exclude": "[privacy] exclude", "team_url": "[team] url"}  # field: where
# config.toml holds it; a field that also has a variable takes the variable when it is set
FILE_ONLY = ("privacy_exclude",)
TEAM_SCHEMES = ("postgresql://", "postgres://")  # what a team store's URL starts with


class Settings:
    """Every setting lmm reads; frozen. A hand-written class, not a dataclass: importing
    `dataclasses` would cost each hook process ~15 ms (serve/hooks.py)."""

    # where things live
    home: str | None = None  # LMM_HOME: the folder of the store, socket, logs; None: default_home()
    source: str | None = None  # LMM_SOURCE: the transcripts to learn from; None: ~/.claude/projects
    cache: str | None = None  # LMM_CACHE: derived files (the ONNX embedder); None: default_cache()
    # models
    model: str | None = None  # LMM_MODEL: the LM writing briefs and extracting; None: the caller's
    endpoint_model: str = "default"  # LMM_ENDPOINT_MODEL: the model an http(s) LMM_MODEL serves
    endpoint_key_env: str | None = None  # LMM_ENDPOINT_KEY_ENV: the variable holding its API key
    runtime: str = "auto"  # LMM_RUNTIME: auto, llama.cpp or transformers (checked on use)
    threads: str = ""  # LMM_THREADS: the LM's CPU threads, a whole number (parsed on use); "": auto
    gpu: bool | None = None  # LMM_GPU: 0 or 1 says whether a GPU is usable; None: detect it
    embed_backend: str = "auto"  # LMM_EMBED_BACKEND: auto, onnx, onnx-int8, torch (checked on use)
    digest: bool = True  # LMM_DIGEST: the background job's session digests; 0, false, no, off: none
    digest_model: str | None = None  # LMM_DIGEST_MODEL: their LM; None: digest.DEFAULT_MODEL
    # team memory
    team_url: str | None = None  # LMM_TEAM_URL, else [team] url: the team store (postgresql://...)
    # config.toml
    privacy_exclude: tuple[str, ...] = ()  # [privacy] exclude: projects never stored (paths, globs)

    def __init__(self, **values: object) -> None:
        for name, value in values.items():
            if name not in FIELDS:
                raise TypeError(f"Settings has no field {name!r}")
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Settings are frozen: cannot set {name!r}")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Settings) and all(
            getattr(self, name) == getattr(other, name) for name in FIELDS
        )

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, name) for name in FIELDS))

    def __repr__(self) -> str:
        return f"Settings({', '.join(f'{n}={getattr(self, n)!r}' for n in FIELDS)})"


FIELDS = tuple(Settings.__annotations__)


def settings(config_file: str | None = None) -> Settings:
    """The settings now: the environment's, over those of `config_file` when given (None: the
    file's fields keep their defaults). Raises LmmError when the file cannot be read."""
    get = os.environ.get
    from_file = _read_file(config_file) if config_file else {}
    from_env = dict(
        home=get("LMM_HOME") or None,
        source=get("LMM_SOURCE") or None,
        cache=get("LMM_CACHE") or None,
        model=get("LMM_MODEL") or None,
        endpoint_model=get("LMM_ENDPOINT_MODEL", "default"),
        endpoint_key_env=get("LMM_ENDPOINT_KEY_ENV") or None,
        runtime=get("LMM_RUNTIME") or "auto",
        threads=get("LMM_THREADS") or "",
        gpu={"0": False, "1": True}.get(get("LMM_GPU") or ""),
        embed_backend=get("LMM_EMBED_BACKEND", "auto").strip().lower() or "auto",
        digest=get("LMM_DIGEST", "1").strip().lower() not in ("0", "false", "no", "off"),
        digest_model=get("LMM_DIGEST_MODEL") or None,
        team_url=get("LMM_TEAM_URL") or from_file.get("team_url") or None,
    )
    return Settings(**{**from_file, **from_env})


def default_home() -> str:
    """Where the store lives without LMM_HOME: the platform's folder for user data."""
    user = os.path.expanduser("~")
    if sys.platform == "darwin":
        return os.path.join(user, "Library", "Application Support", "lmm")
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or os.path.join(user, "AppData", "Local")
        return os.path.join(base, "lmm")
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(user, ".local", "share")
    return os.path.join(base, "lmm")


def default_cache() -> str:
    """Where derived files go without LMM_CACHE: `$XDG_CACHE_HOME/lmm`, else ~/.cache/lmm."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "lmm")


def _read_file(config_file: str) -> dict[str, object]:
    """The settings `config_file` (TOML) holds; none when it does not exist."""
    import tomllib
    from pathlib import Path

    from lmm.errors import LmmError

    path = Path(config_file)
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise LmmError(f"cannot read {path}: {exc}; fix or remove it") from exc
    patterns = data.get("privacy", {}).get("exclude", [])
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        raise LmmError(f"{path}: [privacy] exclude must be a list of paths or glob patterns")
    url = data.get("team", {}).get("url")
    if url is not None and not (isinstance(url, str) and url.startswith(TEAM_SCHEMES)):
        raise LmmError(f"{path}: [team] url must be a postgresql://... address (got {url!r})")
    return {"privacy_exclude": tuple(patterns), **({"team_url": url} if url else {})}
