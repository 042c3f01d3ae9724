"""`python -m bot run` from a user's folder that has its own `strategies/` package: the user's
package neither shadows nor is shadowed by the bot's modules (docs/architecture.md, "Strategies")."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.engine.conftest import run_bot, write_config

USER_VALUE = '''
from bot.strategy import Strategy, StrategyParams


class Longshots(Strategy):
    class Params(StrategyParams):
        min_price: float = 4.0

    def on_odds(self, *, update, **kwargs):
        if update.price is not None and update.price >= self.params.min_price:
            return self.ctx.signal(update.selection, stake=2, price=update.price, bookmakers=(update.bookmaker,))
        return None
'''


def test_run_from_a_folder_with_its_own_strategies_package(tmp_path: Path) -> None:
    package = tmp_path / "strategies"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "value.py").write_text(USER_VALUE)
    # the bundled replay and results by absolute path; `value` is the built-in entry point,
    # `strategies.value:Longshots` the user's module, importable from the working folder
    cfg = write_config(tmp_path, name="cfg.yaml", strategies=[
        {"name": "builtin_value", "path": "value", "params": {"markets": ["moneyline", "spread", "total"]}},
        {"name": "user_longshots", "path": "strategies.value:Longshots"},
    ])
    out = run_bot("run", "-c", cfg.name, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    con = sqlite3.connect(tmp_path / "state" / "bot.db")
    try:
        orders = dict(con.execute("select strategy, count(*) from orders group by strategy").fetchall())
    finally:
        con.close()
    assert orders.get("builtin_value", 0) > 0 and orders.get("user_longshots", 0) > 0, orders
