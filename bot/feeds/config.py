"""Config of the odds feeds (`feeds:` in config.yaml)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import AwareDatetime, Field, SecretStr, field_validator, model_validator
from pydantic_core import PydanticCustomError

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


HistoryFormat = Literal["auto", "odds_csv", "oddsapi_changes", "football_data", "pinnacle_mlb", "betfair_stream"]


class HistoryFeedConfig(Section):
    """Historical odds files (CSV, optionally .gz) played as fast as possible on event time
    (bot/feeds/history/; docs/reference/historical-data.md). `format: auto` tells each file's
    format from its header; `sport` names the sport of files that hold none (The Odds API change
    log); `ladder_depth` the levels per side of an exchange file's quotes (`bot.types.Ladder`)."""

    paths: list[Path] = Field(min_length=1, description="historical odds files, merged on event time")
    format: HistoryFormat = Field("auto", description="the files' format; auto = told by each header")
    sport: str | None = Field(None, description="sport label for files without one (oddsapi_changes: NFL)")
    ladder_depth: int = Field(3, ge=1, description="exchange ladder levels per side on each quote "
                              "(betfair_stream; 1 = the best back and lay only)")


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


_GEO = re.compile(r"^[A-Z]{2}$")
_AGENT = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


def _geo_codes(codes: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """Country codes as the Scraping API takes them in `X-Geo`: ISO 3166 two-letter, upper case
    (55-Tech docs, Scraping API Error Handling > Common errors > Invalid geo code)."""
    if codes is None:
        return None
    upper = tuple(c.strip().upper() for c in codes)
    bad = [c for c in upper if not _GEO.match(c)]
    if bad:
        raise PydanticCustomError("geo_code", "not ISO two-letter country codes: {bad} (write DE, not Germany)",
                                  {"bad": ", ".join(bad)})
    return upper


def _agent_slugs(slugs: tuple[str, ...] | None) -> tuple[str, ...] | None:
    """Agent slugs as `X-Agent` takes them (`de1`, `at5`; Scraping API Overview > Control headers)."""
    if slugs is None:
        return None
    lower = tuple(s.strip().lower() for s in slugs)
    bad = [s for s in lower if not _AGENT.match(s)]
    if bad:
        raise PydanticCustomError("agent_slug", "not agent slugs like de1: {bad}", {"bad": ", ".join(bad)})
    return lower


class ScrapingConfig(Section):
    """The 55-Tech Scraping API as a relay for HTTP feeds (`scraping:` in config.yaml;
    bot/feeds/scraping.py, docs/reference/scraping.md). A feed whose `transport` is `scraping`
    sends its requests as `POST {base_url}/fetch` with `X-Target-URL`; `geo` and `agent` are the
    defaults of the `X-Geo` and `X-Agent` control headers (a feed may set its own)."""

    base_url: str = "https://scraping-api.55-tech.com"
    api_key: SecretStr | None = Field(None, description="X-API-Key of the Scraping API (BOT_SCRAPING__API_KEY)")
    geo: tuple[str, ...] = Field((), description="X-Geo: ISO country codes the agents must be in (empty = any)")
    agent: tuple[str, ...] = Field((), description="X-Agent: agent slugs to route through, e.g. de1 (empty = any)")
    expect_json: bool = Field(False, description="send X-Expect-JSON: 1 (the targets answer JSON)")
    timeout_seconds: float = Field(
        30.0, gt=0, le=600, description="target timeout when the feed's client sets none (the API's default is 30)"
    )
    requests_per_second: float = Field(
        10.0, gt=0, description="client-side budget per API key (the API's default limit is 10/s)"
    )
    max_attempts: int = Field(4, ge=1, le=10, description="tries per request on 429, 502 and 504")
    backoff_initial_seconds: float = Field(1.0, gt=0, description="first retry wait (doubling: 1 s, 2 s, 4 s)")
    backoff_max_seconds: float = Field(30.0, gt=0, description="retry wait ceiling")
    retry_after_max_seconds: float = Field(60.0, gt=0, description="a longer Retry-After is capped at this")

    @field_validator("geo")
    @classmethod
    def _geo(cls, codes: tuple[str, ...]) -> tuple[str, ...]:
        return _geo_codes(codes) or ()

    @field_validator("agent")
    @classmethod
    def _agent(cls, slugs: tuple[str, ...]) -> tuple[str, ...]:
        return _agent_slugs(slugs) or ()


class HttpTransportOptions(Section):
    """How an HTTP feed reaches its host: `direct`, or `scraping` through the Scraping API relay
    (bot/feeds/scraping.py) with the `scraping:` section's key. Any httpx-based feed config
    inherits this; `scraping_geo` / `scraping_agent` override `scraping.geo` / `scraping.agent`
    for this feed only."""

    transport: Literal["direct", "scraping"] = Field(
        "direct", description="direct, or scraping: relay the requests through the 55-Tech Scraping API"
    )
    scraping_geo: tuple[str, ...] | None = Field(None, description="X-Geo for this feed (default: scraping.geo)")
    scraping_agent: tuple[str, ...] | None = Field(None, description="X-Agent for this feed (default: scraping.agent)")

    @field_validator("scraping_geo")
    @classmethod
    def _geo(cls, codes: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return _geo_codes(codes)

    @field_validator("scraping_agent")
    @classmethod
    def _agent(cls, slugs: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return _agent_slugs(slugs)


class OddsApiConfig(HttpTransportOptions):
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


class OddsPapiConfig(HttpTransportOptions):
    """OddsPapi v5 in ABP's own ids (bot/feeds/oddspapi.py; docs/reference/oddspapi.md §5-§6): a
    REST snapshot, then the WebSocket `odds` channel. At least one of `sport_ids`,
    `tournament_ids`, `fixture_ids` chooses the fixtures; `bookmakers` are OddsPapi (= ABP) slugs."""

    base_url: str = Field("https://v5.oddspapi.io", description="REST host; paths are /{lang}/...")
    lang: str = Field("en", pattern=r"^[a-z]{2}$", description="language prefix of every REST path")
    ws_url: str = Field("wss://v5.oddspapi.io/ws", description="WebSocket URL (accounts may use another host)")
    api_key: SecretStr
    sport_ids: tuple[int, ...] = Field((), description="OddsPapi sportIds (10 soccer, 11 basketball, 14 American football)")
    tournament_ids: tuple[int, ...] = ()
    fixture_ids: tuple[str, ...] = ()
    bookmakers: tuple[str, ...] = Field(min_length=1, description="OddsPapi/ABP slugs; odds are gated by bookmaker")
    hours_ahead: float = Field(48.0, gt=0, description="fixtures starting within this many hours (and live ones)")
    participant1_away_sports: tuple[int, ...] = Field(
        (14,), description="sportIds whose participant 1 is the away team (NFL lists the visitor first)")
    participant1_away_tournaments: tuple[int, ...] = Field(
        (), description="tournamentIds whose participant 1 is the away team, whatever the sport")
    odds_requests_per_second: float = Field(10.0, gt=0, description="odds endpoints' limit per key (10/s)")
    requests_per_minute: float = Field(100.0, gt=0, description="every other endpoint's limit per key (100/min)")
    timeout_seconds: float = Field(20.0, gt=0)
    login_timeout_seconds: float = Field(10.0, gt=0, description="wait this long for login_ok")
    ping_interval_seconds: float = Field(20.0, gt=0, description="WebSocket keepalive ping; no pong = reconnect")
    reconnect_initial_seconds: float = Field(1.0, gt=0, description="First reconnect backoff (jittered, doubling)")
    reconnect_max_seconds: float = Field(60.0, gt=0, description="Reconnect backoff ceiling")
    max_frame_bytes: int = Field(64 * 1024 * 1024, gt=0, description="larger WebSocket frames close the session")

    @model_validator(mode="after")
    def _some_fixtures(self) -> OddsPapiConfig:
        if not (self.sport_ids or self.tournament_ids or self.fixture_ids):
            raise ValueError("set sport_ids, tournament_ids or fixture_ids (which fixtures to follow)")
        return self


class OlympusEventConfig(Section):
    """One Bet365 event polled through Olympus (`POST /matchmarkets/markets`, optionally `POST /props`)."""

    pd: str = Field(min_length=1, description="Bet365 page descriptor of the event, e.g. #AC#B12#C20426855#D19#E1#F19#")
    props: bool = Field(False, description="also poll POST /props for this event")
    sport: str | None = Field(None, description="sport label for the fixture (default: the competition in EV.TB)")
    start_time: AwareDatetime | None = Field(None, description="kickoff (UTC); default: the EV record's BC field")


class OlympusConfig(HttpTransportOptions):
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
    oddspapi: OddsPapiConfig | None = None
    olympus: OlympusConfig | None = None
    stale_after_seconds: float = Field(
        900.0, gt=0, description="A price older than this (engine clock) is stale"
    )
    restart_initial_seconds: float = Field(
        1.0, gt=0, description="A live feed that fails is restarted after this (jittered, doubling)"
    )
    restart_max_seconds: float = Field(60.0, gt=0, description="Live feed restart backoff ceiling")
