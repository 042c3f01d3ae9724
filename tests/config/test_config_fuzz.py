"""`bot config check` on mutated versions of the default config.yaml (docs/architecture.md,
"Configuration"): whatever the file holds (broken YAML, deleted or replaced characters, dropped
keys, unknown keys, values of the wrong type), the command either accepts it or prints one
`config error: ...` line per problem and exits 2: never a traceback, never another exit code.

The command runs in process (typer's CliRunner) for speed: the same `load_settings` +
`preflight` that `bot run` calls before it trades."""

from __future__ import annotations

import json
import os
import traceback
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from bot.cli import app

ROOT = Path(__file__).parents[2]
DATA = ROOT / "bot" / "data"
# the default config with absolute data paths, so that unmutated it passes in any folder
TEXT = ((ROOT / "config.yaml").read_text()
        .replace("path: bot/data/", f"path: {DATA}/")
        .replace("nfl_results: bot/data/", f"nfl_results: {DATA}/"))
CHARS = [*":-[]{}#&*!|>'\"%@`,? \t\n.0x$", "\x00", "\u00e9", "\\", "${", "\n  ", "- "]
VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-10**9, 10**9), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.sampled_from(["", "x", "3%", "LOUD", "h2h", "/nonexistent/file", "no/such/relative",
                                           "${UNSET_VAR}", "value", "1 MB", "moneyline"]),
    st.lists(st.one_of(st.integers(), st.text(max_size=5)), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
RUNNER = CliRunner()
NO_BOT_ENV: dict[str, str | None] = {k: None for k in os.environ if k.startswith("BOT_")}


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path of the parsed YAML tree (mapping keys and list indexes)."""
    found: list[tuple[Any, ...]] = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, child in items:
        found.append((*prefix, key))
        found += _paths(child, (*prefix, key))
    return found


def _mutate_text(data: st.DataObject, text: str) -> str:
    for _ in range(data.draw(st.integers(1, 3), label="text mutations")):
        op = data.draw(st.sampled_from(["delete", "replace", "insert", "drop_line", "dup_line", "indent"]))
        at = data.draw(st.integers(0, max(len(text) - 1, 0)), label="at")
        lines = text.splitlines(keepends=True)
        line = min(text.count("\n", 0, at), len(lines) - 1)
        if op == "delete":
            text = text[:at] + text[at + data.draw(st.integers(1, 3)):]
        elif op == "replace":
            text = text[:at] + data.draw(st.sampled_from(CHARS)) + text[at + 1:]
        elif op == "insert":
            text = text[:at] + data.draw(st.sampled_from(CHARS)) + text[at:]
        elif op == "drop_line":
            text = "".join(lines[:line] + lines[line + 1:])
        elif op == "dup_line":
            text = "".join(lines[:line + 1] + lines[line:])
        else:
            text = "".join(lines[:line] + [data.draw(st.sampled_from([" ", "\t", "    "])) + lines[line]]
                           + lines[line + 1:])
    return text


def _mutate_tree(data: st.DataObject, tree: dict[str, Any]) -> dict[str, Any]:
    for _ in range(data.draw(st.integers(1, 3), label="tree mutations")):
        path = data.draw(st.sampled_from(_paths(tree)), label="path")
        *parent_keys, key = path
        parent: Any = tree
        for k in parent_keys:
            parent = parent[k]
        op = data.draw(st.sampled_from(["drop", "replace", "swap_type", "unknown_key"]), label="op")
        value = parent[key]
        if op == "drop":
            del parent[key]
        elif op == "replace":
            parent[key] = data.draw(VALUES, label="value")
        elif op == "swap_type":
            parent[key] = (str(value) if not isinstance(value, str) else [value]) if not isinstance(value, dict) \
                else list(value.items())
        else:
            target = value if isinstance(value, dict) else parent if isinstance(parent, dict) else tree
            target[data.draw(st.sampled_from(["min_edeg", "extra", "Mode", "1", "max_stakee"]))] = \
                data.draw(VALUES, label="unknown value")
        if not _paths(tree):
            break
    return tree


def _check(path: Path) -> bool:
    """True when the config is accepted; else its error lines were checked."""
    result = RUNNER.invoke(app, ["config", "check", "-c", str(path)], env=NO_BOT_ENV)
    text = path.read_text(errors="replace")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        exc = result.exception
        raise AssertionError("config check raised on:\n" + text + "\n"
                             + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    assert "Traceback" not in result.stderr, result.stderr
    errors = result.stderr.splitlines()
    if result.exit_code == 0:
        json.loads(result.stdout)
        assert errors == [f"config OK: {path} (mode {json.loads(result.stdout)['mode']})"], errors
        return True
    assert result.exit_code == 2, (result.exit_code, result.stderr, text)
    assert errors, text
    for line in errors:
        assert line.startswith("config error: ") and "; fix: " in line, (line, text)
    return False


def test_the_unmutated_config_passes(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(TEXT)
    result = RUNNER.invoke(app, ["config", "check", "-c", str(cfg)], env=NO_BOT_ENV)
    assert result.exit_code == 0, result.stderr
    assert not (tmp_path / "state").exists()  # checked, never created


def test_mutated_configs_give_one_line_errors_never_a_traceback(tmp_path: Path) -> None:
    seen = {"ok": 0, "error": 0}

    @settings(max_examples=220, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(data=st.data(), as_tree=st.booleans())
    def check(data: st.DataObject, as_tree: bool) -> None:
        cfg = tmp_path / "config.yaml"
        if as_tree:
            cfg.write_text(yaml.safe_dump(_mutate_tree(data, yaml.safe_load(TEXT)), allow_unicode=True))
        else:
            cfg.write_bytes(_mutate_text(data, TEXT).encode("utf-8", errors="surrogatepass"))
        seen["ok" if _check(cfg) else "error"] += 1

    check()
    assert seen["error"] > 50 and seen["ok"] > 10, seen  # both outcomes were exercised
    assert not (tmp_path / "state").exists()  # nothing was created, whatever the config said
