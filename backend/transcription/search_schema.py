"""The full-text search structures the models do not describe (an FTS5 table and its triggers on
SQLite, expression GIN indexes on PostgreSQL), so schema comparisons leave them alone, and a repair
for SQLite, where a later batch migration that rebuilds case_file drops its triggers."""

from __future__ import annotations

from sqlalchemy import Connection, text

FTS_TABLE = "transcript_search"
PG_INDEXES = ("ix_transcription_text_fts", "ix_case_file_transcript_fts")

SQLITE_TRIGGERS = {
    "transcription_search_ai": """CREATE TRIGGER IF NOT EXISTS transcription_search_ai
        AFTER INSERT ON transcription WHEN new.text IS NOT NULL
        BEGIN INSERT INTO transcript_search(rowid, body) VALUES (new.id * 2, new.text); END""",
    "transcription_search_au": """CREATE TRIGGER IF NOT EXISTS transcription_search_au
        AFTER UPDATE OF text ON transcription
        BEGIN
          DELETE FROM transcript_search WHERE rowid = old.id * 2;
          INSERT INTO transcript_search(rowid, body) SELECT new.id * 2, new.text WHERE new.text IS NOT NULL;
        END""",
    "transcription_search_ad": """CREATE TRIGGER IF NOT EXISTS transcription_search_ad
        AFTER DELETE ON transcription
        BEGIN DELETE FROM transcript_search WHERE rowid = old.id * 2; END""",
    "case_transcript_search_ai": """CREATE TRIGGER IF NOT EXISTS case_transcript_search_ai
        AFTER INSERT ON case_file WHEN new.transcript IS NOT NULL
        BEGIN INSERT INTO transcript_search(rowid, body) VALUES (new.id * 2 + 1, new.transcript); END""",
    "case_transcript_search_au": """CREATE TRIGGER IF NOT EXISTS case_transcript_search_au
        AFTER UPDATE OF transcript ON case_file
        BEGIN
          DELETE FROM transcript_search WHERE rowid = old.id * 2 + 1;
          INSERT INTO transcript_search(rowid, body)
            SELECT new.id * 2 + 1, new.transcript WHERE new.transcript IS NOT NULL;
        END""",
    "case_transcript_search_ad": """CREATE TRIGGER IF NOT EXISTS case_transcript_search_ad
        AFTER DELETE ON case_file
        BEGIN DELETE FROM transcript_search WHERE rowid = old.id * 2 + 1; END""",
}


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    """For alembic: the search structures are made by migration 0009 by hand, not from the models."""
    if type_ == "table" and name and name.startswith(FTS_TABLE):
        return False  # the FTS5 table and its shadow tables (_data, _idx, _content, _docsize, _config)
    return not (type_ == "index" and name in PG_INDEXES)


def repair_sqlite_search(connection: Connection) -> bool:
    """Recreate missing triggers and rebuild the index from the tables. True if anything was missing.
    A no-op on other databases and before migration 0009."""
    if connection.dialect.name != "sqlite":
        return False
    present = set(
        connection.scalars(text("SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger')")).all()
    )
    if FTS_TABLE not in present or set(SQLITE_TRIGGERS) <= present:
        return False
    for statement in SQLITE_TRIGGERS.values():
        connection.execute(text(statement))
    # Changes made while a trigger was missing are not in the index: rebuild it whole.
    connection.execute(text(f"DELETE FROM {FTS_TABLE}"))
    connection.execute(
        text(
            f"INSERT INTO {FTS_TABLE}(rowid, body) "
            "SELECT id * 2, text FROM transcription WHERE text IS NOT NULL "
            "UNION ALL SELECT id * 2 + 1, transcript FROM case_file WHERE transcript IS NOT NULL"
        )
    )
    return True
