"""`bot config check|schema` and start-up config errors, through the real command line."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


def bot(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")} | (env or {})
    return subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=60)


def test_default_config_is_valid_and_secrets_are_masked() -> None:
    out = bot("config", "check", "-c", str(ROOT / "config.yaml"), env={"BOT_ABP__API_KEY": "sk-very-secret-123"})
    assert out.returncode == 0, out.stderr
    effective = json.loads(out.stdout)
    assert effective["mode"] == "paper"
    assert effective["abp"]["api_key"] == "**********"
    assert "sk-very-secret-123" not in out.stdout + out.stderr


def test_environment_overrides_the_file() -> None:
    out = bot("config", "check", "-c", str(ROOT / "config.yaml"), env={"BOT_RISK__MAX_STAKE": "7.5"})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["risk"]["max_stake"] == "7.5"


@pytest.mark.parametrize(
    ("yaml_text", "field"),
    [
        ("risk:\n  max_stake: -5\n", "risk.max_stake"),
        ("risk:\n  max_stakee: 5\n", "risk.max_stakee"),
        ("mode: livee\n", "mode"),
        ("execution:\n  expiry_seconds: abc\n", "execution.expiry_seconds"),
    ],
)
def test_bad_config_exits_non_zero_with_one_line_naming_field_and_fix(tmp_path: Path, yaml_text: str, field: str) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml_text)
    for command in (["config", "check"], ["run"]):
        out = bot(*command, "-c", str(cfg), cwd=tmp_path)
        assert out.returncode == 2
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1, out.stderr
        assert lines[0].startswith(f"config error: {field}:") and "fix:" in lines[0]


def test_missing_config_file_is_one_line(tmp_path: Path) -> None:
    out = bot("config", "check", "-c", str(tmp_path / "nope.yaml"))
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        f"config error: file {tmp_path / 'nope.yaml'} not found; fix: pass an existing --config"
    ]


def test_schema_lists_every_section() -> None:
    out = bot("config", "schema")
    assert out.returncode == 0
    schema = json.loads(out.stdout)
    assert {"feeds", "strategies", "risk", "execution", "abp", "paper", "mqtt", "mapping"} <= set(schema["properties"])
