"""`lmm export` / `lmm import`: a lossless round trip, idempotent, all-or-nothing on bad input."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from lmm import paths
from lmm.errors import InputError
from lmm.ingest.run import ingest
from lmm.store.db import Store
from lmm.store.exchange import export_jsonl, import_jsonl


def _export(store: Store) -> bytes:
    buf = io.BytesIO()
    export_jsonl(store, buf)
    return buf.getvalue()


@pytest.fixture
def sample_store(tmp_path: Path) -> Store:
    from lmm.memory.extract import get_extractor, run_extraction
    from lmm.store.cognitions import edit

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
    from lmm.store.cognitions import remember

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


HEADER = b'{"format": "lmm-export", "version": 1}\n'
# (what the file holds after the header, what the error says)
BAD_FILES = [
    # a key is a column name in SQL: an INSERT...SELECT smuggled through it must not run
    (b'{"table": "projects", "path": "/p", "name": "p", "created_at) SELECT group_concat(text), '
     b'1, 2 FROM turns --": 1}\n', "unknown column"),
    (b'{"table": "cognitions", "uid": "x", "text": "t", "category": "fact", "origin": "user", '
     b'"keywords": "[]", "id) VALUES (1, 1); DROP TABLE turns; --": 1}\n', "unknown column"),
    (b'{"table": "turns; DROP TABLE turns", "x": 1}\n', "unknown table"),
    (b'{"table": "vectors", "item_id": 1}\n', "unknown table"),
    (b'{"table": "sessions", "id": "s", "source": "claude", "project_id": 1}\n', "unknown column"),
    (b'{"table": "projects", "path": ["/a"], "name": "a", "created_at": "x"}\n', "is a list"),
    (b'{"table": "projects", "path": {"a": 1}, "name": "a", "created_at": "x"}\n', "is a dict"),
    (b'{"table": "sources", "path": "/s", "format": "claude", "size": 18446744073709551615}\n',
     "out of range"),
    (b'{"table": "sessions", "id": "s", "source": "claude", "project": 5}\n', "not a path"),
    (b'{"table": "cognition_sources", "cognition_id": "u", "quote": {"$bytes": "zz"}}\n',
     "not hex bytes"),
    (b'{"table": "projects", "name": "no path"}\n', "cannot import this projects row"),
    (b'{"table": "turns", "session_id": "nope", "key": "k"}\n', "cannot import this turns row"),
    (b'[1, 2, 3]\n', "without a 'table'"),
    (b'{"table": 7}\n', "without a 'table'"),
    (b'{"table": "projects"' + b' ' * 64 + b'\n', "not valid JSON"),
    (b'\xff\xfe\x00garbage\n', "not valid JSON"),
    (b'[' * 100_000 + b'\n', "not valid JSON"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "message"), BAD_FILES)
def test_bad_rows_end_in_a_clear_error_and_change_nothing(
    sample_store: Store, tmp_path: Path, body: bytes, message: str
) -> None:
    before = _export(sample_store)
    file = tmp_path / "bad.jsonl"
    file.write_bytes(HEADER + body)
    with pytest.raises(InputError, match=rf"bad\.jsonl:2: .*{message}"):
        import_jsonl(sample_store, file)
    assert _export(sample_store) == before
    assert sample_store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        (b"", "not an lmm export"),
        (b"\x00" * 5000, "not an lmm export"),
        (b'{"format": "lmm-export", "version": "two"}\n', "version is not a number"),
        (b'{"format": "lmm-export", "version": 99}\n', "newer lmm"),
    ],
)
def test_bad_files_end_in_a_clear_error(
    sample_store: Store, tmp_path: Path, content: bytes | None, message: str
) -> None:
    file = tmp_path / "file.jsonl"
    if content is not None:
        file.write_bytes(content)
    with pytest.raises(InputError, match=message):
        import_jsonl(sample_store, file)
    with pytest.raises(InputError, match=r"not a regular file|cannot read"):
        import_jsonl(sample_store, tmp_path)


def test_a_huge_line_is_refused_without_reading_it_whole(
    sample_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lmm.store import exchange

    monkeypatch.setattr(exchange, "MAX_LINE", 1 << 20)
    file = tmp_path / "huge.jsonl"
    file.write_bytes(HEADER + b'{"table": "projects", "path": "' + b"a" * (3 << 20) + b'"}\n')
    with pytest.raises(InputError, match=r"huge\.jsonl:2: a line longer than 1 MiB"):
        import_jsonl(sample_store, file)


def test_a_failed_import_leaves_the_store_usable(sample_store: Store, tmp_path: Path) -> None:
    """Project ids handed out inside the rolled-back transaction are not reused afterwards."""
    from lmm.store.cognitions import get, remember

    file = tmp_path / "bad.jsonl"
    file.write_bytes(
        HEADER + b'{"table": "sessions", "id": "s9", "source": "claude", "project": "/new"}\n'
        b'{"table": "projects", "path": ["/a"]}\n'
    )
    with pytest.raises(InputError):
        import_jsonl(sample_store, file)
    cog = get(sample_store, remember(sample_store, "use tabs", project="/new"))
    assert cog is not None and cog.project == "/new"


def test_cli_import_prints_the_error_not_a_traceback(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    file = tmp_path / "bad.jsonl"
    file.write_bytes(HEADER + BAD_FILES[0][0])
    env = {**os.environ, "LMM_HOME": str(tmp_path / "home")}
    for target in (file, tmp_path / "missing.jsonl"):
        done = subprocess.run([sys.executable, "-m", "lmm", "import", str(target)], env=env,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 2 and done.stderr.startswith("lmm: error: ")
        assert "Traceback" not in done.stderr
