"""What every request body is built on."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class RequestBody(BaseModel):
    """Strict: a number sent as a string, or a string for a boolean, is refused (422) rather than
    guessed at, so what the API accepts is exactly what its description says."""

    model_config = ConfigDict(strict=True)
