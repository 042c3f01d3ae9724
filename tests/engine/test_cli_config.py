"""`bot config check|schema` and start-up config errors, through the real command line."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.config.settings import ConfigError, load_settings
from bot.strategy.builtin.template import TemplateStrategy
from bot.strategy.loader import StrategyLoadError, validate_params

ROOT = Path(__file__).parents[2]


def bot(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")} | (env or {})
    return subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=60, check=False)


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


def test_env_references_in_the_file_are_expanded(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("instance: ${BOT_TEST_INSTANCE}-1\nabp:\n  api_key: ${BOT_KEY}\n"
                   "  base_url: https://$${HOST}/x\n")
    out = bot("config", "check", "-c", str(cfg), env={"BOT_TEST_INSTANCE": "desk", "BOT_KEY": "sk-from-env-42"})
    assert out.returncode == 0, out.stderr
    effective = json.loads(out.stdout)
    assert effective["instance"] == "desk-1"
    assert effective["abp"]["base_url"] == "https://${HOST}/x"  # $${ is a literal ${
    assert effective["abp"]["api_key"] == "**********" and "sk-from-env-42" not in out.stdout + out.stderr


def test_env_reference_expands_into_the_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("abp:\n  api_key: ${BOT_KEY}\n")
    monkeypatch.setenv("BOT_KEY", "sk-from-env-42")
    assert load_settings(cfg).abp.api_key == SecretStr("sk-from-env-42")


def test_unset_env_reference_stops_start_up_with_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("abp:\n  api_key: ${BOT_KEY}\n")
    for command in (["config", "check"], ["run"]):
        out = bot(*command, "-c", str(cfg), cwd=tmp_path)
        assert out.returncode == 2
        assert out.stderr.strip().splitlines() == [
            "config error: abp.api_key: environment variable BOT_KEY is not set; fix: export it or remove ${BOT_KEY}"
        ]


def test_malformed_env_reference_is_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("strategies:\n  - name: v\n    path: value\n    params: {sports: ['${BOT-SPORT}']}\n")
    out = bot("config", "check", "-c", str(cfg), cwd=tmp_path)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "config error: strategies.0.params.sports.0: '${BOT-SPORT}' is not a valid variable reference; fix:")


def test_relative_paths_are_the_config_folders_whatever_the_working_folder(tmp_path: Path) -> None:
    folder = tmp_path / "desk"
    folder.mkdir()
    (folder / "config.yaml").write_text("state_dir: state\nstrategy_dirs: [mine]\n")
    out = bot("config", "check", "-c", "desk/config.yaml", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    effective = json.loads(out.stdout)
    assert effective["state_dir"] == str(folder / "state")
    assert effective["strategy_dirs"] == [str(folder / "mine")]
    # `bot report` reads that ledger, not one under the working folder
    report = bot("report", "-c", "desk/config.yaml", cwd=tmp_path)
    assert report.returncode == 1 and str(folder / "state" / "bot.db") in report.stderr


def test_every_stage_cli_is_mounted() -> None:
    out = bot("--help")
    assert out.returncode == 0, out.stderr
    for command in ("run", "report", "config", "feeds", "abp", "risk", "mqtt", "strategy"):
        assert f" {command} " in out.stdout, command
    for sub in (["mqtt", "send", "--help"], ["mqtt", "watch", "--help"], ["strategy", "list", "--help"]):
        out = bot(*sub)
        assert out.returncode == 0 and "--config" in out.stdout, sub


def test_mqtt_commands_read_the_default_config_yaml(tmp_path: Path) -> None:
    # no -c: ./config.yaml is read, so its errors are reported (one line, exit 2)
    (tmp_path / "config.yaml").write_text("mqtt:\n  port: nope\n")
    for command in (["mqtt", "send", "status"], ["mqtt", "watch"]):
        out = bot(*command, cwd=tmp_path)
        assert out.returncode == 2
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("config error: mqtt.port:"), out.stderr


def test_config_and_strategy_errors_share_one_formatter(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("risk:\n  max_stake: -5\n  max_stakee: 1\n")
    with pytest.raises(ConfigError) as exc:
        load_settings(cfg)
    assert exc.value.lines == [
        ("config error: risk.max_stake: Input should be greater than 0 (got -5); "
         "fix: correct `risk.max_stake` in the config file or set BOT_RISK__MAX_STAKE"),
        ("config error: risk.max_stakee: Extra inputs are not permitted (got 1); "
         "fix: remove it or check its spelling (`bot config schema` lists every key)"),
    ]
    # the same reading of pydantic's errors, in the strategy wording
    with pytest.raises(StrategyLoadError) as strategy_exc:
        validate_params("longshots", TemplateStrategy, {"min_price": "abc", "stake": -1})
    assert strategy_exc.value.lines == [
        "strategy 'longshots': params.min_price: expected a number, got 'abc'",
        "strategy 'longshots': params.stake: expected greater than 0, got -1",
    ]
