"""The engine (docs/architecture.md, "Pipeline"): wires the stages (feeds -> market -> strategy ->
risk -> execution -> ledger) into one asyncio process (`core`), typed against what it needs of
each collaborator (`ports`), builds it from the config (`wiring`), and runs its periodic jobs,
logging and replay progress."""
