"""`bot strategy new`: a user strategy file that runs at once (docs/architecture.md,
"Strategies"). The file is the built-in template (bot/strategy/builtin/template.py, which the
tests run) under a new class name and docstring, so the starting point is never a copy that has
drifted from working code.
"""

from __future__ import annotations

import ast
import json
import keyword
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic_core import to_jsonable_python

from bot.strategy.builtin import template
from bot.strategy.builtin.template import TemplateStrategy


class ScaffoldError(Exception):
    """The strategy file cannot be written; the message is one line."""


def class_name(name: str) -> str:
    """`my_edge` -> `MyEdgeStrategy`."""
    camel = "".join(part[:1].upper() + part[1:] for part in name.split("_"))
    return camel if camel.endswith("Strategy") else camel + "Strategy"


def _plain(value: Any) -> Any:
    """A default as the user would type it in YAML (Decimal 5 -> 5, not '5')."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return to_jsonable_python(value)


def config_yaml(name: str, strategy_dir: str) -> str:
    """The config.yaml lines that run the new strategy with the template's defaults."""
    params = {k: _plain(f.get_default(call_default_factory=True))
              for k, f in TemplateStrategy.Params.model_fields.items()}
    # JSON is YAML: every value on one line, quoted, so no name reads as a YAML bool or null
    return (f"strategy_dirs: {json.dumps([strategy_dir])}\n"
            "strategies:\n"
            f"  - name: {json.dumps(name)}\n"
            f"    path: {json.dumps(f'{name}.py:{class_name(name)}')}\n"
            f"    params: {json.dumps(params)}\n")


def _source(name: str, yaml_text: str) -> str:
    source = Path(template.__file__).read_text()
    docstring_end = ast.parse(source).body[0].end_lineno or 0
    body = "\n".join(source.splitlines()[docstring_end:])
    indented = "\n".join(f"    {line}" for line in yaml_text.splitlines())
    doc = (f'"""The `{name}` strategy, started from `bot strategy new` (a copy of the built-in template).\n\n'
           "It backs a selection whenever its decimal price is at least `min_price`: change `on_odds`,\n"
           "add the other hooks and params, and `bot strategy list` shows what it accepts.\n"
           "To run it, config.yaml needs (strategy_dirs relative to the config file's folder):\n\n"
           f'{indented}\n"""\n')
    return doc + body.replace(TemplateStrategy.__name__, class_name(name)) + "\n"


def write_strategy(name: str, directory: Path, strategy_dir: str) -> Path:
    """Write `directory/name.py`; `strategy_dir` is how config.yaml names `directory`.

    Raises:
        ScaffoldError: `name` is not a Python identifier, or the file exists (never overwritten).
    """
    if not name.isidentifier() or keyword.iskeyword(name):
        raise ScaffoldError(f"strategy name {name!r}: expected a Python identifier (letters, digits, _)")
    target = directory / f"{name}.py"
    directory.mkdir(parents=True, exist_ok=True)
    try:
        with target.open("x") as out:  # "x": an existing file is refused, atomically
            out.write(_source(name, config_yaml(name, strategy_dir)))
    except FileExistsError:
        raise ScaffoldError(f"{target} exists: not overwritten; fix: choose another name or --dir") from None
    return target
