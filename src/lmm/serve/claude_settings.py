"""Install and remove lmm's hooks in a Claude Code `settings.json`."""

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

from lmm import config
from lmm.errors import LmmError

# event -> hook timeout in seconds (Claude Code kills the command after it; ours stops at 2 s)
HOOKS: dict[str, int] = {
    "SessionStart": 10,
    "UserPromptSubmit": 10,
    "SessionEnd": 30,
    "PreCompact": 30,
}
# opt-in (`install --act`): event -> (timeout, matcher) of act-time recall before tool calls
ACT_HOOKS: dict[str, tuple[int, str]] = {"PreToolUse": (10, "Bash|Edit|Write")}
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
    if home := config.settings().home:
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


def _target(path: Path) -> Path:
    """The file that `path` names: a symlinked settings.json (dotfiles) is edited where it lives,
    and the link stays a link."""
    try:
        return path.resolve(strict=False) if path.is_symlink() else path
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise LmmError(f"cannot follow the link {path} ({exc}); fix or remove it") from exc


def _read(path: Path) -> tuple[dict[str, Any], bytes | None]:
    if path.is_symlink() and not path.exists():
        raise LmmError(f"{path} is a link to {os.readlink(path)}, which does not exist; "
                       "create that file or remove the link, then run this again")  # fmt: skip
    if not path.exists():
        return {}, None
    if not path.is_file():
        raise LmmError(f"{path} is not a file; move it away, then run this again")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise LmmError(f"cannot read {path} ({exc.strerror}); check its permissions") from exc
    if not raw.strip():
        return {}, raw
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise LmmError(f"{path} is not valid JSON ({exc}); fix it, then run this again") from exc
    if not isinstance(data, dict):
        raise LmmError(f"{path} does not hold a JSON object; fix it, then run this again")
    _check_shape(path, data)
    return data, raw


def _check_shape(path: Path, data: dict[str, Any]) -> None:
    """Refuse a `hooks` value Claude Code would not read either, rather than guess at it."""
    hooks = data.get("hooks")
    if hooks is None:
        return
    if not isinstance(hooks, dict):
        raise LmmError(f'"hooks" in {path} is not a JSON object; fix it, then run this again')
    for event, groups in hooks.items():
        if event in HOOKS and groups is not None and not isinstance(groups, list):
            raise LmmError(f'"hooks.{event}" in {path} is not a list; fix it, then run this again')


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
    """Replace `path` (the link's target for a symlink) atomically, keeping its mode. A file
    whose mode says read-only is refused: the user locked it for a reason."""
    target = _target(path)
    mode = target.stat().st_mode & 0o777 if target.exists() else None
    if mode is not None and not mode & 0o200:
        raise LmmError(
            f"{target} is read-only (mode {mode:o}); make it writable (chmod u+w {target}) "
            "and run this again, or add the hooks by hand"
        )
    tmp = target.with_name(target.name + ".lmm-tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(content)
        if mode is not None:
            os.chmod(tmp, mode)
        tmp.replace(target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise LmmError(f"cannot write {target} ({exc.strerror or exc}); check the folder's "
                       "permissions, then run this again") from exc  # fmt: skip


def _backup(path: Path, raw: bytes | None) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%S")
    target = path.with_name(f"{path.name}{BACKUP_SUFFIX}{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}{BACKUP_SUFFIX}{stamp}-{n}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(raw or b"")
    except OSError as exc:
        raise LmmError(f"cannot back up {path} to {target} ({exc.strerror or exc}); check the "
                       "folder's permissions, then run this again") from exc  # fmt: skip
    return target


def backups(path: Path) -> list[Path]:
    """This file's backups, newest first."""
    found = path.parent.glob(path.name + BACKUP_SUFFIX + "*")
    return sorted(found, key=lambda p: (p.stat().st_mtime_ns, p.name), reverse=True)


# ---- editing the hooks object


def strip(data: dict[str, Any]) -> dict[str, Any]:
    """A copy of `data` without lmm's hook commands; groups and events left empty by that are
    dropped. `data` itself is never changed."""
    hooks = data.get("hooks")
    if not isinstance(hooks, dict):
        return dict(data)
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


def with_hooks(data: dict[str, Any], *, act: bool = False) -> dict[str, Any]:
    """`data` with lmm's hooks (one group per event, appended after the user's own); with
    `act`, also the PreToolUse group of act-time recall (`ACT_HOOKS`)."""
    out = strip(data)
    hooks = dict(out.get("hooks") or {})
    for event, timeout in HOOKS.items():
        entry = {"type": "command", "command": hook_command(event), "timeout": timeout}
        hooks[event] = [*(hooks.get(event) or []), {"hooks": [entry]}]
    for event, (timeout, matcher) in (ACT_HOOKS if act else {}).items():
        entry = {"type": "command", "command": hook_command(event), "timeout": timeout}
        hooks[event] = [*(hooks.get(event) or []), {"matcher": matcher, "hooks": [entry]}]
    out["hooks"] = hooks
    return out


def installed(data: dict[str, Any]) -> list[str]:
    """The events for which `data` runs lmm's current hook command."""
    hooks = data.get("hooks")
    if not isinstance(hooks, dict):
        return []
    found = []
    for event in [*HOOKS, *ACT_HOOKS]:
        groups = hooks.get(event)
        commands = [
            h.get("command")
            for g in (groups if isinstance(groups, list) else [])
            if isinstance(g, dict) and isinstance(g.get("hooks"), list)
            for h in g["hooks"]
            if is_ours(h)
        ]
        if hook_command(event) in commands:
            found.append(event)
    return found


def wanted(act: bool = False) -> list[str]:
    """The events `install` adds hooks for."""
    return [*HOOKS, *(ACT_HOOKS if act else ())]


def _prune(data: Any) -> Any:
    """`data` without empty event lists or an empty hooks object (strip may drop those)."""
    if not isinstance(data, dict) or not isinstance(data.get("hooks"), dict):
        return data
    hooks = {k: v for k, v in data["hooks"].items() if v != []}
    out = {k: v for k, v in data.items() if k != "hooks"}
    return {**out, "hooks": hooks} if hooks else out


def install(path: Path, *, act: bool = False) -> Report:
    """Add lmm's hooks to the settings file at `path` (created if absent). Idempotent. With
    `act`, act-time recall before Bash, Edit and Write too; without, any earlier one goes."""
    data, raw = _read(path)
    new = with_hooks(data, act=act)
    if raw is not None and new == data:
        return Report(path, changed=False, events=installed(data))
    backup = _backup(path, raw)
    _write(path, _dump(new, raw))
    events = installed(_read(path)[0])
    if events != wanted(act):  # never report an install that the file does not show
        raise LmmError(f"wrote {path} but it does not hold lmm's hooks; the backup is {backup}")
    return Report(path, changed=True, events=events, backup=backup)


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
