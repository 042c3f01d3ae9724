"""Configuration: the `Section` base every stage's config derives from (`base`), the top-level
`Settings` model and its loader (`settings`), and the one formatter that turns pydantic errors
into one-line messages (`errors`)."""
