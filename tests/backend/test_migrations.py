"""The migrations build exactly the schema the models describe."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from backend.core.db import get_engine
from backend.models import Base
from backend.transcription.search_schema import include_object


def test_migrations_match_models(db):
    with get_engine().connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"include_object": include_object}), Base.metadata
        )
    assert diff == []
