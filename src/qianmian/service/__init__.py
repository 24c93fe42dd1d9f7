"""The decision service: the FastAPI app, its API keys and roles, audit and request limits."""
