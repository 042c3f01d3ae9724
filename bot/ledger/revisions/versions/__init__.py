"""Ledger schema revisions, one per schema version: `00NN_<what>.py` upgrades N-1 to N."""
