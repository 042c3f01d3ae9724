"""`bot abp ...`: the local ABP server for manual runs and tests (mounted by bot/cli.py).

The server is a simulator (docs/architecture.md, "Simulators"): `serve` imports it inside the
command and needs the `sim` extra, so nothing in `bot.execution` imports `bot.sim`.
"""

from __future__ import annotations

import asyncio

import typer

from bot.execution.config import PaperConfig

app = typer.Typer(help="Local ABP server: a paper venue behind ABP's HTTP + WebSocket protocols.", no_args_is_help=True)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Bind address (keep it on loopback)"),
    port: int = typer.Option(8055, help="Port; 0 picks a free one (printed on start)"),
    api_key: str = typer.Option("local-key", help="The x-api-key / WS apiKey the server accepts"),
    bookmakers: str = typer.Option("paper", help="Comma-separated bookmakers that quote every order"),
    max_stake: float = typer.Option(1000.0, help="Per bookmaker and selection max stake (USD)"),
    min_stake: float = typer.Option(1.0, help="Min stake (USD)"),
    delay: float = typer.Option(0.0, help="Fault: seconds every API answer waits"),
    drop_after_store: int = typer.Option(0, help="Fault: next N place-orders store the orders, then never answer"),
    fail_5xx: int = typer.Option(0, help="Fault: next N API requests answer 503"),
    rate_limit: int = typer.Option(0, help="Fault: next N API requests answer 429"),
    retry_after: float = typer.Option(1.0, help="Retry-After seconds on injected 429s"),
    ws_gap: int = typer.Option(0, help="Fault: next N stream messages are numbered but never sent"),
    emergency: bool = typer.Option(False, help="Start in emergency mode (new orders declined)"),
    ping_seconds: float = typer.Option(30.0, help="Server ping interval on the WebSocket"),
) -> None:
    """Serve until interrupted. Faults can also be changed live: POST /_admin/faults,
    /_admin/ws-drop, /_admin/emergency; GET /_admin/requests, /_admin/state."""
    from bot.sim.extra import require_sim_extra

    require_sim_extra("bot abp serve")
    from bot.sim.abp_server import Faults, LocalAbpServer
    from bot.sim.paper import OrderPriceQuotes

    faults = Faults(delay_seconds=delay, drop_after_store=drop_after_store, fail_5xx=fail_5xx,
                    rate_limit=rate_limit, retry_after=retry_after, ws_gap=ws_gap)
    books = [b.strip() for b in bookmakers.split(",") if b.strip()]
    server = LocalAbpServer(
        api_key=api_key, quotes=OrderPriceQuotes(books), faults=faults, ping_seconds=ping_seconds,
        paper=PaperConfig(default_max_stake=max_stake, default_min_stake=min_stake),
    )
    if emergency:
        server.venue.set_emergency(True, "started in emergency mode")

    async def run() -> None:
        url = await server.start(host, port)
        typer.echo(f"ABP local server listening on {url} (ws {url.replace('http', 'ws', 1)}/ws)")
        try:
            await asyncio.Event().wait()
        finally:
            await server.stop()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass


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


if __name__ == "__main__":
    app()
