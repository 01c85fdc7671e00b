"""lmm.retrieve.search: scope, status, fusion, participants, neighbour context, the dim guard, and
(slow) recall on one real LoCoMo conversation against plain BM25."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from builders import make_turn
from lmm.errors import LmmError
from lmm.records import SessionInfo
from lmm.retrieve import search as search_module
from lmm.retrieve.embed import FakeEmbedder, embed_pending
from lmm.retrieve.rank import asks, fuse, replies, rrf
from lmm.retrieve.search import dense_query, or_match, participants, retrieve, scope_projects
from lmm.retrieve.search_config import SearchConfig
from lmm.store.db import Store

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TURNS = SearchConfig(kinds=("turn",))


def _add(
    store: Store, sid: str, project: str, texts: list[str], speakers: list[str] | None = None
) -> None:
    store.add_session(SessionInfo(sid, "generic", project=project))
    who: list[str | None] = list(speakers) if speakers else [None] * len(texts)
    turns = []
    for i, text in enumerate(texts):
        key = "k" * (i + 1)
        turns.append(make_turn(sid, key, text, speaker=who[i], uuid=f"{sid}:{key}",
                               timestamp=f"2025-01-0{i + 1}T10:00:00.000Z"))  # fmt: skip
    store.add_turns(turns)


@pytest.fixture
def projects_store(store: Store) -> Store:
    """One session each in /a/app, its subfolder /a/app/web and its sibling /a/app2."""
    _add(store, "root", "/a/app", ["we run the database migration with alembic"])
    _add(store, "web", "/a/app/web", ["the web database migration needs a lock"])
    _add(store, "sib", "/a/app2", ["app2 database migration is manual"])
    return store


def _texts(hits: list) -> list[str]:
    return [h.text for h in hits]


# ---- query


def test_or_match_drops_stopwords_and_quotes() -> None:
    assert or_match('When did "Caroline" go to the AND group?') == (
        '"caroline" OR "go" OR "group"'  # "and" is a stopword, so FTS syntax cannot leak
    )
    assert or_match("When did Caroline go?", ["caroline"]) == 'speaker : "caroline" OR "go"'
    assert or_match("the and of") == ""


def test_dense_query_hides_participant_names() -> None:
    assert dense_query("When did Caroline's dog and caroline meet Mel?", ["caroline"]) == (
        "When did someone dog and someone meet Mel?"
    )


# ---- scope


def test_project_scope_covers_subfolders_never_siblings(projects_store: Store) -> None:
    assert scope_projects(projects_store, "/a/app") == [1, 2]
    assert scope_projects(projects_store, "/a/app/") == [1, 2]
    assert scope_projects(projects_store, "/a/app/web") == [2]
    assert scope_projects(projects_store, "/a/ap") == []
    hits = retrieve(projects_store, "database migration", project="/a/app", config=TURNS)
    assert sorted(_texts(hits)) == [
        "the web database migration needs a lock",
        "we run the database migration with alembic",
    ]
    assert retrieve(projects_store, "database migration", project="/a/ap", config=TURNS) == []
    everywhere = retrieve(projects_store, "database migration", config=TURNS)
    assert len(everywhere) == 3


def test_project_scope_with_dense(projects_store: Store) -> None:
    e = FakeEmbedder()
    embed_pending(projects_store, e)
    hits = retrieve(projects_store, "migration", project="/a/app2", embedder=e, config=TURNS)
    assert _texts(hits) == ["app2 database migration is manual"]
    assert set(hits[0].signals) == {"bm25", "dense"}
    assert hits[0].source.project == "/a/app2"
    assert hits[0].source.session_id == "sib"


def test_cosines_on_the_worker_thread_give_the_same_hits(
    projects_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lmm.retrieve.search as search

    e = FakeEmbedder()
    embed_pending(projects_store, e)
    queries = ["database migration", "manual migration", "nothing here at all"]
    inline = [retrieve(projects_store, q, embedder=e) for q in queries]
    monkeypatch.setattr(search, "PARALLEL_ROWS", 0)  # every scope takes the worker thread
    submitted: list[object] = []
    real = search._worker

    def counting() -> object:
        submitted.append(1)
        return real()

    monkeypatch.setattr(search, "_worker", counting)
    threaded = [retrieve(projects_store, q, embedder=e) for q in queries]
    assert submitted  # the threaded path really ran
    assert [[(h.kind, h.id, h.score) for h in hs] for hs in threaded] == [
        [(h.kind, h.id, h.score) for h in hs] for hs in inline
    ]


def test_only_active_cognitions_are_retrieved(projects_store: Store) -> None:
    projects_store.db.executemany(
        "INSERT INTO cognitions (uid, project_id, category, text, origin, status) "
        "VALUES (?, 1, 'decision', ?, 'rules', ?)",
        [
            ("u1", "use alembic for every migration", "active"),
            ("u2", "write migration SQL by hand", "superseded"),
            ("u3", "never run a migration on Friday", "forgotten"),
        ],
    )
    e = FakeEmbedder()
    embed_pending(projects_store, e)
    for embedder in (None, e):
        hits = retrieve(projects_store, "migration", project="/a/app", embedder=embedder)
        cogs = [(h.kind, h.text, h.category) for h in hits if h.kind == "cognition"]
        assert cogs == [("cognition", "use alembic for every migration", "decision")]


# ---- fusion


def test_rrf_hand_computed() -> None:
    fused = rrf([["a", "b", "c"], ["c", "a"]], k=60)
    assert fused == pytest.approx({"a": 1 / 61 + 1 / 62, "b": 1 / 62, "c": 1 / 63 + 1 / 61})
    assert sorted(fused, key=lambda i: -fused[i]) == ["a", "c", "b"]
    weighted = rrf([["a", "b"], ["b"]], [1.0, 2.0], k=1)
    assert weighted == pytest.approx({"a": 1 / 2, "b": 1 / 3 + 2 / 2})


def test_fuse_weighted_z_scores_hand_computed() -> None:
    # list 1 with its phantom 0: a=3, b=0, 0 -> mean 1, sd sqrt(2) -> z a=2/sqrt2, b=-1/sqrt2;
    # list 2: b=6, c=3, 0 -> mean 3, sd sqrt(6) -> z b=3/sqrt6, c=0, floor (phantom) -3/sqrt6
    fused = fuse([{"a": 3.0, "b": 0.0}, {"b": 6.0, "c": 3.0}], [1.0, 0.5])
    r2, r6 = 2**0.5, 6**0.5
    assert fused == pytest.approx(
        {"a": 2 / r2 - 0.5 * 3 / r6, "b": -1 / r2 + 0.5 * 3 / r6, "c": -1 / r2 + 0.0}
    )
    # a lone match stands one sd above the rest; an extra item is scored with its list's mean
    # and sd and does not move them
    assert fuse([{"a": 5.0}], [1.0], [{"d": 10.0}]) == pytest.approx({"a": 1.0, "d": 3.0})


def test_fuse_rank_term_adds_each_lists_reciprocal_rank_but_not_for_extras() -> None:
    lists = [{"a": 3.0, "b": 0.0}, {"b": 6.0, "c": 3.0}]
    z = fuse(lists, [1.0, 0.5])
    fused = fuse(lists, [1.0, 0.5], [{}, {"x": 1.0}], ["y"], rank_weight=10.0, rank_k=2.0)
    # list 1 ranks a, b; list 2 ranks b, c; x (an extra) and y (an item) get no rank term
    assert fused["a"] == pytest.approx(z["a"] + 10 * 1.0 / 3)
    assert fused["b"] == pytest.approx(z["b"] + 10 * 1.0 / 4 + 10 * 0.5 / 3)
    assert fused["c"] == pytest.approx(z["c"] + 10 * 0.5 / 4)
    assert set(fused) == {"a", "b", "c", "x", "y"}
    plain = fuse(lists, [1.0, 0.5], [{}, {"x": 1.0}], ["y"])
    assert fused["x"] == pytest.approx(plain["x"]) and fused["y"] == pytest.approx(plain["y"])


def test_retrieve_rrf_ordering_hand_computed(tmp_path: Path) -> None:
    s = Store(tmp_path / "lmm.db")
    _add(s, "s", "/p", ["alpha beta", "alpha", "beta gamma"])
    cfg = replace(TURNS, fusion="rrf", rrf_k=60.0, window=0, session=0.0, recency=0.0)
    e = FakeEmbedder()
    embed_pending(s, e)
    hits = retrieve(s, "alpha beta", embedder=e, config=cfg)
    for h in hits:
        expected = sum(1 / (60 + sig["rank"]) * 0.5 for sig in h.signals.values())
        assert h.score == pytest.approx(expected)
    assert hits[0].text == "alpha beta"  # first in both lists: 0.5/61 + 0.5/61


# ---- participants and neighbour context


@pytest.fixture
def chat(store: Store) -> Store:
    """Mel and Caroline talking in /chat/one; Jon alone in /chat/two."""
    texts = [
        "Caroline, did you get to the support group?",
        "I did, it was so powerful",
        "My kids painted a sunrise today",
        "Lovely! We should paint together",
    ]
    _add(store, "c1", "/chat/one", texts, ["Mel", "Caroline", "Mel", "Caroline"])
    _add(store, "c2", "/chat/two", ["Mel was not here"], ["Jon"])
    return store


def test_participants_are_speakers_in_scope(chat: Store) -> None:
    one, two = scope_projects(chat, "/chat/one"), scope_projects(chat, "/chat/two")
    assert participants(chat, "When did Caroline and Mel paint?", one) == ["caroline", "mel"]
    assert participants(chat, "When did Caroline and Mel paint?", two) == []
    assert participants(chat, "what did the User say", None) == []  # roles are not names


def test_speaker_names_match_who_spoke_not_who_was_addressed(tmp_path: Path) -> None:
    s = Store(tmp_path / "lmm.db")
    texts = ["Caroline, your painting is lovely", "Thanks, I painted it last week"]
    _add(s, "c", "/chat", texts, ["Mel", "Caroline"])
    cfg = replace(TURNS, window=0, session=0.0)
    hits = retrieve(s, "What did Caroline paint?", config=cfg)
    assert _texts(hits) == ["Thanks, I painted it last week", "Caroline, your painting is lovely"]
    plain = retrieve(s, "What did Caroline paint?",
                     config=replace(cfg, keys=False, participants=False))  # fmt: skip
    assert _texts(plain) == ["Caroline, your painting is lovely", "Thanks, I painted it last week"]


def test_an_answer_inherits_from_the_question_before_it(chat: Store) -> None:
    on = replace(TURNS, keys=False, participants=False, session=0.0)
    hits = retrieve(chat, "support group", project="/chat/one", config=on)
    assert _texts(hits)[:2] == [
        "Caroline, did you get to the support group?",
        "I did, it was so powerful",
    ]
    assert hits[1].signals == {}  # found through its neighbour alone
    alone = replace(on, window=0, reply_share=0.0, ask_keep=1.0)
    off = retrieve(chat, "support group", project="/chat/one", config=alone)
    assert _texts(off) == ["Caroline, did you get to the support group?"]


def test_an_asking_turn_hands_part_of_its_score_to_the_reply(chat: Store) -> None:
    # BM25 finds the question alone: z = 1 against the phantom 0 (mean s/2, sd s/2) and the
    # floor -1 for the reply, x keyword weight 0.5; then the reply gains 0.3 x 0.5 and the
    # question keeps 0.7 x 0.5 (z fusion alone: no rank term)
    cfg = replace(TURNS, keys=False, participants=False, window=0, session=0.0, recency=0.0,
                  rank_weight=0.0)  # fmt: skip
    hits = retrieve(chat, "support group", project="/chat/one", config=cfg)
    assert [(h.text, round(h.score, 6)) for h in hits] == [
        ("Caroline, did you get to the support group?", 0.35),
        ("I did, it was so powerful", -0.35),
    ]
    plain = retrieve(chat, "support group", project="/chat/one",
                     config=replace(cfg, reply_share=0.0, ask_keep=1.0))  # fmt: skip
    assert [(h.text, h.score) for h in plain] == [
        ("Caroline, did you get to the support group?", 0.5)
    ]


def test_asks_reads_the_last_sentence_before_a_trailing_note() -> None:
    assert asks("Cool! What did you paint?")
    assert asks("Did you see it? [shares an image: a photo of a cat]")
    assert not asks("What? No, I did not.")
    assert not asks("See the notes [1]")
    assert not asks("")


def test_replies_stay_within_the_session(tmp_path: Path) -> None:
    s = Store(tmp_path / "lmm.db")
    _add(s, "a", "/p", ["Ready?", "Yes.", "Shall we go?"])
    _add(s, "b", "/p", ["Next session?"])
    ids = [r[0] for r in s.db.execute("SELECT id FROM turns ORDER BY id")]
    assert replies(s, ids) == {ids[0]: ids[1], ids[2]: None, ids[3]: None}


def test_a_turn_scores_its_best_sentence_in_dense_search(tmp_path: Path) -> None:
    s = Store(tmp_path / "lmm.db")
    long = ("We went shopping for groceries and bread today. The weather was awful and rainy "
            "all day. My violin lesson moved to Friday.")  # fmt: skip
    _add(s, "s", "/p", [long, "garden tomatoes are ripe"])
    e = FakeEmbedder()
    embed_pending(s, e)
    cfg = replace(TURNS, keyword=False, window=0, session=0.0, recency=0.0)
    (q,) = e.embed(["violin lesson"])
    whole = float(q @ e.embed([f"user: {long}"])[0])
    best = float(q @ e.embed(["user: My violin lesson moved to Friday."])[0])
    assert best > whole
    hit = retrieve(s, "violin lesson", embedder=e, config=cfg)[0]
    assert hit.text == long
    assert hit.signals["dense"]["score"] == pytest.approx(best)
    off = retrieve(s, "violin lesson", embedder=e, config=replace(cfg, parts=False))[0]
    assert off.signals["dense"]["score"] == pytest.approx(whole)


def test_rare_terms_keep_the_rarest_within_a_postings_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = Store(tmp_path / "lmm.db")
    texts = [f"the build runs tests number {i}" for i in range(9)] + ["flaky build on Mondays"]
    _add(s, "s", "/p", texts)
    rare = search_module.rare_terms
    terms = ["builds", "running", "flaky", "tests"]  # stems in 10, 9, 1 and 9 rows
    assert rare(s, "turn_keys", terms, 10) == terms  # a table within the budget: all stay
    assert rare(s, "turn_keys", terms, 9) == ["flaky"]  # 1 + 9 > 9
    assert rare(s, "turn_keys", terms, 5, keep=["tests"]) == ["flaky", "tests"]
    assert rare(s, "turn_keys", ["builds", "zzz"], 1) == ["zzz"]  # unknown words cost nothing
    assert rare(s, "turn_keys", ["builds"], 1) == ["builds"]  # the rarest always stays
    monkeypatch.setattr(search_module, "MIN_POSTINGS", 2)
    assert rare(s, "turn_keys", terms, 100, share=0.5) == ["flaky"]  # budget min(100, 5 rows)
    assert rare(s, "turn_keys", terms, 100, share=1.0) == terms
    cfg = replace(TURNS, postings=9, window=0, session=0.0)
    hits = retrieve(s, "builds running flaky tests", config=cfg)
    assert _texts(hits) == ["flaky build on Mondays"]


# ---- guards


def test_dimension_or_model_mismatch_fails_loudly(projects_store: Store) -> None:
    embed_pending(projects_store, FakeEmbedder())
    with pytest.raises(LmmError, match=r"dim 64, but the model now gives dim 32.*lmm embed"):
        retrieve(projects_store, "migration", embedder=FakeEmbedder(dim=32))
    with pytest.raises(LmmError, match=r"no vectors for 'other'.*lmm embed --model other"):
        retrieve(projects_store, "migration", embedder=FakeEmbedder(name="other"))


def test_empty_query_and_keyword_only(projects_store: Store) -> None:
    assert retrieve(projects_store, "   ") == []
    assert retrieve(projects_store, "the of and") == []
    hits = retrieve(projects_store, "alembic", k=1)
    assert [(h.kind, h.text, h.speaker) for h in hits] == [
        ("turn", "we run the database migration with alembic", "user")
    ]


# ---- real data


@pytest.mark.slow
def test_locomo_one_conversation_beats_plain_bm25(tmp_path: Path) -> None:
    source = DATA / "locomo" / "locomo_dev.json"
    if not source.exists():
        pytest.skip(f"LoCoMo data not found at {source}")
    from lmm.ingest.importers import locomo_questions
    from lmm.ingest.run import ingest
    from lmm.retrieve.embed import get_embedder

    one = tmp_path / "one.json"
    one.write_text(json.dumps(json.loads(source.read_text())[:1]))
    store = Store(tmp_path / "lmm.db")
    ingest(store, [one], fmt="locomo")
    embedder = get_embedder()
    embed_pending(store, embedder)
    ids = {r[0]: r[1] for r in store.db.execute("SELECT dia_id, id FROM turns")}
    plain = replace(TURNS, dense=False, keys=False, participants=False, window=0, session=0.0,
                    recency=0.0)  # fmt: skip
    recalls: dict[str, list[float]] = {"lmm": [], "bm25": []}
    for q in locomo_questions(one):
        evidence = {ids[d] for d in q.evidence if d in ids}
        if not evidence:
            continue
        project = f"locomo/{q.sample_id}"
        for name, cfg, emb in (("lmm", TURNS, embedder), ("bm25", plain, None)):
            got = {h.id for h in retrieve(store, q.question, project=project, k=10,
                                          embedder=emb, config=cfg)}  # fmt: skip
            recalls[name].append(len(evidence & got) / len(evidence))
    lmm, bm25 = (100 * sum(r) / len(r) for r in recalls.values())
    assert len(recalls["lmm"]) > 150
    assert lmm > bm25 + 10, (lmm, bm25)


def test_the_projects_own_name_names_no_topic_within_it(tmp_path: Path) -> None:
    s = Store(tmp_path / "lmm.db")
    texts = ["keep the config dir named logslice", "the benches moved to divan", "lunch"]
    _add(s, "a", "/home/dev/logslice", texts)
    query = "what do the logslice benches run on"
    inside = retrieve(s, query, project="/home/dev/logslice", k=3, config=TURNS)
    assert _texts(inside)[:1] == ["the benches moved to divan"]
    off = retrieve(s, query, project="/home/dev/logslice", k=3,
                   config=replace(TURNS, own_name=False))  # fmt: skip
    assert "keep the config dir named logslice" in _texts(off)
    # alone, or from a folder above the project, the name is still a term
    assert _texts(retrieve(s, "logslice", project="/home/dev/logslice", k=1, config=TURNS)) == [
        "keep the config dir named logslice"
    ]
    above = retrieve(s, "logslice config", project="/home/dev", k=1, config=TURNS)
    assert _texts(above) == ["keep the config dir named logslice"]


def test_the_dense_query_reads_the_projects_own_name_as_the_project(tmp_path: Path) -> None:
    s = Store(tmp_path / "lmm.db")
    _add(s, "a", "/home/dev/logslice", ["the benches moved to divan"])
    seen: list[str] = []

    class Recording(FakeEmbedder):
        def embed(self, texts: list[str]) -> Any:
            seen.extend(texts)
            return super().embed(texts)

    search_module.read_query(s, "what do logslice's benches run on", None, Recording(),
                             SearchConfig(), "logslice")  # fmt: skip
    search_module.read_query(s, "what do logslice's benches run on", None, Recording(),
                             SearchConfig())  # fmt: skip
    assert seen == ["what do the project benches run on", "what do logslice's benches run on"]
