"""The bot's configuration (docs/architecture.md, "Configuration"): one pydantic-settings model
from config.yaml, `.env` and the environment (highest precedence), e.g. `BOT_ABP__API_KEY=...`
sets `abp.api_key`.

Every section rejects unknown keys; secrets are `SecretStr`. In the file, `${VAR}` in a value is
replaced from the environment (`bot.config.expand`). Relative paths are resolved against the
config file's folder, so every command reading one config sees the same state dir, whatever its
working directory. `load_settings` raises `ConfigError` with one line per problem naming the
field and the fix (`bot.config.errors`); a file that is not YAML is one line too, naming the file,
the line:column and the problem (`read_yaml`). What needs the outside world (paths that must
exist, the state dir, strategy classes) is checked by `bot.config.preflight`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from loguru import logger
from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from bot.bus.config import MqttConfig
from bot.config.base import Section
from bot.config.errors import ConfigError, config_line, format_validation_error
from bot.config.expand import expand_env
from bot.execution.config import AbpConfig, ExecutionConfig, PaperConfig
from bot.execution.mm_config import MmConfig
from bot.feeds.config import FeedsConfig, ScrapingConfig
from bot.ledger.config import LedgerConfig
from bot.market.config import ClvConfig
from bot.notify.config import NotifyConfig
from bot.risk.config import RiskConfig
from bot.web.config import WebConfig

Mode = Literal["paper", "live", "backtest"]


class StrategySpec(Section):
    """One strategy instance: `path` is `package.module:Class` or an entry-point name of the
    `bot.strategies` group; `params` is validated by the strategy's own Params model."""

    name: str = Field(min_length=1)
    path: str = Field(min_length=1)
    enabled: bool = True
    params: dict[str, Any] = Field({}, description="checked against the strategy's Params model")


class MappingConfig(Section):
    """Feed selection -> ABP instrument mapping (bot/market/mapping.py): a mapping file, ABP's
    GET /markets, and an OddsPapi fixture lookup."""

    file: Path | None = None
    use_abp_markets: bool = True
    oddspapi_api_key: SecretStr | None = None
    oddspapi_base_url: str = "https://v5.oddspapi.io/en"


class SettlementConfig(Section):
    """Paper and backtest settlement (docs/architecture.md, "Simulators"; bot/sim/settlement.py).

    `results`, `nfl_results` and `football_data_results` are results files, all read by the one
    loader (bot/sim/results.py), which tells the format from the header: the generic results CSV
    (docs/reference/odds-csv.md, "Results file"), nflverse games.csv or football-data.co.uk;
    `.gz` allowed. `unresolved` is what happens to an open bet that cannot settle (no results
    source, its fixture not in the results, or a market the score cannot grade): `hold` keeps it
    open (and reported), `void_after_hours` settles it VOID, stake returned, `void_after_hours`
    hours after its kickoff, logging each one (docs/architecture.md, "Invariants > Nothing lost,
    nothing silent").
    """

    results: list[Path] = Field([], description="results CSVs (generic, nflverse or football-data.co.uk)")
    nfl_results: Path | None = None
    football_data_results: Path | None = None
    unresolved: Literal["hold", "void_after_hours"] = Field(
        "hold", description="bets that cannot settle: hold them open, or void them void_after_hours after kickoff"
    )
    void_after_hours: float | None = Field(
        None, gt=0, validate_default=True,
        description="hours after kickoff an unsettleable bet is voided (needs unresolved: void_after_hours)",
    )

    @field_validator("void_after_hours")
    @classmethod
    def _hours_match_policy(cls, hours: float | None, info: ValidationInfo) -> float | None:
        policy = info.data.get("unresolved")
        if policy == "void_after_hours" and hours is None:
            raise PydanticCustomError("void_hours_missing", "required when settlement.unresolved is void_after_hours")
        if policy == "hold" and hours is not None:
            raise PydanticCustomError(
                "void_hours_unused", "only used with settlement.unresolved: void_after_hours (unresolved is hold)"
            )
        return hours


LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL")


class LoggingConfig(Section):
    level: str = Field("INFO", description=f"console log level: one of {', '.join(LOG_LEVELS)} (any case)")
    json_file: bool = True
    rotation: str = "50 MB"
    retention: int = Field(10, ge=1, description="rotated files kept")
    progress: bool = True

    @field_validator("level")
    @classmethod
    def _known_level(cls, level: str) -> str:
        """`level` in upper case, once loguru knows it (loguru's names are upper case)."""
        name = level.strip().upper()
        try:
            logger.level(name)
        except ValueError:
            raise PydanticCustomError("log_level", f"not a log level (known: {', '.join(LOG_LEVELS)})") from None
        return name


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="BOT_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="forbid",
        frozen=True,
    )

    mode: Mode = "paper"
    instance: str = "bot1"
    state_dir: Path = Path("state")
    strategy_dirs: list[Path] = []
    feeds: FeedsConfig = FeedsConfig()
    scraping: ScrapingConfig = ScrapingConfig()
    mapping: MappingConfig = MappingConfig()
    strategies: list[StrategySpec] = []
    risk: RiskConfig = RiskConfig()
    execution: ExecutionConfig = ExecutionConfig()
    abp: AbpConfig = AbpConfig()
    mm: MmConfig = MmConfig()
    paper: PaperConfig = PaperConfig()
    settlement: SettlementConfig = SettlementConfig()
    clv: ClvConfig = ClvConfig()
    ledger: LedgerConfig = LedgerConfig()
    web: WebConfig = WebConfig()
    notify: NotifyConfig = NotifyConfig()
    mqtt: MqttConfig = MqttConfig()
    logging: LoggingConfig = LoggingConfig()

    @field_validator("strategies")
    @classmethod
    def _unique_names(cls, specs: list[StrategySpec]) -> list[StrategySpec]:
        names = [s.name for s in specs]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"strategy names must be unique, repeated: {sorted(dup)}")
        return specs

    @property
    def db_path(self) -> Path:
        return self.state_dir / "bot.db"

    @property
    def ledger_target(self) -> Path | str:
        """What `Ledger` opens: `ledger.url` (a PostgreSQL URL; a sqlite:/// URL as its file),
        else `db_path`."""
        if self.ledger.url is None:
            return self.db_path
        url = self.ledger.url.get_secret_value()
        return Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else url

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            dotenv_settings,
            _ExpandedYamlSource(settings_cls),
            file_secret_settings,
        )


class _ExpandedYamlSource(YamlConfigSettingsSource):
    """The YAML file with `${VAR}` references replaced from the environment."""

    def _read_file(self, file_path: Any) -> dict[str, Any]:
        return expand_env(read_yaml(Path(file_path)), os.environ)


_YAML_FIX = "correct the YAML at that line and column (indent with spaces, not tabs; quote values holding ': ' or ' #')"


def _at(text: str, index: int) -> str:
    """`line:column` (1-based) of character `index` of `text`."""
    line_start = text.rfind("\n", 0, index) + 1
    return f"{text.count(chr(10), 0, index) + 1}:{index - line_start + 1}"


def _yaml_error_line(path: Path, text: str, exc: Exception) -> str:
    """One line for a YAML error: `config error: <file>:<line>:<column>: <problem>; fix: ...`."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.problem and exc.context:
            ctx = exc.context_mark
            problem += f" ({exc.context}" + (f" at {ctx.line + 1}:{ctx.column + 1})" if ctx is not None else ")")
        return config_line(where, problem, _YAML_FIX)
    if isinstance(exc, yaml.reader.ReaderError):
        return config_line(f"{path}:{_at(text, exc.position)}",
                           f"unacceptable character #x{exc.character:04x}: {exc.reason}", "remove that character")
    # a value the YAML loader could not build, e.g. a date like 2024-13-45
    return config_line(str(path), f"invalid YAML value: {type(exc).__name__}: {exc}", "quote the value or correct it")


def read_yaml(path: Path) -> dict[str, Any]:
    """The mapping a YAML config file holds (`{}` for an empty file); keys of the top level are
    made text, so that a key like `1:` is reported as an unknown setting.

    Raises:
        ConfigError: one line: the file is unreadable or not UTF-8, is not YAML (naming
            line:column and the problem), or holds something other than a mapping.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([config_line(str(path), f"not UTF-8 text (byte {exc.start})", "save it as UTF-8")]) from None
    except OSError as exc:
        raise ConfigError([config_line(str(path), f"cannot be read: {exc.strerror or exc}",
                                       "pass a readable --config")]) from None
    try:
        data = yaml.safe_load(text)
    except (yaml.YAMLError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise ConfigError([_yaml_error_line(path, text, exc)]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        kind = {"list": "a list", "str": "plain text", "int": "a number", "float": "a number", "bool": "true/false"}
        raise ConfigError([config_line(str(path), f"holds {kind.get(type(data).__name__, type(data).__name__)}, "
                                       "not a mapping of settings",
                                       "write one `key: value` per line, e.g. `mode: paper` (see config.yaml)")])
    return {k if isinstance(k, str) else str(k): v for k, v in data.items()}


def _resolved(value: Any, base: Path) -> Any:
    """`value` (a dumped Settings tree) with every relative Path made relative to `base`."""
    if isinstance(value, Path):
        return value if value.is_absolute() else base / value
    if isinstance(value, dict):
        return {k: _resolved(v, base) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolved(v, base) for v in value]
    return value


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Load `path` (YAML; default none, so only env and defaults) with env overrides; with a
    file, relative paths are resolved against its folder.

    Raises:
        ConfigError: the file is missing or unreadable, a `${VAR}` is unset, or a field is invalid.
    """
    if path is not None and not path.is_file():
        raise ConfigError([f"config error: file {path} not found; fix: pass an existing --config"])

    class _FromFile(Settings):
        model_config = SettingsConfigDict(**{**Settings.model_config, "yaml_file": path})

    try:
        loaded = _FromFile(**overrides)
        dumped = loaded.model_dump()
        if path is not None:
            dumped = _resolved(dumped, path.resolve().parent)
        return Settings.model_validate(dumped)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None
    except (OSError, ValueError, TypeError) as exc:  # e.g. an unreadable .env: one line, never a traceback
        raise ConfigError([config_line(str(path or "<environment>"), f"{type(exc).__name__}: {exc}",
                                       "correct the config file or the BOT_ environment variables")]) from None
