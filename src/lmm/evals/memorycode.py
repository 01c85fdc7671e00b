"""MemoryCode dialogues (Cohere-Labs-Community/MemoryCode) as stored sessions, plus the check
that the latest version of each coding instruction is remembered and older ones superseded."""

from __future__ import annotations

import ast
import difflib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from lmm.records import SessionInfo, Turn
from lmm.store.cognitions import Cognition, list_
from lmm.store.db import Store

T0 = datetime(2024, 1, 1, 9, 0, 0)


def _lit(value: Any) -> Any:
    """Fields are sometimes Python literals inside strings, sometimes plain JSON values."""
    if isinstance(value, str):
        try:
            return ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return value
    return value


@dataclass
class Instruction:
    """One version of one coding instruction, as the dataset's metadata states it."""

    id: int
    version: int
    topic: str  # e.g. "always start function argument names with 'e_'"
    session: int  # index of the session that introduces this version


@dataclass
class Dialogue:
    name: str  # "dialogue_121"
    mentor: str
    mentee: str
    texts: list[str]  # one dialogue text per session
    instructions: list[Instruction]


def load(path: Path) -> Dialogue:
    raw = json.loads(path.read_text())
    ctx = raw["context"]
    texts: list[str] = []
    found: list[Instruction] = []
    for i, (session, ids) in enumerate(zip(raw["sessions"], raw["instructions"], strict=True)):
        text = _lit(session["text"])
        texts.append(text if isinstance(text, str) else str(text))
        types, topics = _lit(session["type"]), _lit(session["topic"])
        coding = [t for ty, t in zip(types, topics, strict=True) if ty.startswith("instruction")]
        pairs = [p for p in ids if p != -1]
        for (iid, version), topic in zip(pairs, coding, strict=True):
            found.append(Instruction(int(iid), int(version), topic, i))
    return Dialogue(path.stem, ctx["mentor"], ctx["mentee"], texts, found)


_LABEL = re.compile(r"^\s*([^\s:][^:\n]{0,30}?)\s*:\s*(.*)$", re.S)


def _speaker(label: str, names: tuple[str, str]) -> str | None:
    """Which of the two names a paragraph label is; typos in the data count ("Ethon")."""
    for name in names:
        if label == name or difflib.SequenceMatcher(None, label, name).ratio() >= 0.75:
            return name
    return None


def _utterances(text: str, names: tuple[str, str]) -> list[tuple[str, str]]:
    """(speaker, words) pairs of a session text; continuation paragraphs join the last speaker."""
    out: list[tuple[str, str]] = []
    restart = False  # after a "---" rule the generator starts over, with the mentor speaking
    for para in re.split(r"\n\s*\n", text.strip()):
        m = _LABEL.match(para)
        speaker = _speaker(m.group(1), names) if m else None
        if m and speaker:
            out.append((speaker, m.group(2).strip()))
        elif para.strip() in ("---", "***", "___"):
            restart = True
            continue
        elif restart or (not out and para.strip()):
            out.append((names[0], para.strip()))
        elif out and para.strip():
            out[-1] = (out[-1][0], out[-1][1] + "\n\n" + para.strip())
        restart = False
    return out


def project_of(dialogue: Dialogue) -> str:
    return f"memorycode/{dialogue.name}"


def to_turns(dialogue: Dialogue) -> list[tuple[SessionInfo, list[Turn]]]:
    """Each session as a SessionInfo and its Turns, a day apart, a minute between turns."""
    out = []
    for i, text in enumerate(dialogue.texts):
        sid = f"{dialogue.name}-s{i:03d}"
        info = SessionInfo(sid, "generic", project=project_of(dialogue), title=f"session {i}")
        turns = []
        for j, (speaker, words) in enumerate(_utterances(text, (dialogue.mentor, dialogue.mentee))):
            when = T0 + timedelta(days=i, minutes=j)
            turns.append(
                Turn(
                    session_id=sid,
                    key=f"{sid}-t{j:03d}",
                    role="user" if speaker == dialogue.mentor else "assistant",
                    kind="message",
                    text=words,
                    timestamp=when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    speaker=speaker,
                    line_no=j + 1,
                )
            )
        out.append((info, turns))
    return out


def add_to_store(store: Store, dialogue: Dialogue) -> list[str]:
    """Store the dialogue's sessions; returns their session ids."""
    ids = []
    with store.transaction():
        for info, turns in to_turns(dialogue):
            store.add_session(info)
            store.add_turns(turns)
            ids.append(info.session_id)
        store.refresh_sessions(ids)
    return ids


# ---- checking what was remembered

_QUOTED = re.compile(r"'([^']+)'")
_KIND_WORDS = {
    "function argument": "argument",
    "function": "function",
    "method": "method",
    "variable": "variable",
    "attribute": "attribute",
    "class": "class",
}


def matcher(topic: str) -> list[str]:
    """Words a cognition must contain (lower case) to state this instruction version: its
    quoted values without '@', or its key words, plus the kind of name it is about."""
    t = topic.lower()
    need = [v.lstrip("@") for v in _QUOTED.findall(t) if v != "pedantic"]
    for word in ("camelcase", "snake_case", "uppercase", "annotat", "docstring", "try",
                 "assert", "comment", "digit"):  # fmt: skip
        if word in t and word not in need:
            need.append(word)
    for phrase, word in _KIND_WORDS.items():
        if re.search(rf"\b{phrase}(?:s| names)\b", t):
            need.append(word)
            if word == "function" and "names" in t:
                need.append("!function argument")  # not "function argument names"
            break
    return need


def states(text: str, need: list[str], value: str = "") -> bool:
    """Does `text` state an instruction whose `matcher` words are `need`? ('!w': w must be
    absent; a value like '_at' must stand at a name boundary; a word equal to `value`, the value
    the store derived from the text, counts as stated.)"""
    low = text.lower().replace("camel case", "camelcase").replace("upper case", "uppercase")
    for word in need:
        if value and value == word:
            continue
        if word.startswith("!"):
            if word[1:] in low:
                return False
        elif word.endswith("_") or word.startswith("_"):
            if not re.search(rf"(?<![a-z0-9_]){re.escape(word)}(?![a-z0-9])", low):
                return False
        elif word not in low:
            return False
    return True


def _states(cog: Cognition, need: list[str]) -> bool:
    """Whether `cog` states every needed word: in its text, or (for a prefix/suffix written out
    as "an underscore followed by 'md'") as the value the store derived from it."""
    return states(cog.text, need, str(cog.extra.get("value", "")).lower())


@dataclass
class DialogueCheck:
    name: str
    instructions: int  # distinct instruction ids
    ok: int  # ids whose latest version is active and older versions superseded
    problems: list[str] = field(default_factory=list)

    @property
    def correct(self) -> bool:
        return self.ok == self.instructions


def check(store: Store, dialogue: Dialogue) -> DialogueCheck:
    """Whether the store remembers each instruction's latest version (an active cognition states
    it) and marks each replaced version superseded (no active cognition states it, and a
    superseded one does)."""
    # the dialogue's own cognitions, those read as rules for all work (user-wide) included
    where = project_of(dialogue)
    every = [
        c
        for c in list_(store, project=where, status=None)
        if where in (c.project, c.learned_in_path)
    ]
    active = [c for c in every if c.status == "active"]
    superseded = [c for c in every if c.status == "superseded"]
    by_id: dict[int, list[Instruction]] = {}
    for ins in dialogue.instructions:
        by_id.setdefault(ins.id, []).append(ins)
    result = DialogueCheck(dialogue.name, len(by_id), 0)
    for iid, versions in by_id.items():
        latest = versions[-1]
        need = matcher(latest.topic)
        problems = []
        if not any(_states(c, need) for c in active):
            problems.append(f"latest {latest.topic!r} (session {latest.session}) is not active")
        for old in versions[:-1]:
            old_need = matcher(old.topic)
            if old_need == need:
                continue  # the same version stated again
            if any(_states(c, old_need) for c in active):
                problems.append(f"replaced {old.topic!r} (session {old.session}) is still active")
            elif not any(_states(c, old_need) for c in superseded):
                problems.append(f"replaced {old.topic!r} (session {old.session}) was never stored")
        if problems:
            result.problems += [f"instruction {iid}: {p}" for p in problems]
        else:
            result.ok += 1
    return result
