"""lmm: a local memory layer for coding agents."""

__version__ = "0.1.0"

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing; mypy reads it as True
if TYPE_CHECKING:
    from lmm.errors import LmmError
    from lmm.ingest.run import ingest as ingest_transcripts
    from lmm.retrieve.recall import recall
    from lmm.store.cognitions import remember
    from lmm.store.db import open_store
    from lmm.store.erase import forget

__all__ = [
    "LmmError",
    "__version__",
    "forget",
    "ingest_transcripts",
    "open_store",
    "recall",
    "remember",
]

# public name -> (module, name there)
_LAZY = {
    "LmmError": ("lmm.errors", "LmmError"),
    "forget": ("lmm.store.erase", "forget"),
    "ingest_transcripts": ("lmm.ingest.run", "ingest"),
    "open_store": ("lmm.store.db", "open_store"),
    "recall": ("lmm.retrieve.recall", "recall"),
    "remember": ("lmm.store.cognitions", "remember"),
}


def __getattr__(name: str) -> object:
    """The public name `name`, imported now and kept (later lookups do not come here)."""
    if name not in _LAZY:
        raise AttributeError(f"module 'lmm' has no attribute {name!r}")
    import importlib

    module, attr = _LAZY[name]
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
