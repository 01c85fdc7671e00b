"""`lmm export` / `lmm import`: a lossless round trip, idempotent, all-or-nothing on bad input."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from lmm import paths
from lmm.errors import InputError
from lmm.exchange import export_jsonl, import_jsonl
from lmm.ingest import ingest
from lmm.store import Store


def _export(store: Store) -> bytes:
    buf = io.BytesIO()
    export_jsonl(store, buf)
    return buf.getvalue()


@pytest.fixture
def sample_store(tmp_path: Path) -> Store:
    store = Store(tmp_path / "a" / "lmm.db")
    ingest(store, [paths.sample_projects()])
    return store


def test_round_trip_is_lossless(sample_store: Store, tmp_path: Path) -> None:
    dumped = _export(sample_store)
    assert dumped.count(b"\n") > 100
    file = tmp_path / "memory.jsonl"
    file.write_bytes(dumped)

    other = Store(tmp_path / "b" / "lmm.db")
    counts = import_jsonl(other, file)
    assert counts["turns"] == sample_store.stats()["turns"]
    assert _export(other) == dumped  # byte-identical after the round trip
    assert other.search("locked")  # the FTS index was rebuilt through the triggers

    import_jsonl(other, file)  # importing twice changes nothing
    assert _export(other) == dumped


def test_bad_import_changes_nothing(sample_store: Store, tmp_path: Path) -> None:
    before = _export(sample_store)
    good = before.splitlines(keepends=True)
    file = tmp_path / "broken.jsonl"
    file.write_bytes(b"".join(good[:5]) + b"{not json\n" + b"".join(good[5:]))
    with pytest.raises(InputError, match=r"broken\.jsonl:6: not valid JSON"):
        import_jsonl(sample_store, file)
    assert _export(sample_store) == before

    file.write_bytes(b'{"type": "user", "message": {}}\n')
    with pytest.raises(InputError, match="not an lmm export"):
        import_jsonl(sample_store, file)
