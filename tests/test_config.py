"""config.Settings: every LMM_* variable and config.toml setting, read per call, listed in the
README."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from lmm import config, paths
from lmm.errors import LmmError

README = Path(__file__).resolve().parents[1] / "README.md"
ENV_FIELDS = [name for name in config.FIELDS if name not in config.FILE_ONLY]


def variable(field: str) -> str:
    return f"LMM_{field.upper()}"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ENV_FIELDS:
        monkeypatch.delenv(variable(name), raising=False)
    return monkeypatch


def test_the_readme_lists_every_setting_and_no_other() -> None:
    text = README.read_text(encoding="utf-8")
    table = text[text.index("| setting | default | what it sets |") :].split("\n\n")[0]
    listed = re.findall(r"^\| `([^`]+)`", table, re.MULTILINE)
    expected = [variable(n) for n in ENV_FIELDS] + list(config.FILE_FIELDS.values())
    assert sorted(listed) == sorted(expected)


def test_each_variable_sets_its_field(clean_env: pytest.MonkeyPatch) -> None:
    assert config.settings() == config.Settings()  # unset: every default
    values = {
        "home": ("~/lmm", "~/lmm"),
        "source": ("/src", "/src"),
        "cache": ("/cache", "/cache"),
        "model": ("qwen2.5-coder-0.5b", "qwen2.5-coder-0.5b"),
        "endpoint_model": ("gpt", "gpt"),
        "endpoint_key_env": ("MY_KEY", "MY_KEY"),
        "runtime": ("llama.cpp", "llama.cpp"),
        "threads": ("3", "3"),
        "gpu": ("0", False),
        "embed_backend": (" ONNX ", "onnx"),
        "digest": ("Off", False),
        "digest_model": ("smollm2", "smollm2"),
        "team_url": ("postgresql://me@db/team", "postgresql://me@db/team"),
    }
    assert sorted(values) == sorted(ENV_FIELDS)
    for name, (raw, value) in values.items():
        clean_env.setenv(variable(name), raw)
        assert getattr(config.settings(), name) == value, name  # read on every call


def test_empty_and_unknown_values_mean_the_default(clean_env: pytest.MonkeyPatch) -> None:
    for name in ("home", "model", "runtime", "threads", "embed_backend", "digest_model"):
        clean_env.setenv(variable(name), "")
    clean_env.setenv("LMM_GPU", "yes")  # only 0 and 1 decide
    assert config.settings() == config.Settings()
    clean_env.setenv("LMM_ENDPOINT_MODEL", "")  # as before: an empty name is sent as is
    assert config.settings().endpoint_model == ""


def test_paths_follow_the_environment(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("LMM_HOME", str(tmp_path / "a"))
    assert paths.home() == tmp_path / "a"
    clean_env.setenv("LMM_HOME", str(tmp_path / "b"))
    assert paths.db_path() == tmp_path / "b" / paths.DB_NAME
    clean_env.delenv("LMM_HOME")
    if sys.platform.startswith("linux"):
        clean_env.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
        assert paths.home() == tmp_path / "data" / "lmm"
    clean_env.setenv("LMM_SOURCE", "~/elsewhere")
    assert paths.claude_projects() == Path("~/elsewhere").expanduser()


def test_the_file_is_read_only_when_asked(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    file = tmp_path / "config.toml"
    assert config.settings(str(file)).privacy_exclude == ()  # no file: no settings
    file.write_text('[privacy]\nexclude = ["~/nda-*", "/x/"]\n')
    clean_env.setenv("LMM_MODEL", "smollm2")
    both = config.settings(str(file))
    assert both.privacy_exclude == ("~/nda-*", "/x/")  # as written; privacy expands them
    assert both.model == "smollm2"  # the environment's fields come along
    assert config.settings().privacy_exclude == ()


def test_the_team_store_comes_from_the_file_unless_the_variable_is_set(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    file = tmp_path / "config.toml"
    file.write_text('[team]\nurl = "postgresql://alice@db/team"\n')
    assert config.settings(str(file)).team_url == "postgresql://alice@db/team"
    assert config.settings().team_url is None  # the file only when asked
    clean_env.setenv("LMM_TEAM_URL", "postgresql://bob@other/team")
    assert config.settings(str(file)).team_url == "postgresql://bob@other/team"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("[privacy\n", r"cannot read .*config.toml: .*; fix or remove it"),
        ('[privacy]\nexclude = "/x"\n', r"\[privacy\] exclude must be a list of paths or glob"),
        ("[privacy]\nexclude = [1]\n", r"\[privacy\] exclude must be a list of paths or glob"),
        ('[team]\nurl = "mysql://db/team"\n', r"\[team\] url must be a postgresql://"),
        ("[team]\nurl = 5\n", r"\[team\] url must be a postgresql://"),
    ],
)
def test_a_bad_file_says_what_to_fix(tmp_path: Path, text: str, error: str) -> None:
    file = tmp_path / "config.toml"
    file.write_text(text)
    with pytest.raises(LmmError, match=error):
        config.settings(str(file))


def test_settings_are_frozen() -> None:
    with pytest.raises(AttributeError, match="frozen"):
        config.settings().home = "/elsewhere"
    with pytest.raises(TypeError, match="no field 'nome'"):
        config.Settings(nome="/x")


def test_importing_config_loads_nothing_a_hook_would_pay_for() -> None:
    script = "import sys; before = set(sys.modules); import lmm.config; lmm.config.settings()\n"
    script += "print(' '.join(sorted(set(sys.modules) - before)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["__future__", "lmm", "lmm.config"]
