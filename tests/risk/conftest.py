from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.execution.bookmakers import BookmakerRoute
from bot.risk.config import RiskConfig
from tests.risk.factories import Env


@pytest.fixture
def make_env(tmp_path: Path) -> Callable[..., Env]:
    made: list[Env] = []

    def make(requires_mapping: bool = False, route: BookmakerRoute | None = None, **config: Any) -> Env:
        env = Env(tmp_path / f"env{len(made)}", config=RiskConfig(**config), requires_mapping=requires_mapping,
                  route=route)
        made.append(env)
        return env

    yield make
    for env in made:
        env.ledger.close()


@pytest.fixture
def env(make_env: Callable[..., Env]) -> Env:
    return make_env()
