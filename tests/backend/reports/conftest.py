"""Staff of every role and a movable clock for the report tests (the console's fixtures)."""

from tests.backend.api.test_staff import clock  # noqa: F401
from tests.backend.console.conftest import staff  # noqa: F401
