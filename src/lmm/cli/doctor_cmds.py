"""`lmm doctor`: what is in place, what is not, and the command that fixes it."""

from __future__ import annotations

import argparse
import dataclasses

from lmm.cli.output import emit

MARKS = {"ok": "ok  ", "warn": "warn", "fail": "FAIL"}


def cmd_doctor(args: argparse.Namespace) -> int:
    from lmm.serve import doctor

    checks = doctor.run()
    lines = []
    for c in checks:
        lines.append(f"[{MARKS[c.status]}] {c.name}: {c.found}")
        if c.fix:
            lines.append(f"       -> {c.fix}")
    emit(args, [dataclasses.asdict(c) for c in checks], "\n".join(lines))
    return 1 if any(c.status == "fail" for c in checks) else 0


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    text = "check the store, history, embeddings, server, hooks and models; say what to fix"
    p = sub.add_parser("doctor", parents=[common], help=text, description=text)
    p.set_defaults(func=cmd_doctor)
