"""Simulators (docs/architecture.md, "Simulators"): what stands in for the outside world in paper
mode, backtests and tests. The paper venue (ABP's documented order semantics in process), its
adapters to the engine, paper settlement from real results, and the local ABP and BoltOdds
servers that speak the real protocols over loopback (those need the `sim` extra). Nothing on the
live path imports this package."""
