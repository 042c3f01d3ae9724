"""`bot strategy list|new` through the real command line: what is listed, a new strategy file
that runs at once on the bundled replay, and the refusals (existing file, bad name)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.engine.conftest import run_bot, write_config

BROKEN_STRATEGY = "from bot.strategy import Strategy\n\nclass Broken(Strategy):\n    pass\nraise RuntimeError('bug')\n"


def test_list_shows_installed_and_configured_strategies_with_their_params(tmp_path: Path) -> None:
    user = tmp_path / "mine"
    assert run_bot("strategy", "new", "longshots", "--dir", str(user), cwd=tmp_path).returncode == 0
    cfg = write_config(tmp_path, strategy_dirs=[str(user)], strategies=[
        {"name": "value_nfl", "path": "value", "params": {"min_edge": 0.05}},
        {"name": "longshots", "path": "longshots.py:LongshotsStrategy", "params": {"min_price": 4}},
    ])
    out = run_bot("strategy", "list", "-c", str(cfg), "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)

    installed = {s["name"]: s for s in data["installed"]}
    assert {"value", "arbitrage", "exchange", "template"} <= set(installed)
    assert installed["value"]["class"] == "bot.strategy.builtin.value:ValueStrategy"
    min_edge = next(p for p in installed["value"]["params"] if p["name"] == "min_edge")
    assert min_edge == {"name": "min_edge", "type": "float", "required": False, "default": 0.03,
                        "description": "minimum EV per unit stake (0.03 = 3%)", "constraints": [">= 0", "< 1"]}
    assert installed["value"]["params_schema"]["properties"]["min_edge"]["default"] == 0.03
    assert all(p["description"] for s in installed.values() for p in s["params"])  # every param explained

    configured = {s["name"]: s for s in data["configured"]}
    assert configured["value_nfl"]["values"]["min_edge"] == 0.05
    assert configured["value_nfl"]["values"]["kelly_multiplier"] == 0.25  # defaults filled in
    assert configured["longshots"]["file"] == str(user / "longshots.py")
    assert configured["longshots"]["values"]["min_price"] == 4
    assert [p["name"] for p in configured["longshots"]["params"]][:2] == ["min_price", "stake"]

    text = run_bot("strategy", "list", "-c", str(cfg), cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    assert "minimum EV per unit stake" in text.stdout and "longshots.py" in text.stdout


def test_list_names_a_configured_strategy_that_cannot_load_and_exits_1(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text(BROKEN_STRATEGY)
    cfg = write_config(tmp_path, strategy_dirs=[str(tmp_path)], strategies=[
        {"name": "value_ok", "path": "value"},
        {"name": "bad_params", "path": "value", "params": {"min_edge": "abc"}},
        {"name": "bad_import", "path": "broken.py:Broken"},
    ])
    out = run_bot("strategy", "list", "-c", str(cfg), "--json", cwd=tmp_path)
    assert out.returncode == 1
    configured = {s["name"]: s for s in json.loads(out.stdout)["configured"]}
    assert "error" not in configured["value_ok"]
    assert configured["bad_params"]["error"] == "strategy 'bad_params': params.min_edge: expected a number, got 'abc'"
    assert configured["bad_import"]["error"].startswith("strategy 'bad_import': importing 'broken.py:Broken' failed: RuntimeError: bug")


def test_new_strategy_runs_at_once_on_the_default_replay(tmp_path: Path) -> None:
    out = run_bot("strategy", "new", "longshots", "--dir", "my_strategies", "-c", "config.yaml", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    target = tmp_path / "my_strategies" / "longshots.py"
    assert target.is_file() and "class LongshotsStrategy(Strategy):" in target.read_text()
    assert str(target.relative_to(tmp_path)) in out.stderr

    # stdout is exactly the YAML to add: use it as printed
    lines = yaml.safe_load(out.stdout)
    assert lines["strategy_dirs"] == ["my_strategies"]
    assert lines["strategies"][0]["name"] == "longshots"
    cfg = write_config(tmp_path, **lines)
    run = run_bot("run", "-c", str(cfg), cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    report = run_bot("report", "-c", str(cfg), "--json", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    data = json.loads(report.stdout)
    assert data["signals"]["by_strategy"].get("longshots", 0) > 0
    assert data["orders"]["total"] > 0


def test_new_refuses_to_overwrite_and_bad_names(tmp_path: Path) -> None:
    (tmp_path / "strategies").mkdir()
    existing = tmp_path / "strategies" / "mine.py"
    existing.write_text("# my work\n")
    out = run_bot("strategy", "new", "mine", cwd=tmp_path)
    assert out.returncode == 1 and out.stdout == ""
    refusal = f"{Path('strategies') / 'mine.py'} exists: not overwritten; fix: choose another name or --dir"
    assert out.stderr.strip().splitlines() == [refusal]
    assert existing.read_text() == "# my work\n"

    for bad in ("1st", "my-strategy", "class"):
        out = run_bot("strategy", "new", bad, cwd=tmp_path)
        assert out.returncode == 1 and "expected a Python identifier" in out.stderr
        assert not (tmp_path / "strategies" / f"{bad}.py").exists()
