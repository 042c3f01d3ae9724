"""`${VAR}` references in config-file values, replaced from the process environment
(docs/architecture.md, "Configuration").

Syntax: `${NAME}` (NAME = letters, digits and `_`, not starting with a digit) anywhere inside a
string value, e.g. `api_key: ${BOT_KEY}` or `url: wss://${HOST}/ws`; `$${` writes a literal `${`.
A reference to an unset variable, or a malformed one (`${}`, `${A-B}`, `${A` unclosed), stops
start-up with one line naming the field, rather than loading the text "${BOT_KEY}" as a key.
Only values are expanded, never keys; values from the environment or `.env` are taken as they are.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from bot.config.errors import ConfigError, config_line

# `$${` (escape), or `${...}` possibly unclosed: the name is checked separately so that a typo
# is reported instead of being loaded literally
_REFERENCE = re.compile(r"\$\$\{|\$\{([^}]*)(\})?")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _expand_text(text: str, field: str, environ: Mapping[str, str], errors: list[str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        name, closed = match.group(1), match.group(2)
        if not closed or not _NAME.fullmatch(name):
            errors.append(config_line(field, f"{match.group(0)!r} is not a valid variable reference",
                                      "write ${NAME} (letters, digits, _) or $${ for a literal ${"))
            return match.group(0)
        if name not in environ:
            errors.append(config_line(field, f"environment variable {name} is not set",
                                      f"export it or remove ${{{name}}}"))
            return match.group(0)
        return environ[name]

    return _REFERENCE.sub(replace, text)


def _walk(value: Any, field: str, environ: Mapping[str, str], errors: list[str]) -> Any:
    if isinstance(value, str):
        return _expand_text(value, field, environ, errors)
    if isinstance(value, dict):
        return {k: _walk(v, f"{field}.{k}" if field else str(k), environ, errors) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, f"{field}.{i}", environ, errors) for i, v in enumerate(value)]
    return value


def expand_env(data: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """`data` (a parsed YAML mapping) with every `${NAME}` in its string values replaced.

    Raises:
        ConfigError: one line per unset variable or malformed reference, naming the field.
    """
    errors: list[str] = []
    expanded = _walk(data, "", environ, errors)
    if errors:
        raise ConfigError(errors)
    return expanded
