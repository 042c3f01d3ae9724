"""Configuration (docs/architecture.md, "Configuration"): the `Section` base every stage's config
derives from (`base`), the top-level `Settings` model and its loader (`settings`), `${VAR}`
expansion of file values (`expand`), the one formatter that turns pydantic errors into one-line
messages (`errors`), the checks `bot run` and `bot config check` share before trading
(`preflight`) and the `-c/--config` option the command lines share (`options`)."""
