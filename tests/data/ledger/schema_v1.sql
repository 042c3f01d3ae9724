-- The ledger schema at version 1 (before account-currency columns), as bot/ledger created it;
-- tests/ledger/test_currency_migration.py builds an old database from it.
CREATE TABLE signals (
	id INTEGER NOT NULL, 
	signal_id VARCHAR NOT NULL, 
	strategy VARCHAR NOT NULL, 
	selection VARCHAR NOT NULL, 
	sport VARCHAR NOT NULL, 
	fixture VARCHAR NOT NULL, 
	market VARCHAR NOT NULL, 
	outcome VARCHAR NOT NULL, 
	side VARCHAR NOT NULL, 
	stake VARCHAR NOT NULL, 
	price FLOAT NOT NULL, 
	min_price FLOAT NOT NULL, 
	edge FLOAT NOT NULL, 
	bookmakers VARCHAR NOT NULL, 
	reason VARCHAR NOT NULL, 
	tag VARCHAR NOT NULL, 
	"group" VARCHAR, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id)
);
CREATE INDEX ix_signals_fixture ON signals (fixture);
CREATE UNIQUE INDEX ix_signals_signal_id ON signals (signal_id);
CREATE INDEX ix_signals_selection ON signals (selection);
CREATE INDEX ix_signals_strategy ON signals (strategy);
CREATE INDEX ix_signals_created_at ON signals (created_at);
CREATE TABLE decisions (
	id INTEGER NOT NULL, 
	signal_id VARCHAR NOT NULL, 
	strategy VARCHAR NOT NULL, 
	verdict VARCHAR NOT NULL, 
	reason VARCHAR, 
	requested_stake VARCHAR NOT NULL, 
	approved_stake VARCHAR NOT NULL, 
	details JSON NOT NULL, 
	at DATETIME NOT NULL, 
	PRIMARY KEY (id)
);
CREATE INDEX ix_decisions_strategy ON decisions (strategy);
CREATE INDEX ix_decisions_signal_id ON decisions (signal_id);
CREATE INDEX ix_decisions_reason ON decisions (reason);
CREATE TABLE orders (
	id INTEGER NOT NULL, 
	request_uuid VARCHAR NOT NULL, 
	order_id INTEGER, 
	signal_id VARCHAR NOT NULL, 
	strategy VARCHAR NOT NULL, 
	selection VARCHAR NOT NULL, 
	sport VARCHAR NOT NULL, 
	fixture VARCHAR NOT NULL, 
	bookmakers VARCHAR NOT NULL, 
	fixture_id VARCHAR, 
	outcome_id INTEGER, 
	player_id INTEGER NOT NULL, 
	back BOOLEAN NOT NULL, 
	order_price FLOAT NOT NULL, 
	stake VARCHAR NOT NULL, 
	filled_stake VARCHAR NOT NULL, 
	currency VARCHAR NOT NULL, 
	status VARCHAR NOT NULL, 
	status_reason VARCHAR, 
	user_ref VARCHAR NOT NULL, 
	attempts INTEGER NOT NULL, 
	expires_at DATETIME, 
	created_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (id)
);
CREATE INDEX ix_orders_signal_id ON orders (signal_id);
CREATE INDEX ix_orders_status ON orders (status);
CREATE INDEX ix_orders_strategy ON orders (strategy);
CREATE UNIQUE INDEX ix_orders_request_uuid ON orders (request_uuid);
CREATE INDEX ix_orders_order_id ON orders (order_id);
CREATE TABLE bets (
	id INTEGER NOT NULL, 
	bet_id INTEGER NOT NULL, 
	order_id INTEGER, 
	request_uuid VARCHAR NOT NULL, 
	bookmaker VARCHAR NOT NULL, 
	placed_stake VARCHAR NOT NULL, 
	placed_price FLOAT NOT NULL, 
	placed_currency VARCHAR NOT NULL, 
	bet_status VARCHAR NOT NULL, 
	settlement_status VARCHAR NOT NULL, 
	settlement_amount VARCHAR, 
	placed_at DATETIME, 
	settled_at DATETIME, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (id)
);
CREATE INDEX ix_bets_bookmaker ON bets (bookmaker);
CREATE UNIQUE INDEX ix_bets_bet_id ON bets (bet_id);
CREATE INDEX ix_bets_order_id ON bets (order_id);
CREATE INDEX ix_bets_request_uuid ON bets (request_uuid);
CREATE TABLE settlements (
	id INTEGER NOT NULL, 
	bet_id INTEGER NOT NULL, 
	request_uuid VARCHAR NOT NULL, 
	strategy VARCHAR NOT NULL, 
	bookmaker VARCHAR NOT NULL, 
	sport VARCHAR NOT NULL, 
	status VARCHAR NOT NULL, 
	stake VARCHAR NOT NULL, 
	amount VARCHAR NOT NULL, 
	pnl VARCHAR NOT NULL, 
	at DATETIME NOT NULL, 
	PRIMARY KEY (id)
);
CREATE INDEX ix_settlements_request_uuid ON settlements (request_uuid);
CREATE INDEX ix_settlements_at ON settlements (at);
CREATE UNIQUE INDEX ix_settlements_bet_id ON settlements (bet_id);
CREATE INDEX ix_settlements_strategy ON settlements (strategy);
CREATE TABLE balances (
	id INTEGER NOT NULL, 
	bookmaker VARCHAR NOT NULL, 
	username VARCHAR NOT NULL, 
	currency VARCHAR NOT NULL, 
	balance VARCHAR NOT NULL, 
	at DATETIME NOT NULL, 
	PRIMARY KEY (id)
);
CREATE INDEX ix_balances_bookmaker ON balances (bookmaker);
CREATE TABLE events (
	id INTEGER NOT NULL, 
	at DATETIME NOT NULL, 
	kind VARCHAR NOT NULL, 
	request_uuid VARCHAR, 
	payload JSON NOT NULL, 
	PRIMARY KEY (id)
);
CREATE INDEX ix_events_at ON events (at);
CREATE INDEX ix_events_request_uuid ON events (request_uuid);
CREATE INDEX ix_events_kind ON events (kind);
CREATE TABLE state (
	"key" VARCHAR NOT NULL, 
	value JSON NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY ("key")
);
CREATE TABLE runs (
	id INTEGER NOT NULL, 
	run_id VARCHAR NOT NULL, 
	instance VARCHAR NOT NULL, 
	mode VARCHAR NOT NULL, 
	source VARCHAR NOT NULL, 
	config_hash VARCHAR NOT NULL, 
	pid INTEGER NOT NULL, 
	host VARCHAR NOT NULL, 
	resumed_from VARCHAR, 
	warmup_events INTEGER NOT NULL, 
	last_event_seq INTEGER NOT NULL, 
	last_event_at DATETIME, 
	outcome VARCHAR NOT NULL, 
	started_at DATETIME NOT NULL, 
	ended_at DATETIME, 
	PRIMARY KEY (id)
);
CREATE INDEX ix_runs_source ON runs (source);
CREATE UNIQUE INDEX ix_runs_run_id ON runs (run_id);
CREATE TABLE schema_version (
	version INTEGER NOT NULL, 
	applied_at DATETIME NOT NULL, 
	PRIMARY KEY (version)
);
INSERT INTO schema_version (version, applied_at) VALUES (1, '2025-11-16 12:00:00.000000');
