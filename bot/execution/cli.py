"""`bot abp ...`: the local ABP server for manual runs and tests (mounted by bot/cli.py).

The server is a simulator (docs/architecture.md, "Simulators"): `serve` imports it inside the
command and needs the `sim` extra, so nothing in `bot.execution` imports `bot.sim`.
`bookmakers` prints the feed -> ABP bookmaker map and what the configured ABP key reaches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from bot.config.options import DEFAULT_CONFIG, ConfigOpt, fail, load_or_exit

if TYPE_CHECKING:  # each command imports what it runs: `bot --help` stays light (bot/cli.py)
    from bot.execution.bookmakers import BookmakerRoute
    from bot.execution.config import AbpConfig

app = typer.Typer(help="Local ABP server: a paper venue behind ABP's HTTP + WebSocket protocols.", no_args_is_help=True)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Bind address (keep it on loopback)"),
    port: int = typer.Option(8055, help="Port; 0 picks a free one (printed on start)"),
    api_key: str = typer.Option("local-key", help="The x-api-key / WS apiKey the server accepts"),
    bookmakers: str = typer.Option("pinnacle,betcris,sharpbet", help="Comma-separated ABP slugs the server offers"),
    allowed_bookmakers: str = typer.Option("", help="The key's allowed slugs, comma-separated (empty = all)"),
    book_currency: Annotated[list[str] | None, typer.Option(help="Account currency of a book, BOOK=CUR (repeatable)")] = None,
    rate: Annotated[list[str] | None, typer.Option(help="Currency rate, units per 1 USD, CUR=VALUE (repeatable)")] = None,
    book_max_stake: Annotated[list[str] | None, typer.Option(help="A book's max stake, BOOK=USD (repeatable)")] = None,
    max_stake: float = typer.Option(1000.0, help="Per bookmaker and selection max stake (USD)"),
    min_stake: float = typer.Option(1.0, help="Min stake (USD)"),
    resend_seconds: float = typer.Option(30.0, help="Re-send unacked stream messages after this long"),
    delay: float = typer.Option(0.0, help="Fault: seconds every API answer waits"),
    place_delay: float = typer.Option(0.0, help="Fault: seconds place-orders waits before storing the orders"),
    timeout_n: int = typer.Option(0, help="Fault: next N API requests hang, then 504, doing nothing"),
    drop_after_store: int = typer.Option(0, help="Fault: next N place-orders store the orders, then never answer"),
    drop_hang_seconds: float = typer.Option(3600.0, help="How long timeout_n / drop_after_store requests hang"),
    fail_5xx: int = typer.Option(0, help="Fault: next N API requests answer 503"),
    rate_limit: int = typer.Option(0, help="Fault: next N API requests answer 429"),
    retry_after: float = typer.Option(1.0, help="Retry-After seconds on injected 429s"),
    duplicate_reply: str = typer.Option("skip", help="Duplicate requestUuid answer: skip (R2), 409 or decline (R1)"),
    ws_gap: int = typer.Option(0, help="Fault: next N stream messages are numbered but never sent"),
    lose_while_down: bool = typer.Option(True, help="Messages between a ws-drop and the next login are lost"),
    no_status: bool = typer.Option(False, help="Fault: GET /status answers 404"),
    emergency: bool = typer.Option(False, help="Start in emergency mode (new orders declined)"),
    ping_seconds: float = typer.Option(30.0, help="Server ping interval on the WebSocket"),
) -> None:
    """Serve until interrupted. Faults can also be changed live: POST /_admin/faults,
    /_admin/ws-drop, /_admin/restart, /_admin/renumber, /_admin/emergency, /_admin/status,
    /_admin/rates, /_admin/settle, /_admin/delete-bet; GET /_admin/requests, /_admin/state
    (bot/sim/abp_server.py)."""
    from decimal import Decimal, InvalidOperation

    from pydantic import ValidationError

    from bot.execution.config import PaperConfig
    from bot.sim.extra import require_sim_extra

    require_sim_extra("bot abp serve")
    from bot.sim.abp_server import Faults, LocalAbpServer, parse_pairs
    from bot.sim.paper import StakeLimits
    from bot.sim.serving import serve_until_interrupted

    def split(value: str) -> list[str]:
        return [b.strip() for b in value.split(",") if b.strip()]

    try:
        faults = Faults(delay_seconds=delay, drop_after_store=drop_after_store, drop_hang_seconds=drop_hang_seconds,
                        fail_5xx=fail_5xx, rate_limit=rate_limit, retry_after=retry_after, ws_gap=ws_gap,
                        lose_while_down=lose_while_down, duplicate_reply=duplicate_reply, no_status=no_status,
                        place_delay_seconds=place_delay, timeout_n=timeout_n)
        rates = {k: Decimal(v) for k, v in parse_pairs(rate or [], "--rate").items()}
        limits = {k: StakeLimits(max_stake=Decimal(v)) for k, v in parse_pairs(book_max_stake or [], "--book-max-stake").items()}
        currencies = parse_pairs(book_currency or [], "--book-currency")
    except (ValueError, InvalidOperation, ValidationError) as exc:
        raise typer.BadParameter(str(exc).splitlines()[0]) from exc
    server = LocalAbpServer(
        api_key=api_key, faults=faults, ping_seconds=ping_seconds, bookmakers=split(bookmakers),
        allowed_bookmakers=split(allowed_bookmakers), book_currencies=currencies, rates=rates,
        book_limits=limits, resend_seconds=resend_seconds,
        paper=PaperConfig(default_max_stake=max_stake, default_min_stake=min_stake),
    )
    if emergency:
        server.venue.set_emergency(True, "started in emergency mode")

    def ready(_: LocalAbpServer, url: str) -> None:
        typer.echo(f"ABP local server listening on {url} (ws {url.replace('http', 'ws', 1)}/ws)")

    serve_until_interrupted(lambda: server, host, port, ready)


@app.command()
def settle(
    bet_id: int,
    status: str = typer.Argument(..., help="WON, LOST, VOID, PUSH, HALF_WON, HALF_LOST"),
    url: str = typer.Option("http://127.0.0.1:8055", help="Base URL of a running local server"),
) -> None:
    """Settle a bet on a running local server (POST /_admin/settle)."""
    import httpx

    r = httpx.post(f"{url}/_admin/settle", json={"betId": bet_id, "status": status.upper()}, timeout=5)
    typer.echo(r.text)
    raise typer.Exit(0 if r.status_code == 200 else 1)


@app.command()
def bookmakers(config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """Feed bookmaker slugs and their ABP slugs (the built-in map plus `abp.bookmakers`); with
    `abp.api_key` set, also what ABP offers this key (GET /bookmakers), the books with an active
    account (GET /accounts) and so which are reachable (docs/reference/abp.md §12). Exit 1 when
    ABP cannot be asked."""
    import asyncio

    from rich.console import Console
    from rich.table import Table

    from bot.execution.bookmakers import BookmakerMap, BookmakerRoute

    settings = load_or_exit(config)
    try:
        route = BookmakerRoute(BookmakerMap(settings.abp.bookmakers))
    except ValueError as exc:
        fail(str(exc))
    asked = settings.abp.api_key is not None
    if asked:
        asyncio.run(_load_route(route, settings.abp))
    table = Table(title="bookmakers: feed slug -> ABP slug")
    for column in ("feed slug", "ABP slug", *(("offered", "account", "reachable") if route.loaded else ())):
        table.add_column(column)
    for row in route.describe():
        marks = (_mark(row.offered), "-" if row.account is None else _mark(row.account), _mark(row.reachable))
        table.add_row(row.feed, row.abp or "(not on ABP)", *(marks if route.loaded else ()))
    Console(width=100).print(table)
    if not asked:
        typer.echo("abp.api_key is not set: the map only (set it to see what ABP offers this key)")
    elif not route.loaded:
        typer.echo(f"ABP could not be asked ({settings.abp.base_url}): {route.error}", err=True)
        raise typer.Exit(1)
    else:
        accounts = "no accounts (every offered book)" if route.accounts is None else ", ".join(route.accounts)
        typer.echo(f"reachable: {', '.join(route.reachable) or 'none'}; accounts: {accounts}")


async def _load_route(route: BookmakerRoute, config: AbpConfig) -> None:
    from bot.execution.abp_client import AbpClient

    async with AbpClient(config) as client:
        await route.load(client)


def _mark(value: bool | None) -> str:
    return "yes" if value else "no"


if __name__ == "__main__":
    app()
