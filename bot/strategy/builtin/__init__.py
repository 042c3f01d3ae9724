"""Strategies shipped with the bot, registered as entry points of the `bot.strategies` group
(`value`, `arbitrage`, `template`)."""
