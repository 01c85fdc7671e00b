"""Bad input never crashes the readers or the ingest: property-based fuzzing of the transcript
parser and the importers, plus the hostile shapes named one by one."""

from __future__ import annotations

import json
import resource
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lmm.conversation import conversation_order, main_branch
from lmm.ingest.importers import read_generic
from lmm.ingest.run import ingest
from lmm.ingest.transcripts import TranscriptFile, TranscriptReader
from lmm.records import ParseIssue, Turn
from lmm.store.db import Store

FIELDS = ["type", "uuid", "parentUuid", "sessionId", "timestamp", "cwd", "gitBranch", "message",
          "isSidechain", "isMeta", "isCompactSummary", "toolUseResult", "agentId", "summary",
          "leafUuid", "version", "userType", "requestId"]  # fmt: skip
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=40)
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.sampled_from(
                [
                    *FIELDS,
                    "content",
                    "role",
                    "id",
                    "text",
                    "name",
                    "input",
                    "tool_use_id",
                    "is_error",
                ]
            ),
            inner,
            max_size=5,
        ),
    ),
    max_leaves=12,
)
records = st.dictionaries(st.sampled_from(FIELDS), values, max_size=10)
content_blocks = st.lists(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["text", "thinking", "tool_use", "tool_result", "image", "x"])},
        optional={
            "text": values,
            "thinking": values,
            "id": values,
            "name": values,
            "input": values,
            "content": values,
            "tool_use_id": values,
        },
    ),
    max_size=4,
)
plausible = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["user", "assistant", "system", "summary", "progress", "zzz"]),
        "uuid": st.sampled_from(["u1", "u2", "u3", "u4"]),
        "parentUuid": st.sampled_from([None, "u1", "u2", "u3", "u4", "gone"]),
        "sessionId": st.just("s"),
        "message": st.fixed_dictionaries(
            {"role": st.sampled_from(["user", "assistant"]), "content": content_blocks},
            optional={"id": st.sampled_from(["m1", "m2"])},
        ),
    },
    optional={"timestamp": values, "cwd": values, "isSidechain": values, "toolUseResult": values},
)


def _dumps(value: Any) -> bytes:
    return json.dumps(value).encode()  # stdlib: big integers too, which real files may hold


junk_lines = st.one_of(
    st.binary(max_size=200).map(lambda b: b.replace(b"\n", b" ")),
    records.map(_dumps),
    plausible.map(_dumps),
    plausible.map(lambda r: _dumps(r)[: len(_dumps(r)) // 2]),  # truncated
    values.map(_dumps),  # valid JSON, wrong top-level type
)
GOOD = {
    "type": "user",
    "uuid": "good-1",
    "parentUuid": None,
    "sessionId": "s",
    "timestamp": "2025-01-01T00:00:00Z",
    "cwd": "/p",
    "message": {"role": "user", "content": "the line that must survive"},
}


def _read(path: Path) -> list[Turn | ParseIssue]:
    items = list(TranscriptReader(TranscriptFile(path, "session", "s")))
    return [i for i in items if isinstance(i, Turn | ParseIssue)]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lines=st.lists(junk_lines, max_size=12), where=st.integers(min_value=0, max_value=12))
def test_parser_survives_any_lines_and_keeps_the_good_one(
    tmp_path: Path, lines: list[bytes], where: int
) -> None:
    lines.insert(min(where, len(lines)), orjson.dumps(GOOD))
    path = tmp_path / "s.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    items = _read(path)
    turns = [i for i in items if isinstance(i, Turn)]
    assert any("the line that must survive" in t.text for t in turns)
    for issue in (i for i in items if isinstance(i, ParseIssue)):
        assert issue.path == str(path) and issue.line_no >= 1 and issue.reason
    ordered = conversation_order(turns)  # cycles and dangling parents terminate
    assert sorted(id(t) for t in ordered) == sorted(id(t) for t in turns)
    main_branch(turns)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sessions=st.lists(st.one_of(values, st.lists(records, max_size=3)), max_size=4))
def test_generic_importer_never_crashes(tmp_path: Path, sessions: list[Any]) -> None:
    path = tmp_path / "chat.json"
    path.write_bytes(_dumps(sessions))
    from lmm.errors import InputError

    try:
        items = list(read_generic(path))
    except InputError as exc:  # a whole file of an unknown shape: one clear error
        assert "format" in str(exc).lower() or "json" in str(exc).lower()
        return
    assert all(i is not None for i in items)


def test_invalid_utf8_deep_nesting_and_cycles(tmp_path: Path) -> None:
    cycle_a = dict(GOOD, uuid="a", parentUuid="b", message={"role": "user", "content": "cycle a"})
    cycle_b = dict(GOOD, uuid="b", parentUuid="a", message={"role": "user", "content": "cycle b"})
    lines = [
        b'{"type": "user", "message": {"content": "\xff\xfe bad bytes"}, "uuid": "x1"}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"type": "user", "uuid": 5, "parentUuid": [], "message": "not a dict", "cwd": 7}',
        orjson.dumps(cycle_a),
        orjson.dumps(cycle_b),
        orjson.dumps(GOOD),
    ]
    path = tmp_path / "s.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    items = _read(path)
    issues = [i for i in items if isinstance(i, ParseIssue)]
    assert 2 in {i.line_no for i in issues}  # the deeply nested line is reported, not fatal
    texts = [t.text for t in conversation_order([i for i in items if isinstance(i, Turn)])]
    assert {"cycle a", "cycle b", "the line that must survive"} <= set(texts)


def test_a_50_mb_line_is_bounded(tmp_path: Path) -> None:
    huge = dict(GOOD, uuid="big", message={"role": "user", "content": "word " * 10_000_000})
    path = tmp_path / "proj" / "s.jsonl"
    path.parent.mkdir()
    path.write_bytes(orjson.dumps(huge) + b"\n" + orjson.dumps(GOOD) + b"\n")
    assert path.stat().st_size > 50_000_000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    store = Store(tmp_path / "lmm.db")
    report = ingest(store, [path], workers=0)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert report.turns_new == 2
    stored = store.db.execute("SELECT length(text) FROM turns WHERE key = 'big'").fetchone()[0]
    assert stored < 1_000_000  # a huge message is clipped before it is stored and indexed
    assert grown_mb < 600


@pytest.mark.parametrize("cut", [1, 10, 100])
def test_every_truncation_of_a_real_line_is_reported_not_fatal(tmp_path: Path, cut: int) -> None:
    line = json.dumps(dict(GOOD, uuid="t")).encode()
    path = tmp_path / "s.jsonl"
    path.write_bytes(line[:-cut] + b"\n" + orjson.dumps(GOOD) + b"\n")
    items = _read(path)
    assert [i.line_no for i in items if isinstance(i, ParseIssue)] == [1]
    assert [t.uuid for t in items if isinstance(t, Turn)] == ["good-1"]
