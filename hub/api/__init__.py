"""The HTTP layer: the only place FastAPI is imported."""
