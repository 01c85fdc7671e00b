"""Shared test setup: derived files (the ONNX build of the packaged embedder) go to a folder of
the test session, never to the user's ~/.cache/lmm; the stores most tests start from."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from lmm import paths
from lmm.ingest.run import ingest
from lmm.memory.extract import get_extractor, run_extraction
from lmm.store.db import Store, open_store


@pytest.fixture(autouse=True, scope="session")
def _session_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    before = os.environ.get("LMM_CACHE")
    os.environ["LMM_CACHE"] = str(tmp_path_factory.mktemp("lmm-cache"))
    yield
    if before is None:
        os.environ.pop("LMM_CACHE", None)
    else:
        os.environ["LMM_CACHE"] = before


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A fresh, empty store in the test's folder."""
    with Store(tmp_path / "lmm.db") as s:
        yield s


@pytest.fixture
def sample_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    """The bundled sample ingested into the store of a fresh `$LMM_HOME` (tmp_path/home)."""
    monkeypatch.setenv("LMM_HOME", str(tmp_path / "home"))
    s = open_store()
    ingest(s, [paths.sample_projects()])
    return s


@pytest.fixture
def sample_memories(sample_store: Store) -> Store:
    """`sample_store` after the rule extractor has read it: the sample's memories."""
    run_extraction(sample_store, get_extractor("rules"))
    return sample_store
