"""The staff fixtures (users, a movable clock) for the report tests."""

from tests.backend.api.test_staff import clock, staff  # noqa: F401
