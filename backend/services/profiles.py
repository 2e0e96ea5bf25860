"""The service profiles this backend serves: the folder named by its settings."""

from __future__ import annotations

from backend.core.config import get_settings
from domain.profiles import ServiceProfile, UnknownService, profile_of, profiles_in

__all__ = ["ServiceProfile", "UnknownService", "get_profile", "get_profiles"]


def get_profiles() -> dict[str, ServiceProfile]:
    return profiles_in(str(get_settings().services_dir))


def get_profile(number: str) -> ServiceProfile:
    return profile_of(get_profiles(), number)
