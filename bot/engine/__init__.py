"""The engine: wires the stages (feeds -> market -> strategy -> risk -> execution -> ledger) into
one asyncio process (`core`), builds it from the config (`wiring`), and runs its periodic jobs,
logging and replay progress."""
