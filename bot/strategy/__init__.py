"""The strategy stage (docs/architecture.md, "Pipeline" and "Strategies"): the plug-in API a
strategy is written against (`api`), the loader that finds strategy classes by path or entry point
(`loader`), the host that runs the configured instances (`host`), the built-in strategies
(`builtin`), and `bot strategy list|new` (`cli`, with `catalog` and `scaffold`).

A user strategy imports what it needs from here:

    from bot.strategy import Strategy, StrategyParams

The names load on first use (PEP 562 module `__getattr__`): `bot --help` imports `bot.strategy.cli`
and so this package, and must not load the API's ledger (sqlalchemy) with it (tests/test_cli_imports.py).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.strategy.api import Interests, Strategy, StrategyContext, StrategyParams
    from bot.strategy.host import StrategyHost
    from bot.strategy.loader import StrategyLoadError

_MODULE_OF = {"Interests": "api", "Strategy": "api", "StrategyContext": "api", "StrategyParams": "api",
              "StrategyHost": "host", "StrategyLoadError": "loader"}
__all__ = ["Interests", "Strategy", "StrategyContext", "StrategyHost", "StrategyLoadError", "StrategyParams"]


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value
