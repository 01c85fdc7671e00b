"""Shared test setup: derived files (the ONNX build of the packaged embedder) go to a folder of
the test session, never to the user's ~/.cache/lmm."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True, scope="session")
def _session_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    before = os.environ.get("LMM_CACHE")
    os.environ["LMM_CACHE"] = str(tmp_path_factory.mktemp("lmm-cache"))
    yield
    if before is None:
        os.environ.pop("LMM_CACHE", None)
    else:
        os.environ["LMM_CACHE"] = before
