"""The research loop (docs/research.md): `bot backtest` over historical odds, closing line
value, statistics with intervals, the HTML report with plots, and parameter sweeps."""
