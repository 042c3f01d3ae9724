"""Find and validate strategy plug-ins (issue 5, build point 2).

A spec's `path` is either `package.module:Class` (importable from sys.path or from a directory in
config `strategy_dirs`), `some/file.py:Class` (absolute or relative to a strategy dir), or the name
of an entry point in the `bot.strategies` group (`value`, `arbitrage`, `template`, or one a user
package registers). Every problem becomes ONE line naming the strategy, e.g.
    strategy 'value_fast': params.min_edge: expected a number, got 'abc'
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bot.strategy.api import Strategy, StrategyParams

ENTRY_POINT_GROUP = "bot.strategies"

# pydantic error type -> what the user should have written
_EXPECTED = {
    "float_parsing": "a number",
    "float_type": "a number",
    "decimal_parsing": "a number",
    "decimal_type": "a number",
    "int_parsing": "an integer",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "tuple_type": "a list",
    "set_type": "a list",
    "frozen_set_type": "a list",
    "dict_type": "a mapping",
    "finite_number": "a finite number",
}


class StrategyLoadError(Exception):
    """A strategy could not be loaded; `lines` holds one message per problem."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def _fail(name: str, message: str) -> StrategyLoadError:
    return StrategyLoadError([f"strategy '{name}': {message}"])


def _describe(err: dict[str, Any], fields: list[str]) -> str:
    kind = err["type"]
    if kind == "missing":
        return "required, missing"
    if kind == "extra_forbidden":
        return f"unknown parameter (expected one of: {', '.join(fields) or 'none'})"
    expected = _EXPECTED.get(kind)
    if expected is None:  # constraints and literals: pydantic's text says what is expected
        msg = str(err["msg"])
        expected = msg.removeprefix("Input should be ").removeprefix("Value error, ")
    return f"expected {expected}, got {err.get('input')!r}"


def validate_params(name: str, cls: type[Strategy], params: dict[str, Any]) -> StrategyParams:
    """Validate `params` with `cls.Params`.

    Raises:
        StrategyLoadError: one line per invalid field ("strategy 'x': params.f: expected ...").
    """
    try:
        return cls.Params.model_validate(params)
    except ValidationError as exc:
        fields = sorted(cls.Params.model_fields)
        lines = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in ("params", *err["loc"]))
            lines.append(f"strategy '{name}': {loc}: {_describe(dict(err), fields)}")
        raise StrategyLoadError(lines) from None


def _import_file(file: Path) -> Any:
    digest = hashlib.sha1(str(file.resolve()).encode()).hexdigest()[:10]
    mod_name = f"_bot_user_strategy_{file.stem}_{digest}"
    if mod_name in sys.modules:
        return sys.modules[mod_name]
    spec = importlib.util.spec_from_file_location(mod_name, file)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {file}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[mod_name]
        raise
    return module


def _import_module(name: str, module_ref: str, strategy_dirs: list[Path]) -> Any:
    if module_ref.endswith(".py"):
        candidates = [Path(module_ref)] + [d / module_ref for d in strategy_dirs]
        for file in candidates:
            if file.is_file():
                return _import_file(file)
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


def _entry_point(name: str, ep_name: str) -> Any:
    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == ep_name]
    if not found:
        known = sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
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
    except Exception as exc:  # a user's module failing at import: one line, never a traceback
        raise _fail(name, f"importing {path!r} failed: {type(exc).__name__}: {exc}") from None
    if not (isinstance(obj, type) and issubclass(obj, Strategy)):
        raise _fail(name, f"{path!r} is not a subclass of bot.strategy.Strategy")
    return obj
