"""`lmm extract | memories | remember | forget | scope | ingest-code`: the memory commands."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from lmm.cli.output import emit
from lmm.errors import LmmError


def project_path(value: str | None) -> str | None:
    """A --project value as the store keys it: a full path for folders that exist."""
    if value is None:
        return None
    path = Path(value).expanduser()
    return str(path.resolve()) if path.exists() else value.rstrip("/") or "/"


def cmd_extract(args: argparse.Namespace) -> int:
    from lmm.memory.extract import get_extractor, run_extraction
    from lmm.store.db import open_store

    extractor = get_extractor(args.extractor)
    with open_store() as store:
        project = project_path(args.project)
        report = run_extraction(store, extractor, project=project, full=args.full)
    emit(args, dataclasses.asdict(report), "extracted " + report.summary())
    return 0


_WHY = {"rule": "said for all work", "repeated": "said in two projects", "user": "set by you"}


def _line(c: object) -> str:
    from lmm.store.cognitions import Cognition

    assert isinstance(c, Cognition)
    when = (c.valid_from or "")[:10]
    status = "" if c.status == "active" else f" [{c.status}"
    if c.superseded_by:
        status += f" by #{c.superseded_by}"
    status += "]" if status else ""
    scope = "" if c.project_id is not None else " (all projects)"
    if c.project_id is None and c.scope_by:
        scope = f" (all projects: {_WHY.get(c.scope_by, c.scope_by)})"
    return f"#{c.id} {c.category:<10} {c.salience:.2f} {when} {c.text}{status}{scope}"


def cmd_memories(args: argparse.Namespace) -> int:
    from lmm.retrieve.scope import overridden
    from lmm.store.cognitions import list_
    from lmm.store.db import open_store
    from lmm.text.timeref import parse_since

    status: str | None = "active"
    if args.all:
        status = None
    elif args.superseded:
        status = "superseded"
    with open_store() as store:
        found = list_(
            store,
            project=project_path(args.project),
            category=args.category,
            status=status,
            since=parse_since(args.since) if args.since else None,
            scope=args.scope,
            limit=args.limit,
            origin=args.origin,
            exclude_origin="code" if args.no_code else None,
        )
        hidden = overridden(store, project_path(args.project)) if args.project else set()
    filtered = (
        args.project
        or args.category
        or args.since
        or args.superseded
        or args.scope
        or args.origin
        or args.no_code
    )
    empty = "no memories match these filters" if filtered else "no memories yet: run `lmm ingest`"
    lines = [_line(c) + (" [not here: this project says otherwise]" if c.id in hidden else "")
             for c in found]  # fmt: skip
    text = "\n".join(lines) or empty
    emit(args, [dataclasses.asdict(c) for c in found], text)
    return 0


def cmd_remember(args: argparse.Namespace) -> int:
    from lmm.store.cognitions import get, remember
    from lmm.store.db import open_store

    project = project_path(args.project)
    with open_store() as store:
        known = project is None or store.has_project(project)
        if not known and not Path(project or "").is_dir():
            raise LmmError(
                f"--project {args.project}: no such folder and no stored project; pass a project "
                "folder (or leave --project out for a memory that holds everywhere)"
            )
        with store.transaction():
            cog_id = remember(store, args.text, project=project, category=args.category)
    with open_store() as store:
        cog = get(store, cog_id)
    assert cog is not None
    emit(args, dataclasses.asdict(cog), f"remembered #{cog_id}: {cog.text}")
    return 0


def cmd_forget(args: argparse.Namespace) -> int:
    from lmm.store.cognitions import get
    from lmm.store.db import open_store
    from lmm.store.erase import forget

    with open_store() as store:
        if get(store, args.id) is None:
            raise LmmError(f"no memory #{args.id}; `lmm memories --all` lists them")
        changed = forget(store, args.id)
    text = f"forgot #{args.id}" if changed else f"#{args.id} was already forgotten"
    emit(args, {"id": args.id, "forgotten": True, "changed": changed}, text)
    return 0


def cmd_scope(args: argparse.Namespace) -> int:
    from lmm.store.cognitions import get, set_scope
    from lmm.store.db import open_store

    with open_store() as store:
        with store.transaction():
            held = set_scope(store, args.id, args.scope, project=project_path(args.project))
        cog = get(store, held)
    assert cog is not None
    where = "every project" if cog.scope == "user" else cog.project
    text = f"#{args.id} now applies to {where}"
    if held != args.id:
        text += f" (merged into #{held}, which said the same there)"
    emit(args, dataclasses.asdict(cog), text)
    return 0


def cmd_ingest_code(args: argparse.Namespace) -> int:
    from lmm.memory.codebase import ingest_code
    from lmm.store.db import open_store

    with open_store() as store:
        report = ingest_code(store, Path(args.path))
    emit(args, dataclasses.asdict(report), "ingested code: " + report.summary())
    return 0


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    from lmm.store.cognitions import CATEGORIES, ORIGINS, SCOPES

    p = sub.add_parser(
        "extract",
        parents=[common],
        help="turn stored sessions into memories (incremental: only sessions with new turns)",
    )
    p.add_argument(
        "--extractor",
        choices=["rules", "lm"],
        default="rules",
        help="rules: offline and fast (default); lm: a local language model",
    )
    p.add_argument("--project", help="only sessions of this project folder")
    p.add_argument("--full", action="store_true", help="re-read every session (idempotent)")
    p.set_defaults(func=cmd_extract)

    p = sub.add_parser("memories", parents=[common], help="list memories, most salient first")
    p.add_argument(
        "--project",
        help="this project's memories plus the user-wide ones (those it contradicts are marked)",
    )
    p.add_argument("--category", choices=CATEGORIES, help="only memories of this kind")
    p.add_argument(
        "--scope",
        choices=SCOPES,
        help="user: only those that apply in every project; project: only one project's",
    )
    p.add_argument("--since", help="only those valid from this ISO date on (e.g. 2025-01-31)")
    origin = p.add_mutually_exclusive_group()
    origin.add_argument(
        "--origin",
        metavar="ORIGIN",
        help=f"only those made by this extractor or source ({', '.join(ORIGINS)}; "
        "code: what `lmm ingest-code` read from the repository)",
    )
    origin.add_argument(
        "--no-code",
        action="store_true",
        help="leave out what `lmm ingest-code` read from the repository",
    )
    group = p.add_mutually_exclusive_group()
    group.add_argument("--superseded", action="store_true", help="only replaced memories")
    group.add_argument("--all", action="store_true", help="every status, forgotten included")
    p.add_argument("-n", "--limit", type=int, default=None, help="show at most this many")
    p.set_defaults(func=cmd_memories)

    p = sub.add_parser("remember", parents=[common], help="add a memory in your own words")
    p.add_argument("text", help="what lmm should remember, in your words")
    p.add_argument("--project", help="project folder it applies to (default: every project)")
    p.add_argument("--category", choices=CATEGORIES, default="preference",
                   help="what kind of memory it is (default: preference)")  # fmt: skip
    p.set_defaults(func=cmd_remember)

    forget_help = (
        "forget a memory: its text and keywords are erased and it leaves search; its id (uid) "
        "stays so that a later `lmm extract` never brings it back"
    )
    p = sub.add_parser("forget", parents=[common], help=forget_help, description=forget_help)
    p.add_argument("id", type=int, help="the memory's number, as `lmm memories` shows it")
    p.set_defaults(func=cmd_forget)

    scope_help = (
        "move a memory between scopes: user (every project, new ones included) or project (one "
        "project: the one it was learned in, or --project); extraction never moves it back"
    )
    p = sub.add_parser("scope", parents=[common], help=scope_help, description=scope_help)
    p.add_argument("id", type=int, help="the memory's number, as `lmm memories` shows it")
    p.add_argument("scope", choices=SCOPES, help="user or project")
    p.add_argument("--project", help="with project: the project folder it applies to")
    p.set_defaults(func=cmd_scope)

    p = sub.add_parser(
        "ingest-code",
        parents=[common],
        help="learn a codebase: README/docs sections, docstrings, signatures, build/test commands "
        "(re-runs read only changed files)",
    )
    p.add_argument("path", help="the repository folder")
    p.set_defaults(func=cmd_ingest_code)
