"""The strategy stage (docs/architecture.md, "Pipeline" and "Strategies"): the plug-in API a
strategy is written against (`api`), the loader that finds strategy classes by path or entry point
(`loader`), the host that runs the configured instances (`host`), the built-in strategies
(`builtin`), and `bot strategy list|new` (`cli`, with `catalog` and `scaffold`).

A user strategy imports what it needs from here:

    from bot.strategy import Strategy, StrategyParams
"""

from bot.strategy.api import Interests, Strategy, StrategyContext, StrategyParams
from bot.strategy.host import StrategyHost
from bot.strategy.loader import StrategyLoadError

__all__ = ["Interests", "Strategy", "StrategyContext", "StrategyHost", "StrategyLoadError", "StrategyParams"]
