"""Config of the odds feeds (`feeds:` in config.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AwareDatetime, Field, SecretStr, model_validator

from bot.config.base import Section


class ReplayFeedConfig(Section):
    """Replays a recording (ours, or The Odds API snapshot JSONL) through the live decoders
    (bot/feeds/replay.py, bot/feeds/recording.py)."""

    path: Path = Field(description="Recording file (.jsonl or .jsonl.gz)")
    format: Literal["auto", "recording", "oddsapi_snapshots"] = "auto"
    speed: float = Field(0.0, ge=0.0, description="0 = as fast as possible, 1 = original pace, N = N x")
    odds_format: Literal["american", "decimal"] = Field(
        "american",
        description="Odds format of The Odds API prices in the file: snapshot files state none (the "
        "historical files and the bundled ones are American); our recordings state their own per record",
    )


HistoryFormat = Literal["auto", "odds_csv", "oddsapi_changes", "football_data", "pinnacle_mlb"]


class HistoryFeedConfig(Section):
    """Historical odds files (CSV, optionally .gz) played as fast as possible on event time
    (bot/feeds/history/; docs/reference/historical-data.md). `format: auto` tells each file's
    format from its header; `sport` names the sport of files that hold none (The Odds API change
    log)."""

    paths: list[Path] = Field(min_length=1, description="historical odds files, merged on event time")
    format: HistoryFormat = Field("auto", description="the files' format; auto = told by each header")
    sport: str | None = Field(None, description="sport label for files without one (oddsapi_changes: NFL)")


class BoltOddsConfig(Section):
    url: str = "wss://spro.agency/api"
    rest_url: str = "https://spro.agency/api"
    api_key: SecretStr
    sports: tuple[str, ...] = ()
    sportsbooks: tuple[str, ...] = ()
    games: tuple[str, ...] = ()
    markets: tuple[str, ...] = ()
    record_to: Path | None = None
    reconnect_initial_seconds: float = Field(1.0, gt=0, description="First reconnect backoff (jittered, doubling)")
    reconnect_max_seconds: float = Field(60.0, gt=0, description="Reconnect backoff ceiling")
    dead_after_seconds: float = Field(60.0, gt=0, description="No frame for this long = dead connection")
    max_frame_bytes: int = Field(256 * 1024 * 1024, gt=0, description="Larger frames are logged and dropped")
    check_filters: bool = Field(True, description="Warn at start when a filter name is not in get_info/get_markets")


class OddsApiConfig(Section):
    base_url: str = "https://api.the-odds-api.com"
    api_key: SecretStr
    sport: str = "americanfootball_nfl"
    regions: tuple[str, ...] = ("us",)
    markets: tuple[str, ...] = ("h2h", "spreads", "totals")
    bookmakers: tuple[str, ...] = ()
    poll_seconds: float = Field(300.0, gt=0)
    record_to: Path | None = None
    odds_format: Literal["american", "decimal"] = "american"
    requests_reserve: int = Field(
        5, ge=0, description="Stop polling while x-requests-remaining is at or below this"
    )
    timeout_seconds: float = Field(20.0, gt=0)


class OlympusEventConfig(Section):
    """One Bet365 event polled through Olympus (`POST /matchmarkets/markets`, optionally `POST /props`)."""

    pd: str = Field(min_length=1, description="Bet365 page descriptor of the event, e.g. #AC#B12#C20426855#D19#E1#F19#")
    props: bool = Field(False, description="also poll POST /props for this event")
    sport: str | None = Field(None, description="sport label for the fixture (default: the competition in EV.TB)")
    start_time: AwareDatetime | None = Field(None, description="kickoff (UTC); default: the EV record's BC field")


class OlympusConfig(Section):
    """The Olympus (Bet365) polled feed (bot/feeds/olympus.py; Olympus docs;
    docs/reference/olympus.md)."""

    base_url: str = Field(description="Olympus API base URL (the seed names none)")
    api_key: SecretStr | None = Field(None, description="sent in `api_key_header` with every request")
    api_key_header: str = Field("X-API-Key", min_length=1, description="header that carries api_key")
    user_agents: tuple[str, ...] = Field((), description="userAgent rotation for new sessions (403/429); "
                                         "empty = Olympus picks one")
    proxies: tuple[SecretStr, ...] = Field((), description="proxyUrl rotation for new sessions (403/429)")
    bootstrap: bool = True
    country_code: str | None = None
    bet365_url: str = "bet365.com"
    username: SecretStr | None = Field(None, description="Bet365 login (POST /session/login); with password")
    password: SecretStr | None = None
    bookmaker: str = Field("bet365", min_length=1, description="bookmaker slug of the quotes")
    events: tuple[OlympusEventConfig, ...] = ()
    competitions: tuple[str, ...] = Field((), description="competition pds: their events are polled too "
                                          "(GET /splashcontent/competitions_from_session)")
    racing: tuple[str, ...] = Field((), description="race pds for GET /racing/racecoupon")
    max_events: int = Field(50, ge=1, description="at most this many events per poll (configured first)")
    poll_seconds: float = Field(30.0, gt=0, description="start-to-start seconds between polls")
    requests_per_minute: float = Field(60.0, gt=0, description="request budget (every endpoint counts)")
    keepalive_seconds: float = Field(600.0, gt=0, description="POST /session/keepalive every this many "
                                     "seconds of the engine clock")
    clock_check_seconds: float = Field(1.0, gt=0, description="how often the keep-alive reads the engine clock")
    backoff_initial_seconds: float = Field(2.0, gt=0, description="first wait after 403/429/5xx (doubling)")
    backoff_max_seconds: float = Field(300.0, gt=0, description="backoff ceiling")
    timeout_seconds: float = Field(20.0, gt=0)
    request_id_header: str = Field("X-Request-Id", description="response header logged with every error")

    @model_validator(mode="after")
    def _login_pair(self) -> OlympusConfig:
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together: set both or neither")
        if not self.events and not self.competitions and not self.racing:
            raise ValueError("nothing to poll: set events, competitions or racing")
        return self


class FeedsConfig(Section):
    replay: ReplayFeedConfig | None = None
    history: HistoryFeedConfig | None = None
    boltodds: BoltOddsConfig | None = None
    oddsapi: OddsApiConfig | None = None
    olympus: OlympusConfig | None = None
    stale_after_seconds: float = Field(
        900.0, gt=0, description="A price older than this (engine clock) is stale"
    )
    restart_initial_seconds: float = Field(
        1.0, gt=0, description="A live feed that fails is restarted after this (jittered, doubling)"
    )
    restart_max_seconds: float = Field(60.0, gt=0, description="Live feed restart backoff ceiling")
