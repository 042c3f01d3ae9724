"""Find and validate strategy plug-ins (docs/architecture.md, "Strategies").

A spec's `path` is either `package.module:Class` (importable from sys.path or from a directory in
config `strategy_dirs`), `some/file.py:Class` (absolute or relative to a strategy dir), or the name
of an entry point in the `bot.strategies` group (`value`, `arbitrage`, `template`, or one a user
package registers). Every problem becomes ONE line naming the strategy, worded by the shared
formatter of bot.config.errors, e.g.
    strategy 'value_fast': params.min_edge: expected a number, got 'abc'
A `markets` param naming a market type no feed produces is an error too (`check_markets`).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bot.config.errors import format_param_errors
from bot.plugins import import_file
from bot.strategy.api import MARKET_TYPES, Strategy, StrategyParams

ENTRY_POINT_GROUP = "bot.strategies"


class StrategyLoadError(Exception):
    """A strategy could not be loaded; `lines` holds one message per problem."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def _fail(name: str, message: str) -> StrategyLoadError:
    return StrategyLoadError([f"strategy '{name}': {message}"])


def validate_params(name: str, cls: type[Strategy], params: dict[str, Any]) -> StrategyParams:
    """Validate `params` with `cls.Params`.

    Raises:
        StrategyLoadError: one line per invalid field ("strategy 'x': params.f: expected ...").
    """
    try:
        return cls.Params.model_validate(params)
    except ValidationError as exc:
        raise StrategyLoadError(format_param_errors(name, exc, sorted(cls.Params.model_fields))) from None


def check_markets(name: str, markets: Iterable[str]) -> None:
    """Reject market names that are not one of `MARKET_TYPES` (the types the feeds normalise to:
    moneyline, 1x2, spread, total, team_total), e.g. The Odds API's `h2h`, which would match
    nothing (docs/architecture.md, "Strategies").

    Raises:
        StrategyLoadError: one line naming the strategy, the unknown names and the known ones
            ("strategy 'x': param markets: 'h2h' is not a market type the feeds produce (known: ...)").
    """
    unknown = sorted(set(markets) - MARKET_TYPES)
    if unknown:
        verb = "is not a market type" if len(unknown) == 1 else "are not market types"
        raise _fail(name, f"param markets: {', '.join(repr(m) for m in unknown)} {verb} the feeds produce "
                          f"(known: {', '.join(sorted(MARKET_TYPES))})")


def _import_module(name: str, module_ref: str, strategy_dirs: list[Path]) -> Any:
    if module_ref.endswith(".py"):
        candidates = [Path(module_ref)] + [d / module_ref for d in strategy_dirs]
        for file in candidates:
            if file.is_file():
                return import_file(file, "strategy")
        raise _fail(name, f"file {module_ref!r} not found (looked in {[str(d) for d in strategy_dirs]})")
    for d in strategy_dirs:  # appended, so a user directory never shadows installed modules
        if str(d) not in sys.path:
            sys.path.append(str(d))
    try:
        return importlib.import_module(module_ref)
    except ModuleNotFoundError as exc:
        raise _fail(
            name,
            f"module {module_ref!r} not found ({exc}); looked in strategy_dirs "
            f"{[str(d) for d in strategy_dirs]} and sys.path",
        ) from None


def installed() -> list[EntryPoint]:
    """The strategies registered in the `bot.strategies` entry-point group, by name."""
    return sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)


def _entry_point(name: str, ep_name: str) -> Any:
    found = [ep for ep in installed() if ep.name == ep_name]
    if not found:
        known = [ep.name for ep in installed()]
        raise _fail(
            name,
            f"path {ep_name!r}: expected `package.module:Class` or an entry point of group "
            f"{ENTRY_POINT_GROUP!r} (installed: {', '.join(known) or 'none'})",
        )
    return found[0].load()


def resolve_class(name: str, path: str, strategy_dirs: list[Path] | None = None) -> type[Strategy]:
    """The Strategy subclass named by `path` (see module docstring).

    Raises:
        StrategyLoadError: not found, import failed, or not a Strategy subclass (one line).
    """
    dirs = [Path(d) for d in strategy_dirs or []]
    try:
        if ":" in path:
            module_ref, _, attr = path.rpartition(":")
            obj = getattr(_import_module(name, module_ref, dirs), attr, None)
            if obj is None:
                raise _fail(name, f"{module_ref!r} has no attribute {attr!r}")
        else:
            obj = _entry_point(name, path)
    except StrategyLoadError:
        raise
    except Exception as exc:  # noqa: BLE001 - a user's module may raise anything at import: one line, no traceback
        raise _fail(name, f"importing {path!r} failed: {type(exc).__name__}: {exc}") from None
    if not (isinstance(obj, type) and issubclass(obj, Strategy)):
        raise _fail(name, f"{path!r} is not a subclass of bot.strategy.Strategy")
    return obj
