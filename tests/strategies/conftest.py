from tests.risk.conftest import env, make_env  # noqa: F401  (same real clock/book/ledger/risk wiring)
