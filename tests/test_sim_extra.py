"""The local servers need the `sim` extra (docs/architecture.md, "Simulators"): without it,
`bot abp serve` and `bot feeds serve-boltodds` exit 2 with one line naming the install command,
in a fresh interpreter where starlette or uvicorn cannot be imported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.engine.conftest import bot_env

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "tests" / "data" / "boltodds" / "message_samples.json"
OLYMPUS = ROOT / "tests" / "data" / "olympus" / "recorded.json"


def _bot_without(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    script = f"import sys\nsys.modules[{module!r}] = None\nfrom bot.cli import app\napp()\n"
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, check=False, cwd=ROOT,
                          env=bot_env(), timeout=60)


@pytest.mark.parametrize("missing", ["starlette", "uvicorn"])
@pytest.mark.parametrize(
    ("command", "args"),
    [("bot abp serve", ("abp", "serve", "--port", "0")),
     ("bot feeds serve-boltodds", ("feeds", "serve-boltodds", str(SAMPLES), "--port", "0")),
     ("bot feeds serve-scraping", ("feeds", "serve-scraping", "--key", "k", "--port", "0")),
     ("bot feeds serve-oddspapi", ("feeds", "serve-oddspapi", str(ROOT / "tests" / "data" / "oddspapi"),
                                   "--port", "0")),
     ("bot feeds serve-olympus", ("feeds", "serve-olympus", str(OLYMPUS), "--port", "0"))],
)
def test_server_commands_without_the_sim_extra_exit_2_with_one_line(
    missing: str, command: str, args: tuple[str, ...]
) -> None:
    result = _bot_without(missing, *args)
    assert result.returncode == 2
    assert result.stderr == f"{command} needs the simulators: pip install 'betbot[sim]'\n"
    assert result.stdout == ""
