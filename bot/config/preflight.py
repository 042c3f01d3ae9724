"""The checks a config must pass before the bot trades, shared by `bot run` and `bot config check`
(docs/architecture.md, "Configuration"): what `load_settings` cannot see because it needs the
outside world.

`preflight(settings, config_dir) -> list[str]` returns one line per problem, each worded by
`config_line` (`config error: <field>: <problem>; fix: <fix>`), and an empty list when the bot
can start. It reads files and imports strategy and check classes; it creates and writes nothing
(no state dir, no ledger), so a wrong config leaves no trace. It checks:
- the mode's needs: a feed; a replay in backtest; `abp.api_key` in live, and a placement timeout
  (`abp.place_timeout_seconds`) shorter than the order expiry (`execution.expiry_seconds`);
  `scraping.api_key` for an HTTP feed with `transport: scraping`;
  `mm.api_key`, a UUID, when `mm.enabled` (docs/reference/mm.md);
- paths (relative ones are `config_dir`'s): the replay file, the results files of the paper
  settlement (paper and backtest, and that they read as results), the mapping file (and that it
  parses), every `strategy_dirs` folder;
- `state_dir`: a folder, or creatable as one, and writable;
- `logging.rotation`: a rotation loguru understands (`logging.level` is checked at load);
- `risk.checks`: each names a built-in check or a `Check` class that imports;
- each enabled strategy: its class resolves (`bot.strategy.loader.resolve_class`), its params
  validate against its `Params` (`validate_params`), and its `markets` param names only market
  types the feeds produce (`check_markets`: moneyline, 1x2, spread, total, team_total).
"""

from __future__ import annotations

import os
import tempfile
import uuid
from pathlib import Path

from bot.config.errors import config_line
from bot.config.settings import Settings

_RESULTS_FIX = "point it at a generic results CSV (docs/reference/odds-csv.md), nflverse or football-data.co.uk"


def _abs(config_dir: Path, path: Path) -> Path:
    return path if path.is_absolute() else config_dir / path


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # e.g. a NUL byte in the path
        return False


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except (OSError, ValueError):
        return False


def _relative_hint(path: Path, config_dir: Path) -> str:
    """For a path inside the config's folder (relative in the file, or resolved from relative by
    `load_settings`): where relative paths start, the usual surprise after copying a config."""
    inside = not path.is_absolute() or path.is_relative_to(config_dir)
    return f" (relative paths start at the config file's folder, {config_dir})" if inside else ""


def _feeds(settings: Settings, config_dir: Path) -> list[str]:
    feeds = settings.feeds
    lines: list[str] = []
    if settings.mode == "backtest" and feeds.replay is None and feeds.history is None:
        lines.append(config_line("feeds.replay", "backtest mode needs a replay or historical files",
                                 "set feeds.replay.path or feeds.history.paths"))
    if settings.mode == "live" and settings.abp.api_key is None:
        lines.append(config_line("abp.api_key", "live mode needs an ABP key", "set BOT_ABP__API_KEY"))
    lines.extend(_mm(settings))
    timeout, expiry = settings.abp.place_timeout_seconds, settings.execution.expiry_seconds
    if settings.mode == "live" and timeout >= expiry:  # a lost answer must be looked up before expiry
        lines.append(config_line("abp.place_timeout_seconds", f"{timeout} s is not shorter than "
                                 f"execution.expiry_seconds ({expiry} s)", f"set it below {expiry}"))
    for name in ("oddsapi", "oddspapi", "olympus"):  # the HTTP feeds that may go through the Scraping API (bot/feeds/scraping.py)
        options = getattr(feeds, name)
        if options is not None and options.transport == "scraping" and settings.scraping.api_key is None:
            lines.append(config_line(f"feeds.{name}.transport", "scraping needs a Scraping API key (scraping.api_key)",
                                     "set BOT_SCRAPING__API_KEY, or transport: direct"))
    has_mqtt_feed = settings.mqtt.enabled and settings.mqtt.feed.enabled
    no_feed = (feeds.replay is None and feeds.history is None and feeds.boltodds is None and feeds.oddsapi is None
                and feeds.oddspapi is None and feeds.olympus is None and not has_mqtt_feed)
    if no_feed and settings.mode != "backtest":  # backtest already said what is missing
        lines.append(config_line("feeds", "no feed configured",
                                 "set feeds.replay, feeds.boltodds, feeds.oddsapi, feeds.oddspapi or feeds.olympus"))
    if feeds.replay is not None:
        path = _abs(config_dir, feeds.replay.path)
        if not _is_file(path):
            lines.append(config_line("feeds.replay.path", f"{path} does not exist",
                                     "point it at a recording" + _relative_hint(feeds.replay.path, config_dir)))
    if feeds.history is not None:
        lines.extend(_history(feeds.history.paths, feeds.history.format, config_dir))
    return lines


def _mm(settings: Settings) -> list[str]:
    """`mm.enabled` needs the MM key, a UUID (docs/reference/mm.md; MM Authentication)."""
    mm = settings.mm
    if not mm.enabled:
        return []
    if mm.api_key is None:
        return [config_line("mm.api_key", "mm.enabled needs the MM API key", "set BOT_MM__API_KEY")]
    try:
        uuid.UUID(mm.api_key.get_secret_value())
    except ValueError:
        return [config_line("mm.api_key", "not a UUID (MM keys are UUIDs; MM answers 401)",
                            "set BOT_MM__API_KEY to the UUID key 55-Tech issued")]
    return []


def _settlement(settings: Settings, config_dir: Path) -> list[str]:
    if settings.mode == "live":  # the venue settles; the results files are not read
        return []
    cfg = settings.settlement
    named: list[tuple[str, Path | None]] = [(f"settlement.results[{i}]", p) for i, p in enumerate(cfg.results)]
    named += [("settlement.nfl_results", cfg.nfl_results), ("settlement.football_data_results",
                                                             cfg.football_data_results)]
    lines = [config_line(field, f"{_abs(config_dir, p)} does not exist", _RESULTS_FIX + _relative_hint(p, config_dir))
             for field, p in named if p is not None and not _is_file(_abs(config_dir, p))]
    if lines:
        return lines
    from bot.sim.settlement import configured_results

    try:  # what the paper settler will read: a file of another kind stops start-up here
        configured_results(cfg, config_dir)
    except ValueError as exc:
        field, _, why = str(exc).partition(": ")
        return [config_line(field, why, _RESULTS_FIX)]
    return []


def _mapping(settings: Settings, config_dir: Path) -> list[str]:
    if settings.mapping.file is None:
        return []
    path = _abs(config_dir, settings.mapping.file)
    if not _is_file(path):
        return [config_line("mapping.file", f"{path} does not exist",
                            "point it at a mapping YAML (or set mapping.file: null)"
                            + _relative_hint(settings.mapping.file, config_dir))]
    from bot.market.mapping import MappingFile

    try:
        MappingFile.load(path)
    except ValueError as exc:
        return [config_line("mapping.file", str(exc), "correct the mapping file")]
    return []


def _strategy_dirs(settings: Settings, config_dir: Path) -> list[str]:
    return [config_line(f"strategy_dirs[{i}]", f"{_abs(config_dir, d)} is not a folder",
                        "create it, or remove it from strategy_dirs" + _relative_hint(d, config_dir))
            for i, d in enumerate(settings.strategy_dirs) if not _is_dir(_abs(config_dir, d))]


def state_dir_problem(state_dir: Path) -> str | None:
    """Why the bot could not create or write `state_dir` (checked, never created), or None."""
    try:
        if state_dir.exists():
            if not state_dir.is_dir():
                return f"{state_dir} is a file, not a folder"
            return None if os.access(state_dir, os.W_OK | os.X_OK) else f"{state_dir} is not writable"
        ancestor = state_dir.parent
        while not ancestor.exists() and ancestor != ancestor.parent:
            ancestor = ancestor.parent
        if not ancestor.is_dir():
            return f"cannot create {state_dir}: {ancestor} is a file, not a folder"
        if not os.access(ancestor, os.W_OK | os.X_OK):
            return f"cannot create {state_dir}: {ancestor} is not writable"
    except (OSError, ValueError) as exc:
        return f"{state_dir} cannot be used: {exc}"
    return None


def _state_dir(settings: Settings, config_dir: Path) -> list[str]:
    problem = state_dir_problem(_abs(config_dir, settings.state_dir))
    if problem is None:
        return []
    return [config_line("state_dir", problem, "point state_dir at a folder this user can write (it holds the "
                        "ledger bot.db and logs/)")]


def _logging(settings: Settings) -> list[str]:
    from loguru import logger

    cfg = settings.logging
    if not cfg.json_file:
        return []
    # loguru parses rotation only when a file sink is added: add one that is never opened (delay)
    never_written = Path(tempfile.gettempdir()) / "bot-preflight-never-written" / "bot.jsonl"
    try:
        handler = logger.add(never_written, level="DEBUG", rotation=cfg.rotation, retention=cfg.retention,
                             compression="gz", delay=True)
    except (ValueError, TypeError) as exc:
        return [config_line("logging.rotation", f"{exc}", "a size like '50 MB', a duration like '1 day' or a "
                            "time like '00:00' (or set BOT_LOGGING__ROTATION)")]
    logger.remove(handler)
    return []


def _risk_checks(settings: Settings, config_dir: Path) -> list[str]:
    from bot.risk.checks import BUILTIN_CHECKS, CheckLoadError, _check_class

    dirs = [config_dir, *(_abs(config_dir, d) for d in settings.strategy_dirs)]
    lines: list[str] = []
    for i, name in enumerate(settings.risk.checks):
        if name in BUILTIN_CHECKS:
            continue
        try:
            _check_class(i, name, dirs)  # what RiskManager loads; the instance needs the ledger
        except CheckLoadError as exc:
            field, _, why = str(exc).partition(": ")
            lines.append(config_line(field, why, "name a built-in check or a Check class as package.module:Class "
                                     "or file.py:Class (in the config's folder or a strategy_dirs folder)"))
    return lines


def _strategies(settings: Settings, config_dir: Path) -> list[str]:
    from bot.strategy.loader import StrategyLoadError, check_markets, resolve_class, validate_params

    dirs = [_abs(config_dir, d) for d in settings.strategy_dirs]
    lines: list[str] = []
    for spec in settings.strategies:
        if not spec.enabled:
            continue
        what = f"strategy '{spec.name}'"
        try:
            klass = resolve_class(spec.name, spec.path, dirs)
        except StrategyLoadError as exc:
            lines += [config_line("strategies", line, f"correct the `path` of {what} (`bot strategy list` shows "
                                  "the installed strategies)") for line in exc.lines]
            continue
        try:
            params = validate_params(spec.name, klass, spec.params)
        except StrategyLoadError as exc:
            lines += [config_line("strategies", line, f"correct the params of {what} (`bot strategy list` shows "
                                  "each parameter, its type and default)") for line in exc.lines]
            continue
        try:
            check_markets(spec.name, getattr(params, "markets", ()) or ())
        except StrategyLoadError as exc:
            lines += [config_line("strategies", line, f"use only the known names in the markets of {what}, "
                                  "or leave it empty for every market") for line in exc.lines]
    return lines


def preflight(settings: Settings, config_dir: Path) -> list[str]:
    """Every problem that would stop `bot run` with `settings` (loaded from a file in
    `config_dir`), as one `config error: ...` line each; [] when the bot can start. Creates and
    writes nothing. Shape: `preflight(Settings, Path) -> list[str]`."""
    return [
        *_feeds(settings, config_dir),
        *_settlement(settings, config_dir),
        *_mapping(settings, config_dir),
        *_strategy_dirs(settings, config_dir),
        *_state_dir(settings, config_dir),
        *_logging(settings),
        *_risk_checks(settings, config_dir),
        *_strategies(settings, config_dir),
    ]


def _history(paths: list[Path], fmt: str, config_dir: Path) -> list[str]:
    """Each historical file exists and its format is known (told by its header under `auto`)."""
    from bot.feeds.history.base import READERS, detect

    lines = []
    for n, given in enumerate(paths):
        path = _abs(config_dir, given)
        field = f"feeds.history.paths[{n}]"
        if not _is_file(path):
            lines.append(config_line(field, f"{path} does not exist",
                                     "point it at a historical odds file" + _relative_hint(given, config_dir)))
        elif fmt == "auto" and detect(path) is None:
            lines.append(config_line(field, f"{path}: header matches no known format ({', '.join(READERS)})",
                                     "set feeds.history.format, or see docs/reference/historical-data.md"))
    return lines
