"""Helpers for running the real `bot` command on a config written into a temporary folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).parents[2]
DATA = ROOT / "bot" / "data"


def bot_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("BOT_")} | (extra or {})


def run_bot(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True, text=True,
                          env=bot_env(env), cwd=cwd, timeout=timeout)


def write_config(folder: Path, **changes: Any) -> Path:
    """The default config.yaml with absolute data paths, a private state dir and `changes`
    merged in (one level deep)."""
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
    cfg["feeds"]["replay"]["path"] = str(DATA / "nfl_raw_snapshots_2025-11-16.jsonl.gz")
    cfg["settlement"]["nfl_results"] = str(DATA / "nfl_results_2025-11-16.csv")
    cfg["state_dir"] = str(folder / "state")
    cfg["logging"]["progress"] = False
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path
