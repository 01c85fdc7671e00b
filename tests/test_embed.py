"""lmm.retrieve.embed: the fake embedder, incremental embedding, the model/dim guard, the matrix
cache, `lmm embed`, and (slow) the packaged MiniLM."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from builders import make_turn
from lmm.cli import main
from lmm.errors import LmmError
from lmm.records import SessionInfo
from lmm.retrieve import embed
from lmm.retrieve.embed import (
    FakeEmbedder,
    KeyRecipe,
    embed_pending,
    turn_key,
    turn_parts,
    vector_index,
)
from lmm.store.db import Store, open_store

WHEN = "2023-05-08T13:56:00.000Z"


@pytest.fixture
def chat_store(store: Store) -> Store:
    """Session s1 of /work/app: Mel asks, Caroline answers."""
    store.add_session(SessionInfo("s1", "generic", project="/work/app"))
    store.add_turns(
        [
            make_turn("s1", "a", "did you go to the support group?", speaker="Mel", timestamp=WHEN),
            make_turn("s1", "b", "yes, it was powerful", speaker="Caroline", timestamp=WHEN),
        ]
    )
    return store


def test_fake_embedder_is_deterministic_unit_and_word_sensitive() -> None:
    e = FakeEmbedder()
    v = e.embed(["support group meeting", "support group meeting", "garden tomatoes", ""])
    assert v.shape == (4, 64) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-6)
    assert np.array_equal(v[0], v[1])
    assert float(v[0] @ FakeEmbedder().embed(["support group"])[0]) > float(v[0] @ v[2])
    assert v[3].tolist() == [1.0] + [0.0] * 63  # empty text: a fixed unit vector


def test_turn_key_parts() -> None:
    row = {"text": "yes, it was powerful", "speaker": "Caroline", "role": "user",
           "timestamp": "2023-05-08T13:56:00.000Z"}  # fmt: skip
    prev = {"text": "did you go?", "speaker": "Mel", "role": "user"}
    assert turn_key(row, prev, KeyRecipe()) == "Caroline: yes, it was powerful"
    assert turn_key(row, prev, KeyRecipe(context=True)) == (
        "Caroline: yes, it was powerful\n(after Mel: did you go?)"
    )
    assert turn_key(row, prev, KeyRecipe(speaker=False, context=False, date=True)) == (
        "[8 May 2023] yes, it was powerful"
    )
    assert turn_key(row, None, KeyRecipe(context=True)) == "Caroline: yes, it was powerful"


def test_embed_pending_is_incremental(chat_store: Store) -> None:
    e = FakeEmbedder()
    first = embed_pending(chat_store, e)
    assert (first.turns, first.cognitions) == (2, 0)
    again = embed_pending(chat_store, e)
    assert (again.turns, again.cognitions) == (0, 0)
    chat_store.add_turns([make_turn("s1", "c", "we adopted a dog", speaker="Mel", timestamp=WHEN)])
    chat_store.db.execute(
        "INSERT INTO cognitions (uid, category, text, origin) "
        "VALUES ('u1', 'fact', 'Mel has a dog', 'rules')"
    )
    third = embed_pending(chat_store, e)
    assert (third.turns, third.cognitions) == (1, 1)
    rows = chat_store.db.execute(
        "SELECT item_kind, model, dim, length(vec) FROM vectors ORDER BY item_kind, item_id"
    ).fetchall()
    assert [tuple(r) for r in rows] == [("cognition", "fake-hash", 64, 256)] + [
        ("turn", "fake-hash", 64, 256)
    ] * 3 + [("turn_parts", "fake-hash", 64, 0)] * 3  # one sentence each: no parts
    # the stored key of turn b carries its speaker
    b = chat_store.db.execute("SELECT id FROM turns WHERE key = 'b'").fetchone()[0]
    vec = chat_store.db.execute("SELECT vec FROM vectors WHERE item_id = ? AND item_kind = 'turn'",
                                (b,)).fetchone()[0]  # fmt: skip
    expected = e.embed(["Caroline: yes, it was powerful"])
    assert np.frombuffer(vec, dtype="<f4").tolist() == expected[0].tolist()


def test_turn_parts_split_sentences_notes_and_long_turns() -> None:
    assert turn_parts("yes, it was powerful") == []
    assert turn_parts(
        "Thanks, Nate! It's a mix of drama and romance! [shares an image: a dvd]"
    ) == [
        "Thanks, Nate! It's a mix of drama and romance!",  # the short thanks joins the next
        "[shares an image: a dvd]",
    ]
    assert turn_parts("First point of the plan.\n\nsecond point, no full stop") == [
        "First point of the plan.",
        "second point, no full stop",
    ]
    long = " ".join(f"Sentence number {i} is here." for i in range(20))
    parts = turn_parts(long)
    assert len(parts) == 7  # 20 sentences in runs of 3 (at most MAX_PARTS = 8 runs)
    assert (
        parts[0]
        == "Sentence number 0 is here. Sentence number 1 is here. Sentence number 2 is here."
    )
    assert " ".join(parts) == long


def test_part_vectors_are_stored_per_turn_and_read_as_the_best(chat_store: Store) -> None:
    puppy = "We got a puppy last week. Her name is Biscuit!"
    chat_store.add_turns([make_turn("s1", "c", puppy, speaker="Mel", timestamp=WHEN)])
    e = FakeEmbedder()
    report = embed_pending(chat_store, e)
    assert report.parts == 2
    c = chat_store.db.execute("SELECT id FROM turns WHERE key = 'c'").fetchone()[0]
    blob = chat_store.db.execute(
        "SELECT vec FROM vectors WHERE item_kind = 'turn_parts' AND item_id = ?", (c,)
    ).fetchone()[0]
    keys = ["Mel: We got a puppy last week.", "Mel: Her name is Biscuit!"]
    expected = e.embed(keys)
    assert np.frombuffer(blob, "<f4").reshape(2, 64).tolist() == expected.tolist()
    (q,) = e.embed(["Biscuit"])
    best = embed.best_parts(chat_store, e.name, [c, 1, 999], q)  # 1 has no parts, 999 no turn
    assert best == pytest.approx({c: float(max(expected @ q))})
    assert embed_pending(chat_store, e).parts == 0  # every turn is done, single-part ones included


def test_dimension_mismatch_fails_loudly(chat_store: Store) -> None:
    embed_pending(chat_store, FakeEmbedder())
    with pytest.raises(
        LmmError, match=r"dim 64, but the model now gives dim 32.*lmm embed --model"
    ):
        embed_pending(chat_store, FakeEmbedder(dim=32))
    with pytest.raises(LmmError, match=r"no vectors for 'other'.*lmm embed --model other"):
        embed.check_model(chat_store, FakeEmbedder(name="other"))


def test_vector_index_groups_by_project_and_reloads_on_change(chat_store: Store) -> None:
    e = FakeEmbedder()
    embed_pending(chat_store, e)
    index = vector_index(chat_store, e.name, "turn")
    assert index.ids.tolist() == [1, 2]
    assert index.spans == {1: (0, 2)}
    assert vector_index(chat_store, e.name, "turn") is index  # cached
    chat_store.add_session(SessionInfo("s2", "generic", project="/work/other"))
    chat_store.add_turns([make_turn("s2", "x", "another project", timestamp=WHEN)])
    embed_pending(chat_store, e)
    fresh = vector_index(chat_store, e.name, "turn")
    assert fresh is not index
    assert fresh.spans == {1: (0, 2), 2: (2, 3)}


def test_cli_embed_then_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    monkeypatch.setenv("LMM_HOME", str(tmp_path))
    with open_store() as s:
        s.add_session(SessionInfo("s1", "generic", project="/p"))
        s.add_turns([make_turn("s1", "a", "hello there", timestamp=WHEN)])
    assert main(["embed", "--model", "fake-hash"]) == 0
    assert main(["embed", "--model", "fake-hash", "--json"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("embedded 1 turns and 0 cognitions with fake-hash in ")
    assert '"turns": 0' in "\n".join(out[1:])


@pytest.mark.slow  # imports torch
def test_unknown_model_folder_says_what_to_pass(tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers")
    with pytest.raises(LmmError, match="Pass a local model folder or one of: all-MiniLM-L6-v2"):
        embed.get_embedder(str(tmp_path / "no-such-model"))


@pytest.mark.slow
def test_packaged_minilm_embeds_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    e = embed.get_embedder()
    v = e.embed(["I went to a LGBTQ support group", "the support group was powerful", "tax law"])
    assert (e.name, e.dim, v.shape) == ("all-MiniLM-L6-v2", 384, (3, 384))
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-5)
    assert float(v[0] @ v[1]) > float(v[0] @ v[2])
