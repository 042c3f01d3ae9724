"""betbot: odds feeds -> strategies -> risk -> exactly-once execution on 55-Tech ABP (or paper)."""

__version__ = "0.1.0"
