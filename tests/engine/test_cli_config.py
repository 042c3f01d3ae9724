"""`bot config check|schema` and start-up config errors, through the real command line: every
mistake `bot run` would stop on, `bot config check` reports with the same one line, exit 2, and
nothing is created (bot/config/preflight.py; docs/architecture.md, "Configuration"); a ledger
SQLite cannot use is one line too."""

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr

from bot.config.settings import ConfigError, load_settings
from bot.ledger.store import Ledger
from bot.strategy.builtin.template import TemplateStrategy
from bot.strategy.loader import StrategyLoadError, validate_params
from tests.engine.conftest import ledger_rows, run_bot, write_config

ROOT = Path(__file__).parents[2]
REPLAY = ROOT / "bot" / "data" / "nfl_raw_snapshots_2025-11-16.jsonl.gz"


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
                   f"  base_url: https://$${{HOST}}/x\nfeeds: {{replay: {{path: {REPLAY}}}}}\n")
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
    (folder / "mine").mkdir()  # strategy_dirs must exist (bot.config.preflight)
    (folder / "config.yaml").write_text(
        f"state_dir: state\nstrategy_dirs: [mine]\nfeeds: {{replay: {{path: {REPLAY}}}}}\n")
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


# -- what `bot run` would reject, `bot config check` rejects: one line, exit 2, nothing created ------

DEFAULT_STRATEGY = yaml.safe_load((ROOT / "config.yaml").read_text())["strategies"][0]
DATA_FIX = "point it at a generic results CSV (docs/reference/odds-csv.md), nflverse or football-data.co.uk"
PARAMS_FIX = ("fix: correct the params of strategy 'value_consensus' (`bot strategy list` shows each parameter, its "
              "type and default)")
YAML_FIX = "fix: correct the YAML at that line and column (indent with spaces, not tabs; quote values holding ': ' or ' #')"


def _strategy(**params: object) -> list[dict[str, object]]:
    """The default config's strategy with `params` changed (a value None drops that param)."""
    merged = {k: v for k, v in {**DEFAULT_STRATEGY["params"], **params}.items() if v is not None}
    return [{**DEFAULT_STRATEGY, "params": merged}]


def _relative_results_after_copying_the_config(tmp: Path) -> tuple[Path, str]:
    cfg = write_config(tmp, settlement={"nfl_results": "bot/data/nfl_results_2025-11-16.csv"})
    missing = tmp / "bot" / "data" / "nfl_results_2025-11-16.csv"
    return cfg, (f"config error: settlement.nfl_results: {missing} does not exist; fix: {DATA_FIX} "
                 f"(relative paths start at the config file's folder, {tmp})")


def _state_dir_under_a_regular_file(tmp: Path) -> tuple[Path, str]:
    (tmp / "notes.txt").write_text("a file, not a folder\n")
    cfg = write_config(tmp, state_dir=str(tmp / "notes.txt" / "state"))
    return cfg, (f"config error: state_dir: cannot create {tmp / 'notes.txt' / 'state'}: {tmp / 'notes.txt'} is a "
                 "file, not a folder; fix: point state_dir at a folder this user can write (it holds the ledger "
                 "bot.db and logs/)")


def _unknown_log_level(tmp: Path) -> tuple[Path, str]:
    cfg = write_config(tmp, logging={"level": "LOUD"})
    return cfg, ("config error: logging.level: not a log level (known: TRACE, DEBUG, INFO, SUCCESS, WARNING, ERROR, "
                 "CRITICAL) (got 'LOUD'); fix: correct `logging.level` in the config file or set BOT_LOGGING__LEVEL")


def _bad_log_rotation(tmp: Path) -> tuple[Path, str]:
    cfg = write_config(tmp, logging={"rotation": "every so often"})
    return cfg, ("config error: logging.rotation: Cannot parse rotation from: 'every so often'; fix: a size like "
                 "'50 MB', a duration like '1 day' or a time like '00:00' (or set BOT_LOGGING__ROTATION)")


def _percent_min_edge(tmp: Path) -> tuple[Path, str]:
    cfg = write_config(tmp, strategies=_strategy(min_edge="3%"))
    return cfg, ("config error: strategies: strategy 'value_consensus': params.min_edge: expected a number, "
                 f"got '3%'; {PARAMS_FIX}")


def _misspelt_param(tmp: Path) -> tuple[Path, str]:
    cfg = write_config(tmp, strategies=_strategy(min_edge=None, min_edeg=0.03))
    return cfg, ("config error: strategies: strategy 'value_consensus': params.min_edeg: unknown parameter (expected "
                 "one of: bankroll, bookmakers, consensus_exclude_offer, devig, expiry_seconds, kelly_multiplier, "
                 "markets, max_kelly_fraction, max_price, max_stake, min_consensus_books, min_edge, "
                 f"min_minutes_to_start, min_price, min_stake, pre_match_only, sharp_books, sports); {PARAMS_FIX}")


def _unknown_market_name(tmp: Path) -> tuple[Path, str]:
    cfg = write_config(tmp, strategies=_strategy(markets=["h2h", "moneyline"]))
    return cfg, ("config error: strategies: strategy 'value_consensus': param markets: 'h2h' is not a market type "
                 "the feeds produce (known: 1x2, match_odds, moneyline, place, spread, team_total, total, win); fix: use only the known "
                 "names in the markets of strategy 'value_consensus', or leave it empty for every market")


def _unknown_strategy_path(tmp: Path) -> tuple[Path, str]:
    cfg = write_config(tmp, strategies=[{**DEFAULT_STRATEGY, "path": "valu"}])
    return cfg, ("config error: strategies: strategy 'value_consensus': path 'valu': expected `package.module:Class` "
                 "or an entry point of group 'bot.strategies' (installed: arbitrage, exchange, template, value); fix: correct "
                 "the `path` of strategy 'value_consensus' (`bot strategy list` shows the installed strategies)")


def _missing_replay(tmp: Path) -> tuple[Path, str]:
    cfg = write_config(tmp, feeds={"replay": {"path": "recordings/sunday.jsonl.gz"}})
    return cfg, (f"config error: feeds.replay.path: {tmp / 'recordings' / 'sunday.jsonl.gz'} does not exist; fix: "
                 f"point it at a recording (relative paths start at the config file's folder, {tmp})")


def _missing_strategy_dir(tmp: Path) -> tuple[Path, str]:
    cfg = write_config(tmp, strategy_dirs=["my_strategies"])
    return cfg, (f"config error: strategy_dirs[0]: {tmp / 'my_strategies'} is not a folder; fix: create it, or "
                 f"remove it from strategy_dirs (relative paths start at the config file's folder, {tmp})")


def _missing_mapping_file(tmp: Path) -> tuple[Path, str]:
    cfg = write_config(tmp, mapping={"file": "/nonexistent/mapping.yaml"})
    return cfg, ("config error: mapping.file: /nonexistent/mapping.yaml does not exist; fix: point it at a mapping "
                 "YAML (or set mapping.file: null)")


def _tab_indented_yaml(tmp: Path) -> tuple[Path, str]:
    cfg = write_config(tmp)
    cfg.write_text("mode: paper\n\tinstance: desk\n" + cfg.read_text())
    return cfg, (f"config error: {cfg}:2:1: found character '\\t' that cannot start any token (while scanning for "
                 f"the next token); {YAML_FIX}")


MISTAKES = [_relative_results_after_copying_the_config, _state_dir_under_a_regular_file, _unknown_log_level,
            _bad_log_rotation, _percent_min_edge, _misspelt_param, _unknown_market_name, _unknown_strategy_path,
            _missing_replay, _missing_strategy_dir, _missing_mapping_file, _tab_indented_yaml]


@pytest.mark.parametrize("mistake", MISTAKES, ids=lambda f: f.__name__.strip("_"))
def test_each_mistake_stops_config_check_and_run_with_the_same_one_line(
    tmp_path: Path, mistake: Callable[[Path], tuple[Path, str]]
) -> None:
    tmp = tmp_path.resolve()
    cfg, expected = mistake(tmp)
    before = sorted(tmp.rglob("*"))
    for command in (["config", "check"], ["run"]):
        out = run_bot(*command, "-c", str(cfg), cwd=tmp, timeout=120)
        assert (out.returncode, out.stderr.splitlines()) == (2, [expected]), command
        assert out.stdout == ""
    assert sorted(tmp.rglob("*")) == before  # no state dir, ledger, lock or log was created


@pytest.mark.parametrize(
    ("text", "where", "problem"),
    [
        ("mode: paper\n\tinstance: desk\n", "2:1",
         "found character '\\t' that cannot start any token (while scanning for the next token)"),
        ("strategy_dirs: [mine\n", "2:1", ("expected ',' or ']', but got '<stream end>' (while parsing a flow "
         "sequence at 1:16)")),
        ("risk:\n  max_stake: 1\n max_price: 2\n", "3:2",
         "expected <block end>, but found '<block mapping start>' (while parsing a block mapping at 1:1)"),
        ('instance: "desk\n', "2:1", "found unexpected end of stream (while scanning a quoted scalar at 1:11)"),
        ("instance: *desk\n", "1:11", "found undefined alias 'desk'"),
        ("instance: @desk\n", "1:11", ("found character '@' that cannot start any token (while scanning for the "
         "next token)")),
        ("mode: paper\nmode: live: now\n", "2:11", "mapping values are not allowed here"),
        ("instance: !!python/object:os.system x\n", "1:11",
         "could not determine a constructor for the tag 'tag:yaml.org,2002:python/object:os.system'"),
    ],
)
def test_yaml_syntax_errors_are_one_line_naming_file_line_and_column(
    tmp_path: Path, text: str, where: str, problem: str
) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_settings(cfg)
    assert exc.value.lines == [f"config error: {cfg}:{where}: {problem}; {YAML_FIX}"]


@pytest.mark.parametrize(
    ("content", "line"),
    [
        (b"instance: desk\x00\n", ("config error: {cfg}:1:15: unacceptable character #x0000: special characters "
                                  "are not allowed; fix: remove that character")),
        (b"instance: d\xe9sk\n", "config error: {cfg}: not UTF-8 text (byte 11); fix: save it as UTF-8"),
        (b"- mode: paper\n", ("config error: {cfg}: holds a list, not a mapping of settings; fix: write one "
                             "`key: value` per line, e.g. `mode: paper` (see config.yaml)")),
        (b"mode paper\n", ("config error: {cfg}: holds plain text, not a mapping of settings; fix: write one "
                          "`key: value` per line, e.g. `mode: paper` (see config.yaml)")),
        (b"instance: 2024-13-45\n", ("config error: {cfg}: invalid YAML value: ValueError: month must be in 1..12; "
                                    "fix: quote the value or correct it")),
        (b"1: desk\n", ("config error: 1: Extra inputs are not permitted (got 'desk'); fix: remove it or check its "
                       "spelling (`bot config schema` lists every key)")),
    ],
)
def test_files_that_are_not_a_yaml_mapping_are_one_line(tmp_path: Path, content: bytes, line: str) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_bytes(content)
    with pytest.raises(ConfigError) as exc:
        load_settings(cfg)
    assert exc.value.lines == [line.format(cfg=cfg)]


# -- a ledger SQLite cannot use: one line naming the file and the fix, exit 2 ----------------------


def test_a_ledger_that_is_not_sqlite_stops_run_report_and_risk_with_one_line(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    db = tmp_path / "state" / "bot.db"
    db.parent.mkdir()
    garbage = b"this is not a SQLite database\n" * 64
    db.write_bytes(garbage)
    expected = [(f"ledger error: {db}: file is not a database; fix: move bot.db aside or `bot run --fresh` (a new "
                "ledger, the old file kept beside it), or point state_dir at the right folder")]
    for command in (["run"], ["report"], ["risk", "status"], ["risk", "halt"]):
        out = run_bot(*command, "-c", str(cfg), cwd=tmp_path, timeout=120)
        assert (out.returncode, out.stderr.splitlines()) == (2, expected), command
    assert db.read_bytes() == garbage  # untouched


def test_a_ledger_another_process_keeps_locked_stops_run_with_one_line(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    db = tmp_path / "state" / "bot.db"
    Ledger(db).close()
    holder = sqlite3.connect(db, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another writer, for longer than the 5 s busy timeout
        expected = [(f"ledger error: {db}: database is locked; fix: another process holds it for writing: stop it, "
                    "or give this bot its own state_dir")]
        for command in (["run"], ["risk", "halt"]):
            out = run_bot(*command, "-c", str(cfg), cwd=tmp_path, timeout=120)
            assert (out.returncode, out.stderr.splitlines()) == (2, expected), command
        report = run_bot("report", "--json", "-c", str(cfg), cwd=tmp_path, timeout=120)  # reading still works
        assert report.returncode == 0, report.stderr
        assert ledger_rows(db, "SELECT count(*) FROM orders") == [(0,)]
    finally:
        holder.execute("ROLLBACK")
        holder.close()
