"""Base model for every config section: unknown keys are rejected, so a misspelt key stops
start-up with a message naming it instead of being silently ignored."""

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
