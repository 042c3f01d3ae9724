"""Config of the risk manager (`risk:` in config.yaml). Amounts in the order currency."""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field

from bot.configbase import Section


class RiskConfig(Section):
    min_stake: Decimal = Field(Decimal("1"), ge=0)
    max_stake: Decimal = Field(Decimal("100"), gt=0)
    min_price: float = Field(1.01, gt=1.0)
    max_price: float = Field(20.0, gt=1.0)
    max_exposure_selection: Decimal = Field(Decimal("200"), gt=0)
    max_exposure_fixture: Decimal = Field(Decimal("500"), gt=0)
    max_exposure_bookmaker: Decimal = Field(Decimal("2000"), gt=0)
    max_exposure_strategy: Decimal = Field(Decimal("5000"), gt=0)
    max_exposure_total: Decimal = Field(Decimal("10000"), gt=0)
    daily_loss_limit: Decimal = Field(Decimal("1000"), gt=0)
    max_drawdown: Decimal = Field(Decimal("2000"), gt=0)
    day_timezone: str = "UTC"
    resize_to_fit: bool = True
