"""What every request body is built on."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path
from pydantic import BaseModel, ConfigDict, field_validator

# C0 control characters other than tab and line breaks. PostgreSQL cannot store NUL in text at all,
# and none of them belongs in a name, a note or an answer, so they are refused on both databases alike.
_CONTROL = {chr(c) for c in range(32)} - {"\t", "\n", "\r"}
# For str.translate: what a web form's text loses before it is used (browsers never send these).
WITHOUT_CONTROL = dict.fromkeys(map(ord, _CONTROL))


def _has_control(value: Any) -> bool:
    if isinstance(value, str):
        return not _CONTROL.isdisjoint(value)
    if isinstance(value, list | tuple | set):
        return any(_has_control(v) for v in value)
    if isinstance(value, dict):
        return any(_has_control(k) or _has_control(v) for k, v in value.items())
    return False


class RequestBody(BaseModel):
    """Strict: a number sent as a string, or a string for a boolean, is refused (422) rather than
    guessed at, so what the API accepts is exactly what its description says."""

    model_config = ConfigDict(strict=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, value: Any) -> Any:
        if _has_control(value):
            raise ValueError("must not contain control characters")
        return value


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
