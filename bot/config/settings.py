"""The bot's configuration: one pydantic-settings model from config.yaml, `.env` and the
environment (highest precedence), e.g. `BOT_ABP__API_KEY=...` sets `abp.api_key`.

Every section rejects unknown keys; secrets are `SecretStr`. `load_settings` raises
`ConfigError` with one line per problem naming the field and the fix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from bot.bus.config import MqttConfig
from bot.config.base import Section
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
    params: dict[str, Any] = {}


class MappingConfig(Section):
    """Feed selection -> ABP instrument mapping (issue 2, build point 4)."""

    file: Path | None = None
    use_abp_markets: bool = True
    oddspapi_api_key: SecretStr | None = None
    oddspapi_base_url: str = "https://v5.oddspapi.io/en"


class SettlementConfig(Section):
    """Results used by the paper venue to settle bets."""

    nfl_results: Path | None = None
    football_data_results: Path | None = None


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
            YamlConfigSettingsSource(settings_cls),
            file_secret_settings,
        )


class ConfigError(Exception):
    """The configuration is invalid; `lines` has one message per problem."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def _fix_hint(loc: str, err_type: str) -> str:
    env = "BOT_" + loc.upper().replace(".", "__")
    if err_type == "extra_forbidden":
        return "remove it or check its spelling (`bot config schema` lists every key)"
    if err_type == "missing":
        return f"add `{loc}` to the config file or set {env}"
    return f"correct `{loc}` in the config file or set {env}"


def format_validation_error(exc: ValidationError) -> list[str]:
    """One line per error: `config error: <field>: <message> (got <value>); fix: <hint>`."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        got = err.get("input")
        got_txt = "" if err["type"] in ("missing",) or isinstance(got, dict) else f" (got {got!r})"
        lines.append(
            f"config error: {loc or '<root>'}: {err['msg']}{got_txt}; fix: {_fix_hint(loc, err['type'])}"
        )
    return lines


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Load `path` (YAML; default none, so only env and defaults) with env overrides.

    Raises:
        ConfigError: the file is missing or unreadable, or a field is invalid.
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
    return Settings.model_validate(loaded.model_dump())
