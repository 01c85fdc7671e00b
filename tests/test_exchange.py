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
    from lmm.cognitions import edit
    from lmm.extract import get_extractor, run_extraction

    store = Store(tmp_path / "a" / "lmm.db")
    ingest(store, [paths.sample_projects()])
    run_extraction(store, get_extractor("rules"))
    first = store.db.execute("SELECT min(id) FROM cognitions WHERE status = 'active'").fetchone()[0]
    edit(store, first, "a corrected memory")  # a superseded row and its replacement travel too
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
    assert (
        counts["cognitions"]
        == sample_store.db.execute("SELECT count(*) FROM cognitions").fetchone()[0]
    )
    assert (
        other.db.execute(
            "SELECT count(*) FROM cognitions WHERE superseded_by IS NOT NULL"
        ).fetchone()[0]
        > 0
    )

    import_jsonl(other, file)  # importing twice changes nothing
    assert _export(other) == dumped


def test_import_into_a_store_with_its_own_memories(sample_store: Store, tmp_path: Path) -> None:
    from lmm.cognitions import remember

    file = tmp_path / "memory.jsonl"
    file.write_bytes(_export(sample_store))
    other = Store(tmp_path / "b" / "lmm.db")
    remember(other, "prefer tabs in Makefiles", project="/elsewhere")
    import_jsonl(other, file)
    texts = {r[0] for r in other.db.execute("SELECT text FROM cognitions")}
    assert "prefer tabs in Makefiles" in texts  # nothing already stored is lost
    mine = {r[0] for r in sample_store.db.execute("SELECT text FROM cognitions")}
    assert mine <= texts


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
