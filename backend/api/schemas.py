"""What every request body is built on."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path
from pydantic import BaseModel, ConfigDict


class RequestBody(BaseModel):
    """Strict: a number sent as a string, or a string for a boolean, is refused (422) rather than
    guessed at, so what the API accepts is exactly what its description says."""

    model_config = ConfigDict(strict=True)


# Ten digits, ASCII or Persian or Arabic-Indic (callers on the web type either); the check digit is
# checked by the route, which answers 422 invalid_tracking_code for a typo.
TRACKING_CODE_PATTERN = "^[0-9۰-۹٠-٩]{10}$"

TrackingCodePath = Annotated[
    str,
    Path(
        description="the case's tracking code, or a code an IVR node told the caller",
        examples=["1012345674"],
        json_schema_extra={"pattern": TRACKING_CODE_PATTERN},
    ),
]


def profile_enums(schema: dict[str, Any]) -> None:
    """Fill in what the service profiles allow (services, kinds, channels, categories) so the API's
    description names the values; the routes still check them, per service, with their own codes."""
    from backend.services.profiles import get_profiles

    profiles = list(get_profiles().values())
    allowed = {
        "service": {p.number for p in profiles},
        "kind": {k for p in profiles for k in p.kinds},
        "channel": {c for p in profiles for c in p.channels},
        "category": {c for p in profiles for c in p.categories},
    }
    for name, values in allowed.items():
        field = schema.get("properties", {}).get(name)
        if field is None:
            continue
        for option in field.get("anyOf", [field]):
            if option.get("type") == "string":
                option["enum"] = sorted(values)
