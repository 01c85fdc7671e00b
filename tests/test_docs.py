"""The README against the code: every `lmm` command is documented, the `make` commands it gives
exist, its layout names every package, and a few of its concrete claims (defaults, environment
variables, `--json` everywhere) hold."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from lmm.cli import build_parser
from lmm.memory import digest
from lmm.retrieve.recall import RecallConfig
from lmm.retrieve.synth import SynthConfig
from lmm.text import redact

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
SRC = ROOT / "src" / "lmm"


def commands(
    parser: argparse.ArgumentParser, prefix: str = "lmm"
) -> dict[str, argparse.ArgumentParser]:
    """Every command of `parser` by its full name ("lmm recall"), sub-commands included."""
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[f"{prefix} {name}"] = sub
                found |= commands(sub, f"{prefix} {name}")
    return found


COMMANDS = commands(build_parser())


def layout_paragraph() -> list[str]:
    """The README's layout paragraph: from the line that starts with "Layout" to a blank line."""
    lines = README.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Layout"))
    end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    return lines[start:end]


def test_the_parser_has_commands() -> None:
    assert len(COMMANDS) > 20 and "lmm recall" in COMMANDS


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_is_in_the_readme(command: str) -> None:
    assert re.search(rf"`{re.escape(command)}(?![\w-])", README), command


def test_the_make_commands_the_readme_gives_exist() -> None:
    first_block = README.split("```")[1]
    first = re.findall(r"^make ([\w-]+)", first_block, re.M)
    assert first == ["run", "test"]
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M))
    for target in {*first, *re.findall(r"`make ([\w-]+)`", README)}:
        assert target in targets, f"make {target}"


def test_the_layout_has_a_line_per_package() -> None:
    packages = sorted(p.parent.name for p in SRC.glob("*/__init__.py"))
    assert len(packages) > 5
    lines = layout_paragraph()
    for name in packages:
        assert any(re.match(rf"\s*[-*]?\s*`{name}/`", line) for line in lines), name


def test_every_command_takes_json() -> None:
    """'Every command takes `--json` for scripts.'"""
    assert "Every command takes `--json`" in README
    for name, parser in COMMANDS.items():
        if any(isinstance(a, argparse._SubParsersAction) for a in parser._actions):
            continue  # a group (`lmm team`): its verbs are the commands
        flags = {flag for action in parser._actions for flag in action.option_strings}
        assert "--json" in flags, name


def test_the_documented_recall_and_digest_defaults() -> None:
    tokens = re.search(r"under (\d+) tokens by default", README)
    seconds = re.search(r"`--budget-seconds`, (\d+)", README)
    model = re.search(r"`LMM_DIGEST_MODEL` picks the model \(default `([^`]+)`\)", README)
    assert tokens and seconds and model
    assert SynthConfig().max_tokens == int(tokens[1])
    assert RecallConfig().budget_seconds == float(seconds[1])
    assert model[1] == digest.DEFAULT_MODEL
    recall = COMMANDS["lmm recall"]
    flags = {flag for action in recall._actions for flag in action.option_strings}
    assert {"--generate", "--no-generate", "--budget-seconds", "--on-none"} <= flags


def test_the_documented_redaction_kinds_and_environment_variables() -> None:
    kinds = re.search(r"\((\d+) kinds\) become `\[REDACTED:<kind>\]`", README)
    assert kinds and len(redact.KINDS) == int(kinds[1])
    source = "\n".join(p.read_text() for p in SRC.rglob("*.py"))
    names = set(re.findall(r"\bLMM_[A-Z_]+\b", README))
    assert "LMM_HOME" in names
    for name in names:
        assert f'"{name}"' in source, f"{name} is documented but nothing reads it"
