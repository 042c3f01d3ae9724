"""The risk stage (docs/architecture.md, "Risk"): `manager` runs a signal through the ordered
`checks`; `positions` is the one source of exposure; `control` the trading state, kill switch and
trading day; `breakers` the circuit breakers; `cli` the `bot risk` commands."""
