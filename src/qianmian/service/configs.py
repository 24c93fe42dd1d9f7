"""Configuration of the decision service (the FastAPI app served by ``qianmian serve``).

Nothing heavier than pydantic is imported here, so :mod:`qianmian.config` can name it without
loading FastAPI.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

__all__ = ["ServiceConfig"]


class ServiceConfig(BaseModel):
    """Where the API listens, where its keys live, and how much each key may ask."""

    host: str = Field("127.0.0.1", description="Interface to listen on (localhost by default)")
    port: int = Field(8000, ge=1, le=65535, description="TCP port")
    api_keys_file: Path | None = Field(
        None, description="API keys (hashed) with their roles; default <workspace>/api_keys.json"
    )
    threads: int = Field(
        8,
        ge=1,
        le=256,
        description="Threads of one server process for the blocking routes (profiles, the "
        "decision log, responses, catalogue changes); decisions run on the event loop",
    )
    rate_limit: str = Field(
        "2000/second",
        description="Requests allowed per API key, in the 'limits' notation (e.g. '100/minute'); "
        "a key may carry its own",
    )
