"""Alembic's script directory for the ledger schema (bot/ledger/migrations.py runs it)."""
