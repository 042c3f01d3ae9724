"""What strategies are available and what they accept, for `bot strategy list`
(docs/architecture.md, "Strategies"): the entry points of the `bot.strategies` group and the
strategies a config names, each with its class, a one-line summary and its parameters (type,
default, description, constraints, and the Params JSON schema).

A strategy that cannot be loaded is listed with its one-line error, never dropped.
"""

from __future__ import annotations

import sys
from typing import Any

from pydantic_core import to_jsonable_python

from bot.config.settings import Settings
from bot.strategy.api import Strategy, StrategyParams
from bot.strategy.loader import StrategyLoadError, installed, resolve_class, validate_params

# annotated_types constraint attribute -> how it reads
_CONSTRAINTS = (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="), ("min_length", "min length"),
                ("max_length", "max length"))


def _summary(cls: type[Strategy]) -> str:
    """The first paragraph of the class docstring, else of its module's, on one line."""
    doc = cls.__doc__ or getattr(sys.modules.get(cls.__module__), "__doc__", None) or ""
    return " ".join(doc.strip().split("\n\n")[0].split())


def _type_name(annotation: Any) -> str:
    return annotation.__name__ if isinstance(annotation, type) else str(annotation).replace("typing.", "")


def describe_params(params: type[StrategyParams]) -> list[dict[str, Any]]:
    """One entry per parameter: name, type, required, default (JSON), description, constraints."""
    out = []
    for name, field in params.model_fields.items():
        required = field.is_required()
        constraints = [f"{text} {getattr(m, attr)}" for m in field.metadata
                       for attr, text in _CONSTRAINTS if hasattr(m, attr)]
        out.append({
            "name": name,
            "type": _type_name(field.annotation),
            "required": required,
            "default": None if required else to_jsonable_python(field.get_default(call_default_factory=True)),
            "description": field.description or "",
            "constraints": constraints,
        })
    return out


def describe_class(cls: type[Strategy]) -> dict[str, Any]:
    """The class (`module:Class`), its source file, summary and params."""
    return {
        "class": f"{cls.__module__}:{cls.__qualname__}",
        "file": getattr(sys.modules.get(cls.__module__), "__file__", None),
        "summary": _summary(cls),
        "params": describe_params(cls.Params),
        "params_schema": cls.Params.model_json_schema(),
    }


def installed_strategies() -> list[dict[str, Any]]:
    """Every entry point of the `bot.strategies` group (built-in and installed by packages)."""
    out = []
    for ep in installed():
        entry: dict[str, Any] = {"name": ep.name, "path": ep.value}
        try:
            entry |= describe_class(resolve_class(ep.name, ep.name))
        except StrategyLoadError as exc:
            entry["error"] = str(exc)
        out.append(entry)
    return out


def configured_strategies(settings: Settings) -> list[dict[str, Any]]:
    """The strategies `settings` names, with their effective params (defaults filled in)."""
    out = []
    for spec in settings.strategies:
        entry: dict[str, Any] = {"name": spec.name, "path": spec.path, "enabled": spec.enabled}
        try:
            cls = resolve_class(spec.name, spec.path, settings.strategy_dirs)
            entry |= describe_class(cls)
            entry["values"] = validate_params(spec.name, cls, spec.params).model_dump(mode="json")
        except StrategyLoadError as exc:
            entry["error"] = str(exc)
        out.append(entry)
    return out
