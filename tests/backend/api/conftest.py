"""The staff fixtures (users, a movable clock) for every API test module."""

from tests.backend.api.test_staff import clock, staff  # noqa: F401
