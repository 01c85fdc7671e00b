"""install-hooks / uninstall-hooks on Claude Code settings.json: idempotent, other hooks kept,
the file byte-identical after a round trip."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from lmm.cli import main
from lmm.errors import LmmError
from lmm.serve import claude_settings

# A user's settings, formatted by hand: 4-space indent, non-ASCII text, no final newline.
ORIGINAL = """{
    "model": "opus",
    "env": {"GREETING": "héllo ✓"},
    "hooks": {
        "PreToolUse": [
            {"matcher": "Bash", "hooks": [{"type": "command", "command": "~/bin/guard.sh"}]}
        ],
        "SessionStart": [
            {"hooks": [{"type": "command", "command": "echo hi", "timeout": 5}]}
        ]
    }
}"""


def lmm_commands(data: dict) -> dict[str, list[str]]:
    return {
        event: [h["command"] for g in groups for h in g["hooks"] if claude_settings.is_ours(h)]
        for event, groups in data.get("hooks", {}).items()
    }


def test_install_adds_each_event_and_keeps_other_hooks(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(ORIGINAL)
    report = claude_settings.install(path)
    assert report.changed and report.backup is not None
    assert report.backup.read_text() == ORIGINAL
    assert report.backup.name.startswith("settings.json.lmm-backup-")
    data = json.loads(path.read_text())
    before = json.loads(ORIGINAL)
    assert data["model"] == "opus" and data["env"] == before["env"]
    assert data["hooks"]["PreToolUse"] == before["hooks"]["PreToolUse"]
    assert data["hooks"]["SessionStart"][0] == before["hooks"]["SessionStart"][0]
    assert lmm_commands(data) == {
        "PreToolUse": [],
        "SessionStart": [claude_settings.hook_command("SessionStart")],
        "UserPromptSubmit": [claude_settings.hook_command("UserPromptSubmit")],
        "SessionEnd": [claude_settings.hook_command("SessionEnd")],
        "PreCompact": [claude_settings.hook_command("PreCompact")],
    }
    assert data["hooks"]["UserPromptSubmit"] == [
        {
            "hooks": [
                {
                    "type": "command",
                    "command": claude_settings.hook_command("UserPromptSubmit"),
                    "timeout": 10,
                }
            ]
        }
    ]
    text = path.read_text()
    assert '\n    "model": "opus",' in text  # the file's own indentation
    assert "héllo ✓" in text and not text.endswith("\n")


def test_hook_command_runs_this_interpreter_with_the_current_home(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LMM_HOME", "/tmp/my lmm")
    assert (
        claude_settings.hook_command("SessionEnd")
        == f"LMM_HOME='/tmp/my lmm' {sys.executable} -m lmm hook SessionEnd"
    )
    monkeypatch.delenv("LMM_HOME")
    assert claude_settings.hook_command("SessionEnd") == f"{sys.executable} -m lmm hook SessionEnd"


def test_install_twice_changes_nothing_and_uninstall_restores_every_byte(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(ORIGINAL)
    claude_settings.install(path)
    installed = path.read_bytes()
    again = claude_settings.install(path)
    assert (again.changed, again.backup, path.read_bytes()) == (False, None, installed)
    assert len(claude_settings.backups(path)) == 1
    report = claude_settings.uninstall(path)
    assert report.changed and report.restored
    assert path.read_text() == ORIGINAL
    assert claude_settings.uninstall(path).changed is False
    assert path.read_text() == ORIGINAL


def test_uninstall_keeps_edits_made_after_install(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(ORIGINAL)
    claude_settings.install(path)
    data = json.loads(path.read_text())
    data["theme"] = "dark"
    data["hooks"]["Stop"] = [{"hooks": [{"type": "command", "command": "say done"}]}]
    data["hooks"]["UserPromptSubmit"][0]["hooks"].insert(
        0, {"type": "command", "command": "log-prompt"}
    )
    path.write_text(json.dumps(data, indent=4))
    report = claude_settings.uninstall(path)
    assert report.changed and not report.restored
    expected = json.loads(ORIGINAL)
    expected["theme"] = "dark"
    expected["hooks"]["Stop"] = data["hooks"]["Stop"]
    expected["hooks"]["UserPromptSubmit"] = [
        {"hooks": [{"type": "command", "command": "log-prompt"}]}
    ]
    assert json.loads(path.read_text()) == expected


def test_a_missing_file_is_created_and_removed_again(tmp_path: Path) -> None:
    path = tmp_path / ".claude" / "settings.json"
    report = claude_settings.install(path)
    assert report.changed and report.backup is not None and report.backup.read_bytes() == b""
    assert sorted(json.loads(path.read_text())["hooks"]) == sorted(claude_settings.HOOKS)
    assert path.read_text().endswith("}\n")
    report = claude_settings.uninstall(path)
    assert report.removed_file and not path.exists()


def test_reinstall_with_another_command_then_uninstall_restores_the_original(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "settings.json"
    path.write_text(ORIGINAL + "\n")
    claude_settings.install(path)
    monkeypatch.setenv("LMM_HOME", str(tmp_path / "elsewhere"))
    report = claude_settings.install(path)
    assert report.changed
    assert lmm_commands(json.loads(path.read_text()))["PreCompact"] == [
        claude_settings.hook_command("PreCompact")
    ]
    assert len(claude_settings.backups(path)) == 2
    assert claude_settings.uninstall(path).restored
    assert path.read_text() == ORIGINAL + "\n"


def test_invalid_json_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text('{"hooks": ')
    with pytest.raises(LmmError, match="is not valid JSON"):
        claude_settings.install(path)
    assert path.read_text() == '{"hooks": ' and claude_settings.backups(path) == []


def test_is_ours_recognises_only_lmm_hook_commands() -> None:
    assert claude_settings.is_ours({"command": "/usr/bin/python3 -m lmm hook SessionStart"})
    assert claude_settings.is_ours({"command": "lmm hook PreCompact"})
    assert claude_settings.is_ours({"command": "LMM_HOME=/x /opt/bin/lmm hook SessionEnd"})
    assert not claude_settings.is_ours({"command": "echo lmm hook SessionStart && rm -rf /"})
    assert not claude_settings.is_ours({"command": "myhelm hook SessionStart"})
    assert not claude_settings.is_ours("lmm hook SessionStart")


def test_cli_install_and_uninstall_project_scope(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    path = tmp_path / ".claude" / "settings.json"
    path.parent.mkdir()
    path.write_text(ORIGINAL)
    assert main(["install-hooks", "--project"]) == 0
    assert capsys.readouterr().out.startswith("installed lmm hooks (SessionStart, ")
    assert main(["install-hooks", "--project", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["changed"] is False
    assert not (tmp_path / "user" / ".claude").exists()
    assert main(["uninstall-hooks", "--project"]) == 0
    assert "restored" in capsys.readouterr().out
    assert path.read_text() == ORIGINAL
    assert main(["install-hooks", "--user"]) == 0
    assert (tmp_path / "user" / ".claude" / "settings.json").exists()


# ---- the shapes an existing settings.json comes in


def _installed_events(path: Path) -> list[str]:
    return claude_settings.installed(json.loads(path.read_text()))


@pytest.mark.parametrize(
    "content",
    [
        "{}",
        "{}\n",
        '{"model": "opus"}',
        '{\n  "model": "opus",\n  "permissions": {"allow": ["Bash(ls:*)"]}\n}\n',
        '{"hooks": {}}',
        '{"hooks": null, "model": "opus"}',
        '{"hooks": {"SessionStart": null}}',
        '{"hooks": {"Stop": [{"hooks": [{"type": "command", "command": "say done"}]}]}}',
        '\ufeff{"model": "opus"}',
        "",
        "  \n",
    ],
    ids=[
        "empty-object",
        "empty-object-nl",
        "other-key",
        "other-keys",
        "empty-hooks",
        "null-hooks",
        "null-event",
        "other-hooks",
        "bom",
        "empty-file",
        "blank-file",
    ],
)
def test_install_on_each_shape_installs_and_uninstall_restores(
    tmp_path: Path, content: str
) -> None:
    path = tmp_path / "settings.json"
    path.write_text(content)
    report = claude_settings.install(path)
    assert report.changed and report.events == list(claude_settings.HOOKS)
    assert _installed_events(path) == list(claude_settings.HOOKS)
    data = json.loads(path.read_text())
    before = json.loads(content.lstrip("\ufeff")) if content.strip() else {}
    assert {k: v for k, v in data.items() if k != "hooks"} == {
        k: v for k, v in before.items() if k != "hooks"
    }
    assert claude_settings.install(path).changed is False
    report = claude_settings.uninstall(path)
    assert report.changed
    text = path.read_text() if path.exists() else ""  # an empty file lmm filled is removed
    if report.restored:
        assert text == content
    after = json.loads(text.lstrip("\ufeff")) if text.strip() else {}
    assert claude_settings.installed(after) == []
    assert {k: v for k, v in after.items() if k != "hooks"} == {
        k: v for k, v in before.items() if k != "hooks"
    }


def test_with_hooks_leaves_its_input_alone() -> None:
    data: dict = {"model": "opus"}
    out = claude_settings.with_hooks(data)
    assert data == {"model": "opus"} and claude_settings.installed(out) == list(
        claude_settings.HOOKS
    )


def test_cli_says_installed_on_a_settings_file_without_hooks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    path = tmp_path / ".claude" / "settings.json"
    path.parent.mkdir()
    path.write_text('{"model": "opus"}\n')
    assert main(["install-hooks"]) == 0
    assert capsys.readouterr().out.startswith("installed lmm hooks")
    assert _installed_events(path) == list(claude_settings.HOOKS)
    assert main(["install-hooks"]) == 0
    assert "already installed" in capsys.readouterr().out


def test_a_symlinked_settings_file_stays_a_link(tmp_path: Path) -> None:
    dotfiles = tmp_path / "dotfiles" / "claude-settings.json"
    dotfiles.parent.mkdir()
    dotfiles.write_text('{"model": "opus"}\n')
    link = tmp_path / ".claude" / "settings.json"
    link.parent.mkdir()
    link.symlink_to(dotfiles)
    claude_settings.install(link)
    assert link.is_symlink() and link.resolve() == dotfiles.resolve()
    assert _installed_events(dotfiles) == list(claude_settings.HOOKS)
    assert claude_settings.uninstall(link).restored
    assert link.is_symlink() and dotfiles.read_text() == '{"model": "opus"}\n'


def test_a_dangling_symlink_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "settings.json"
    link.symlink_to(tmp_path / "nowhere.json")
    with pytest.raises(LmmError, match="does not exist"):
        claude_settings.install(link)
    assert link.is_symlink() and not (tmp_path / "nowhere.json").exists()


def test_a_read_only_file_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text('{"model": "opus"}')
    path.chmod(0o444)
    with pytest.raises(LmmError, match="read-only"):
        claude_settings.install(path)
    assert path.read_text() == '{"model": "opus"}' and path.stat().st_mode & 0o777 == 0o444
    assert not (tmp_path / "settings.json.lmm-tmp").exists()


def test_a_file_mode_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text("{}")
    path.chmod(0o600)
    claude_settings.install(path)
    assert path.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"hooks": ', "is not valid JSON"),
        ("[1, 2]", "does not hold a JSON object"),
        ('{"hooks": [1]}', '"hooks" in .* is not a JSON object'),
        ('{"hooks": {"SessionStart": {"command": "x"}}}', "is not a list"),
    ],
)
def test_a_malformed_file_is_refused_untouched(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "settings.json"
    path.write_text(content)
    with pytest.raises(LmmError, match=message):
        claude_settings.install(path)
    assert path.read_text() == content and claude_settings.backups(path) == []


def test_an_unwritable_place_gives_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(LmmError, match="check the folder's permissions"):
        claude_settings.install(blocker / ".claude" / "settings.json")


def test_a_directory_in_the_way_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.mkdir()
    with pytest.raises(LmmError, match="is not a file"):
        claude_settings.install(path)
