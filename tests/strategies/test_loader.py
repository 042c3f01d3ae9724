"""Loading strategies from config: a user file outside the package, entry points, several
instances of one class, one-line errors; the host's dispatch and routing."""

from __future__ import annotations

import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from bot.config.settings import StrategySpec, load_settings
from bot.risk.config import RiskConfig
from bot.strategy.host import StrategyHost
from bot.strategy.loader import StrategyLoadError
from bot.types import BetStatus, Fill, Verdict
from tests.risk.factories import Env, odds, selection

USER_STRATEGY = '''
from decimal import Decimal
from bot.strategy import Strategy, StrategyParams

class LongshotBacker(Strategy):
    class Params(StrategyParams):
        min_price: float = 3.0
        stake: Decimal = Decimal("5")

    def on_odds(self, **kwargs):  # takes everything by keyword: new fields never break it
        update = kwargs["update"]
        if update.price and update.price >= self.params.min_price:
            return self.ctx.signal(update.selection, stake=self.params.stake, price=update.price,
                                   bookmakers=(update.bookmaker,), reason="longshot")

    async def on_fill(self, *, fill, order, **kwargs):
        self.ctx.log.info("filled {}", fill.bet_id)
        return [self.ctx.signal(self.ctx.book.selection(order.selection), stake=1, price=fill.price,
                                bookmakers=(fill.bookmaker,), reason="after fill")]
'''


def _write_config(tmp_path: Path, module: str, path: str, params: str) -> Path:
    user_dir = tmp_path / "my_strategies"
    user_dir.mkdir()
    (user_dir / f"{module}.py").write_text(USER_STRATEGY)
    config = tmp_path / "config.yaml"
    config.write_text(textwrap.dedent(f"""
        strategy_dirs: [{user_dir}]
        strategies:
          - name: longshots
            path: {path}
            params: {params}
    """))
    return config


@pytest.mark.parametrize("form", ["module", "file"])
async def test_user_strategy_file_loads_from_config_and_trades(tmp_path: Path, form: str) -> None:
    module = f"user_longshot_{form}"
    path = f"{module}:LongshotBacker" if form == "module" else f"{module}.py:LongshotBacker"
    settings = load_settings(_write_config(tmp_path, module, path, "{min_price: 2.5, stake: 7}"))
    env = Env(tmp_path / "env", config=RiskConfig())
    host = StrategyHost.load(settings.strategies, book=env.book, clock=env.clock, ledger=env.ledger,
                             strategy_dirs=settings.strategy_dirs)
    await host.start()
    sel = selection("away")
    update = odds(sel, "bookA", 2.8, env.clock.now())
    env.book.apply(update)
    signals = await host.on_odds(update)
    assert [(s.strategy, s.stake, s.price, s.bookmakers) for s in signals] == [
        ("longshots", Decimal("7.00"), 2.8, ("bookA",))
    ]
    decision = await env.risk.evaluate(signals[0], None)
    assert decision.verdict is Verdict.APPROVED
    # the executor's events reach the owning strategy; its signals come out on the next timer
    request_uuid = env.submit(decision)
    await host.on_execution_event(Fill(1, request_uuid, "bookA", Decimal(7), 2.8, BetStatus.PLACED, env.clock.now()))
    follow_up = await host.on_timer()
    assert [s.reason for s in follow_up] == ["after fill"]
    await host.stop()
    env.ledger.close()


def test_wrong_param_type_is_one_line_naming_strategy_field_and_type(tmp_path: Path) -> None:
    settings = load_settings(_write_config(tmp_path, "user_longshot_bad", "user_longshot_bad:LongshotBacker",
                                           "{min_price: abc}"))
    env = Env(tmp_path / "env")
    with pytest.raises(StrategyLoadError) as exc:
        StrategyHost.load(settings.strategies, book=env.book, clock=env.clock, ledger=env.ledger,
                          strategy_dirs=settings.strategy_dirs)
    assert str(exc.value) == "strategy 'longshots': params.min_price: expected a number, got 'abc'"
    env.ledger.close()


@pytest.mark.parametrize(
    ("spec", "line"),
    [
        (StrategySpec(name="value_fast", path="value", params={"min_edge": "abc"}),
         "strategy 'value_fast': params.min_edge: expected a number, got 'abc'"),
        (StrategySpec(name="v", path="value", params={"min_consensus_books": 2.5}),
         "strategy 'v': params.min_consensus_books: expected an integer, got 2.5"),
        (StrategySpec(name="v", path="value", params={"min_edgee": 0.1}),
         "strategy 'v': params.min_edgee: unknown parameter (expected one of: "),
        (StrategySpec(name="v", path="value", params={"devig": "magic"}),
         "strategy 'v': params.devig: expected 'multiplicative', 'additive', 'power' or 'shin', got 'magic'"),
        (StrategySpec(name="x", path="nope"),
         "strategy 'x': path 'nope': expected `package.module:Class` or an entry point of group 'bot.strategies'"),
        (StrategySpec(name="x", path="no_such_module_zz:Foo"), "strategy 'x': module 'no_such_module_zz' not found"),
        (StrategySpec(name="x", path="bot.types:Signal"), "strategy 'x': 'bot.types:Signal' is not a subclass"),
        (StrategySpec(name="x", path="bot.strategy.builtin.value:Nope"), "strategy 'x': 'bot.strategy.builtin.value' has no attribute 'Nope'"),
    ],
)
def test_load_errors_are_single_lines(env: Env, spec: StrategySpec, line: str) -> None:
    with pytest.raises(StrategyLoadError) as exc:
        StrategyHost.load([spec], book=env.book, clock=env.clock, ledger=env.ledger)
    assert len(exc.value.lines) == 1 and "\n" not in exc.value.lines[0]
    assert exc.value.lines[0].startswith(line)


async def test_entry_points_and_several_instances_of_one_class(env: Env) -> None:
    specs = [
        StrategySpec(name="value_nba", path="value", params={"sports": ["NBA"], "min_edge": 0.01}),
        StrategySpec(name="value_nfl", path="value", params={"sports": ["NFL"], "min_edge": 0.05}),
        StrategySpec(name="arb", path="arbitrage"),
        StrategySpec(name="tpl", path="bot.strategy.builtin.template:TemplateStrategy", params={"min_price": 2.5}),
        StrategySpec(name="off", path="does_not:Matter", enabled=False),
    ]
    host = StrategyHost.load(specs, book=env.book, clock=env.clock, ledger=env.ledger)
    assert host.names == ["value_nba", "value_nfl", "arb", "tpl"]
    assert host.strategy("value_nba").params.min_edge == 0.01
    assert host.strategy("value_nfl").params.min_edge == 0.05
    with pytest.raises(StrategyLoadError, match="params.min_edge: expected a number"):
        host.reload_params("value_nfl", {"min_edge": "x"})
    host.reload_params("value_nfl", {"min_edge": 0.07, "sports": ["NHL"]})
    assert host.strategy("value_nfl").params.min_edge == 0.07
    assert host.strategy("value_nfl").interests().sports == {"NHL"}


async def test_dispatch_only_matching_interests_and_hook_errors_do_not_stop_the_loop(tmp_path: Path, env: Env) -> None:
    (tmp_path / "picky_strats.py").write_text(textwrap.dedent('''
        from bot.strategy import Strategy, StrategyParams

        class Picky(Strategy):
            class Params(StrategyParams):
                sports: list[str] = []
                bookmakers: list[str] = []

            def __init__(self, ctx):
                super().__init__(ctx)
                self.seen = []

            def on_odds(self, *, update, **kwargs):
                self.seen.append((update.selection.fixture.sport, update.bookmaker))
                if update.bookmaker == "boom":
                    raise RuntimeError("strategy bug")
                return ["not a signal"]
    '''))
    specs = [StrategySpec(name="picky", path="picky_strats:Picky", params={"sports": ["NFL"], "bookmakers": ["bookA", "boom"]})]
    host = StrategyHost.load(specs, book=env.book, clock=env.clock, ledger=env.ledger, strategy_dirs=[tmp_path])
    now = env.clock.now()
    for update in (odds(selection(), "bookA", 2.0, now), odds(selection(), "bookB", 2.0, now),
                   odds(selection(), "boom", 2.0, now)):
        assert await host.on_odds(update) == []
    seen = host.strategy("picky").seen
    assert seen == [("NFL", "bookA"), ("NFL", "boom")]
    assert host.errors["picky"] == 2  # one garbage return, one exception


def test_reload_merges_into_the_current_params_and_a_refused_reload_changes_nothing(env: Env) -> None:
    spec = StrategySpec(name="v", path="value", params={"min_edge": 0.05, "sports": ["NFL"], "max_stake": 20})
    host = StrategyHost.load([spec], book=env.book, clock=env.clock, ledger=env.ledger)
    host.reload_params("v", {"min_edge": 0.07})
    host.reload_params("v", {"max_stake": 30})
    params = host.strategy("v").params
    # each reload changed only its own field: earlier reloads and the config's values stay
    assert (params.min_edge, params.max_stake, params.sports) == (0.07, Decimal(30), ["NFL"])
    assert params.kelly_multiplier == 0.25  # a default stays a default

    for bad, line in [
        ({"min_edge": "x"}, "strategy 'v': params.min_edge: expected a number, got 'x'"),
        ({"max_stake": 40, "min_price": 20.0}, "strategy 'v': params: expected min_price must be below max_price"),
        ({"min_edgee": 0.1}, "strategy 'v': params.min_edgee: unknown parameter (expected one of: "),
    ]:
        with pytest.raises(StrategyLoadError) as exc:
            host.reload_params("v", bad)
        assert len(exc.value.lines) == 1 and exc.value.lines[0].startswith(line), exc.value.lines
        assert host.strategy("v").params is params  # nothing applied, not even max_stake=40

    host.reload_params("v", {"sports": ["NHL"]})
    assert host.strategy("v").interests().sports == {"NHL"} and host.strategy("v").params.min_edge == 0.07
