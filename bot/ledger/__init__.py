"""The ledger (orders, bets, settlements, events, state): SQLite, or PostgreSQL shared by several
instances. `bot.ledger.store.Ledger` is the class; this package imports nothing on its own, so
reading the config (`bot.ledger.config`) stays light."""
