"""The one formatter of validation errors (docs/architecture.md, "Configuration"): pydantic's
errors become one line per problem, naming the field, what was wrong and what to do.

Two wordings share the same reading of the errors (`problems`):
- configuration: `config error: risk.max_stake: Input should be greater than 0 (got -5); fix: ...`
- strategy parameters: `strategy 'longshots': params.min_price: expected a number, got 'abc'`
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

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


class ConfigError(Exception):
    """The configuration is invalid; `lines` has one message per problem."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


@dataclass(frozen=True, slots=True)
class Problem:
    """One pydantic error, read once for every wording."""

    loc: str  # dotted field path, e.g. "risk.max_stake" or "params.min_edge"
    kind: str  # pydantic error type: "missing", "extra_forbidden", "greater_than", ...
    message: str  # pydantic's own sentence, e.g. "Input should be greater than 0"
    value: Any  # the rejected input

    @property
    def shows_value(self) -> bool:
        """False when there is nothing useful to quote: a missing field or a whole section."""
        return self.kind != "missing" and not isinstance(self.value, dict)

    @property
    def expected(self) -> str:
        """What the field accepts, in the user's words ("a number", "greater than 0")."""
        known = _EXPECTED.get(self.kind)
        if known is not None:
            return known
        # constraints and literals: pydantic's sentence already says what is expected
        return self.message.removeprefix("Input should be ").removeprefix("Value error, ")


def problems(exc: ValidationError, prefix: Sequence[str] = ()) -> list[Problem]:
    """Every error of `exc`, its location prefixed with `prefix` (e.g. ("params",))."""
    return [
        Problem(".".join(str(p) for p in (*prefix, *err["loc"])), err["type"], str(err["msg"]), err.get("input"))
        for err in exc.errors()
    ]


def config_line(field: str, problem: str, fix: str) -> str:
    """The one shape of every configuration error line: `config error: <field>: <problem>; fix:
    <fix>`, always one line (line breaks inside a quoted value or a library's message become
    spaces)."""
    return " ".join(f"config error: {field or '<root>'}: {problem}; fix: {fix}".splitlines())


def _config_fix(p: Problem) -> str:
    env = "BOT_" + p.loc.upper().replace(".", "__")
    if p.kind == "extra_forbidden":
        return "remove it or check its spelling (`bot config schema` lists every key)"
    if p.kind == "missing":
        return f"add `{p.loc}` to the config file or set {env}"
    return f"correct `{p.loc}` in the config file or set {env}"


def format_validation_error(exc: ValidationError) -> list[str]:
    """Configuration wording: `config error: <field>: <message> (got <value>); fix: <hint>`."""
    return [
        config_line(p.loc, p.message + (f" (got {p.value!r})" if p.shows_value else ""), _config_fix(p))
        for p in problems(exc)
    ]


def _param_problem(p: Problem, fields: Sequence[str]) -> str:
    if p.kind == "missing":
        return "required, missing"
    if p.kind == "extra_forbidden":
        return f"unknown parameter (expected one of: {', '.join(fields) or 'none'})"
    return f"expected {p.expected}, got {p.value!r}"


def format_param_errors(strategy: str, exc: ValidationError, fields: Sequence[str]) -> list[str]:
    """Strategy wording: `strategy '<name>': params.<field>: expected <what>, got <value>`;
    `fields` are the parameters the strategy knows, listed when an unknown one is given."""
    return [f"strategy '{strategy}': {p.loc}: {_param_problem(p, fields)}" for p in problems(exc, ("params",))]
