"""Live preflight: the placement timeout must be shorter than the order expiry, or a lost answer
could only be looked up after the order expired (docs/reference/abp.md §8.3, §8.4)."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from bot.config.preflight import preflight
from bot.config.settings import Settings


def _live(tmp_path: Path, timeout: float, expiry: float) -> Settings:
    replay = tmp_path / "odds.jsonl"
    replay.write_text("")
    return Settings.model_validate({
        "mode": "live", "state_dir": str(tmp_path / "state"),
        "abp": {"api_key": SecretStr("k"), "place_timeout_seconds": timeout},
        "execution": {"expiry_seconds": expiry},
        "feeds": {"replay": {"path": str(replay)}},
        "strategies": [],
    })


def test_placement_timeout_at_or_above_expiry_is_one_line(tmp_path: Path) -> None:
    lines = preflight(_live(tmp_path, timeout=10, expiry=5), tmp_path)
    timeout_lines = [line for line in lines if "abp.place_timeout_seconds" in line]
    assert timeout_lines == [
        ("config error: abp.place_timeout_seconds: 10.0 s is not shorter than execution.expiry_seconds (5.0 s); "
         "fix: set it below 5.0")
    ]


def test_placement_timeout_below_expiry_passes(tmp_path: Path) -> None:
    assert not [line for line in preflight(_live(tmp_path, timeout=3, expiry=5), tmp_path)
                if "place_timeout" in line]
