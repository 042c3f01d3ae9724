"""The bot's configuration (docs/architecture.md, "Configuration"): one pydantic-settings model
from config.yaml, `.env` and the environment (highest precedence), e.g. `BOT_ABP__API_KEY=...`
sets `abp.api_key`.

Every section rejects unknown keys; secrets are `SecretStr`. In the file, `${VAR}` in a value is
replaced from the environment (`bot.config.expand`). Relative paths are resolved against the
config file's folder, so every command reading one config sees the same state dir, whatever its
working directory. `load_settings` raises `ConfigError` with one line per problem naming the
field and the fix (`bot.config.errors`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

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
from bot.config.errors import ConfigError, format_validation_error
from bot.config.expand import expand_env
from bot.execution.config import AbpConfig, ExecutionConfig, PaperConfig
from bot.feeds.config import FeedsConfig
from bot.risk.config import RiskConfig

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


class LoggingConfig(Section):
    level: str = "INFO"
    json_file: bool = True
    rotation: str = "50 MB"
    retention: int = Field(10, ge=1, description="rotated files kept")
    progress: bool = True


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
    mapping: MappingConfig = MappingConfig()
    strategies: list[StrategySpec] = []
    risk: RiskConfig = RiskConfig()
    execution: ExecutionConfig = ExecutionConfig()
    abp: AbpConfig = AbpConfig()
    paper: PaperConfig = PaperConfig()
    settlement: SettlementConfig = SettlementConfig()
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
        return expand_env(super()._read_file(file_path), os.environ)


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
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None
    except (OSError, ValueError) as exc:  # YAML syntax errors surface as ValueError subclasses
        raise ConfigError([f"config error: {path}: {exc}; fix: correct the YAML syntax"]) from None
    dumped = loaded.model_dump()
    if path is not None:
        dumped = _resolved(dumped, path.resolve().parent)
    return Settings.model_validate(dumped)
