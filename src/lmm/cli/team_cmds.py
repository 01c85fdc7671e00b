"""`lmm share | team`: publish a project's memories to the team store (PostgreSQL), set the
store up, grant members, pull the team's memories for recall, list what the team shares."""

from __future__ import annotations

import argparse
import dataclasses

from lmm import config, paths
from lmm.cli.output import emit
from lmm.errors import LmmError


def _url(args: argparse.Namespace) -> str:
    url = args.to or config.settings(str(paths.config_file())).team_url
    if not url:
        raise LmmError(
            "no team store: pass --to postgresql://..., set LMM_TEAM_URL or [team] url in "
            "config.toml"
        )
    return str(url)


def cmd_share(args: argparse.Namespace) -> int:
    from lmm.cli.memory_cmds import project_path
    from lmm.memory.share import outgoing, team_key
    from lmm.store import team
    from lmm.store.db import open_store

    project = project_path(args.project) or args.project
    key = team_key(project, args.as_)
    with open_store() as store:
        memories = outgoing(store, project, key)
    if args.dry_run:
        lines = [f"would share {len(memories)} memories of {project} as {key!r}:"]
        lines += [f"  [{m.category}] {m.text}" for m in memories]
        emit(args, {"project": key, "memories": [dataclasses.asdict(m) for m in memories]},
             "\n".join(lines))  # fmt: skip
        return 0
    url = _url(args)
    with team.connect(url) as conn:
        done = team.publish(conn, key, memories)
    text = (f"shared {project} as {key!r} with {team.safe_url(url)}: {done.added} new, "
            f"{done.changed} changed, {done.unchanged} already there")  # fmt: skip
    emit(args, {"project": key, **dataclasses.asdict(done)}, text)
    return 0


def cmd_team_init(args: argparse.Namespace) -> int:
    from lmm.store import team

    url = _url(args)
    with team.connect(url) as conn:
        version = team.migrate(conn)
    emit(args, {"version": version}, f"team store {team.safe_url(url)} at schema {version}")
    return 0


def cmd_team_grant(args: argparse.Namespace) -> int:
    from lmm.store import team

    url = _url(args)
    with team.connect(url) as conn:
        team.grant(conn, args.member, args.project)
    emit(args, {"member": args.member, "project": args.project},
         f"{args.member} may now read and share {args.project!r}")  # fmt: skip
    return 0


def cmd_team_list(args: argparse.Namespace) -> int:
    from lmm.store import team

    with team.connect(_url(args)) as conn:
        shared = team.memories(conn, args.projects)
    lines = [f"[{m.project}] ({m.category}, {m.shared_by} {m.shared_at[:10]}) {m.text}"
             for m in shared]  # fmt: skip
    emit(args, [dataclasses.asdict(m) for m in shared], "\n".join(lines) or "nothing shared")
    return 0


def cmd_team_pull(args: argparse.Namespace) -> int:
    from lmm.cli.memory_cmds import project_path
    from lmm.memory.share import incoming, team_key
    from lmm.store import team
    from lmm.store.db import open_store

    project = project_path(args.project) or args.project
    key = team_key(project, args.as_)
    url = _url(args)
    with team.connect(url) as conn:
        shared = team.memories(conn, [key], forgotten=True)
    with open_store() as store:
        done = incoming(store, project, shared)
    text = (f"pulled {key!r} from {team.safe_url(url)} into {project}: {done.added} new, "
            f"{done.unchanged} already here, {done.overruled} overruled by your own, "
            f"{done.forgotten} forgotten")  # fmt: skip
    emit(args, {"project": key, **dataclasses.asdict(done)}, text)
    return 0


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    to = argparse.ArgumentParser(add_help=False)
    to.add_argument("--to", help="the team store: postgresql://USER@HOST/DB (default LMM_TEAM_URL)")

    text = "publish a project's memories to the team store (PostgreSQL); --dry-run shows them"
    p = sub.add_parser("share", parents=[common, to], help=text, description=text)
    p.add_argument("project", help="the project folder whose memories to share")
    p.add_argument("--as", dest="as_", metavar="NAME",
                   help="the team's name for the project (default: the folder's name)")  # fmt: skip
    p.add_argument("--dry-run", action="store_true",
                   help="print exactly what would leave this machine, send nothing")  # fmt: skip
    p.set_defaults(func=cmd_share)

    text = "the team store: set it up, grant members, pull and list what is shared"
    team = sub.add_parser("team", help=text, description=text)
    verbs = team.add_subparsers(dest="verb", metavar="VERB", required=True)
    p = verbs.add_parser("init", parents=[common, to], help="create or upgrade the team schema")
    p.set_defaults(func=cmd_team_init)
    text = "let a member read and share a project"
    p = verbs.add_parser("grant", parents=[common, to], help=text)
    p.add_argument("member", help="the member's database role")
    p.add_argument("project", help="the team's name for the project")
    p.set_defaults(func=cmd_team_grant)
    text = "keep the team's memories of a project in the local store, for recall"
    p = verbs.add_parser("pull", parents=[common, to], help=text)
    p.add_argument("project", help="the local project folder")
    p.add_argument("--as", dest="as_", metavar="NAME",
                   help="the team's name for the project (default: the folder's name)")  # fmt: skip
    p.set_defaults(func=cmd_team_pull)
    p = verbs.add_parser("list", parents=[common, to], help="what the team shares, newest first")
    p.add_argument("projects", nargs="+", help="the team's names for the projects")
    p.set_defaults(func=cmd_team_list)
