"""The bot's web dashboard, HTTP API, health probes and Prometheus metrics.

Import `bot.web.server` (starlette, uvicorn) only when `web.enabled`: this package's `__init__`
and `bot.web.config` import neither, so a bot with the web off never loads them.
"""
