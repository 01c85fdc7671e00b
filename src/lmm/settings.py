"""Install and remove lmm's hooks in a Claude Code `settings.json`.

Claude Code reads `hooks: {EventName: [{matcher?, hooks: [{type: "command", command, timeout?}]}]}`
from `~/.claude/settings.json` (user) and `<project>/.claude/settings.json` (project). `install`
backs the file up first (`settings.json.lmm-backup-<time>`; an empty backup means there was no
file), replaces only lmm's own entries and keeps the file's indentation. `uninstall` removes them;
when the result equals the last backup, that backup's exact bytes are written back.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmm.errors import LmmError

# event -> hook timeout in seconds (Claude Code kills the command after it; ours stops at 2 s)
HOOKS: dict[str, int] = {
    "SessionStart": 10,
    "UserPromptSubmit": 10,
    "SessionEnd": 30,
    "PreCompact": 30,
}
BACKUP_SUFFIX = ".lmm-backup-"
_OURS = re.compile(r"(?:^|[\s/])(?:lmm|-m lmm) hook (?:\w+)\s*$")


def settings_path(scope: str, cwd: Path | None = None) -> Path:
    """`~/.claude/settings.json` for scope 'user', `<cwd>/.claude/settings.json` for 'project'."""
    if scope == "user":
        return Path.home() / ".claude" / "settings.json"
    if scope == "project":
        return (cwd or Path.cwd()) / ".claude" / "settings.json"
    raise LmmError(f"scope must be 'user' or 'project', not {scope!r}")


def hook_command(event: str) -> str:
    """The shell command Claude Code runs: this interpreter, so no PATH lookup can miss it,
    and the current LMM_HOME when one is set."""
    command = f"{shlex.quote(sys.executable)} -m lmm hook {event}"
    if home := os.environ.get("LMM_HOME"):
        command = f"LMM_HOME={shlex.quote(home)} {command}"
    return command


def is_ours(hook: Any) -> bool:
    return isinstance(hook, dict) and bool(_OURS.search(str(hook.get("command", ""))))


@dataclass
class Report:
    """What `install` or `uninstall` did to one settings file."""

    path: Path
    changed: bool
    events: list[str] = field(default_factory=list)
    backup: Path | None = None
    restored: bool = False  # uninstall wrote the backup's exact bytes back
    removed_file: bool = False  # uninstall deleted a file that install had created


# ---- reading and writing with the file's own formatting


def _read(path: Path) -> tuple[dict[str, Any], bytes | None]:
    if not path.exists():
        return {}, None
    raw = path.read_bytes()
    if not raw.strip():
        return {}, raw
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise LmmError(f"{path} is not valid JSON ({exc}); fix it, then run this again") from exc
    if not isinstance(data, dict):
        raise LmmError(f"{path} does not hold a JSON object; fix it, then run this again")
    return data, raw


def _indent(raw: bytes | None) -> int | str:
    """The indentation of the file's first indented line (default 2, like Claude Code)."""
    match = re.search(rb"\n([ \t]+)\S", raw or b"")
    if not match:
        return 2
    unit = match.group(1).decode()
    return unit if "\t" in unit else len(unit)


def _dump(data: dict[str, Any], raw: bytes | None) -> bytes:
    text = json.dumps(data, indent=_indent(raw), ensure_ascii=False)
    ends = raw is None or raw.endswith(b"\n")
    return (text + ("\n" if ends else "")).encode()


def _write(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".lmm-tmp")
    tmp.write_bytes(content)
    if path.exists():
        os.chmod(tmp, path.stat().st_mode & 0o777)
    tmp.replace(path)


def _backup(path: Path, raw: bytes | None) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%S")
    target = path.with_name(f"{path.name}{BACKUP_SUFFIX}{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}{BACKUP_SUFFIX}{stamp}-{n}")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(raw or b"")
    return target


def backups(path: Path) -> list[Path]:
    """This file's backups, newest first."""
    found = path.parent.glob(path.name + BACKUP_SUFFIX + "*")
    return sorted(found, key=lambda p: (p.stat().st_mtime_ns, p.name), reverse=True)


# ---- editing the hooks object


def strip(data: dict[str, Any]) -> dict[str, Any]:
    """`data` without lmm's hook commands; groups and events left empty by that are dropped."""
    hooks = data.get("hooks")
    if not isinstance(hooks, dict):
        return data
    new_hooks: dict[str, Any] = {}
    for event, groups in hooks.items():
        if not isinstance(groups, list):
            new_hooks[event] = groups
            continue
        kept = []
        for group in groups:
            inner = group.get("hooks") if isinstance(group, dict) else None
            if not isinstance(inner, list) or not any(is_ours(h) for h in inner):
                kept.append(group)
                continue
            rest = [h for h in inner if not is_ours(h)]
            if rest:
                kept.append({**group, "hooks": rest})
        if kept or not groups:
            new_hooks[event] = kept
    out = dict(data)
    if new_hooks or not hooks:
        out["hooks"] = new_hooks
    else:
        del out["hooks"]
    return out


def with_hooks(data: dict[str, Any]) -> dict[str, Any]:
    """`data` with lmm's hooks (one group per event, appended after the user's own)."""
    out = strip(data)
    hooks = dict(out.get("hooks") or {})
    for event, timeout in HOOKS.items():
        entry = {"type": "command", "command": hook_command(event), "timeout": timeout}
        hooks[event] = [*hooks.get(event, []), {"hooks": [entry]}]
    out["hooks"] = hooks
    return out


def _prune(data: Any) -> Any:
    """`data` without empty event lists or an empty hooks object (strip may drop those)."""
    if not isinstance(data, dict) or not isinstance(data.get("hooks"), dict):
        return data
    hooks = {k: v for k, v in data["hooks"].items() if v != []}
    out = {k: v for k, v in data.items() if k != "hooks"}
    return {**out, "hooks": hooks} if hooks else out


def install(path: Path) -> Report:
    """Add lmm's hooks to the settings file at `path` (created if absent). Idempotent."""
    data, raw = _read(path)
    new = with_hooks(data)
    if raw is not None and new == data:
        return Report(path, changed=False, events=list(HOOKS))
    backup = _backup(path, raw)
    _write(path, _dump(new, raw))
    return Report(path, changed=True, events=list(HOOKS), backup=backup)


def uninstall(path: Path) -> Report:
    """Remove lmm's hooks from `path`. Restores the last backup byte for byte when nothing else
    changed since install; deletes the file when install created it and it holds nothing else."""
    data, raw = _read(path)
    if raw is None:
        return Report(path, changed=False)
    new = strip(data)
    if new == data:
        return Report(path, changed=False)
    for backup in backups(path):  # the newest one taken before lmm's hooks were in
        old = backup.read_bytes()
        if not old.strip():
            if not old and _prune(new) == {}:
                path.unlink()
                return Report(path, changed=True, backup=backup, removed_file=True)
            break
        try:
            before = json.loads(old)
        except ValueError:
            break
        if strip(before) != before:
            continue  # a backup of an earlier install: look further back
        if _prune(before) == _prune(new):
            _write(path, old)
            return Report(path, changed=True, backup=backup, restored=True)
        break
    _write(path, _dump(new, raw))
    return Report(path, changed=True)
