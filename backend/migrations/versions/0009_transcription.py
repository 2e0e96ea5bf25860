"""transcription drafts (speech recognition) and full-text search over transcripts

Revision ID: 0009
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import backend.models.base

revision = "0009"
down_revision = "0006"
branch_labels = None
depends_on = None

# SQLite: one FTS5 table over drafts and final transcripts, kept in step by triggers. Its rowid says
# whose text it is (even: transcription id * 2, a draft; odd: case id * 2 + 1, the final transcript),
# so a change replaces exactly one row without scanning the index.
SQLITE_SEARCH = [
    "CREATE VIRTUAL TABLE transcript_search USING fts5(body, tokenize='unicode61 remove_diacritics 2')",
    """CREATE TRIGGER transcription_search_ai AFTER INSERT ON transcription WHEN new.text IS NOT NULL
       BEGIN INSERT INTO transcript_search(rowid, body) VALUES (new.id * 2, new.text); END""",
    """CREATE TRIGGER transcription_search_au AFTER UPDATE OF text ON transcription
       BEGIN
         DELETE FROM transcript_search WHERE rowid = old.id * 2;
         INSERT INTO transcript_search(rowid, body) SELECT new.id * 2, new.text WHERE new.text IS NOT NULL;
       END""",
    """CREATE TRIGGER transcription_search_ad AFTER DELETE ON transcription
       BEGIN DELETE FROM transcript_search WHERE rowid = old.id * 2; END""",
    """CREATE TRIGGER case_transcript_search_ai AFTER INSERT ON case_file WHEN new.transcript IS NOT NULL
       BEGIN INSERT INTO transcript_search(rowid, body) VALUES (new.id * 2 + 1, new.transcript); END""",
    """CREATE TRIGGER case_transcript_search_au AFTER UPDATE OF transcript ON case_file
       BEGIN
         DELETE FROM transcript_search WHERE rowid = old.id * 2 + 1;
         INSERT INTO transcript_search(rowid, body)
           SELECT new.id * 2 + 1, new.transcript WHERE new.transcript IS NOT NULL;
       END""",
    """CREATE TRIGGER case_transcript_search_ad AFTER DELETE ON case_file
       BEGIN DELETE FROM transcript_search WHERE rowid = old.id * 2 + 1; END""",
    """INSERT INTO transcript_search(rowid, body)
       SELECT id * 2 + 1, transcript FROM case_file WHERE transcript IS NOT NULL""",
]
SQLITE_TRIGGERS = [
    "transcription_search_ai",
    "transcription_search_au",
    "transcription_search_ad",
    "case_transcript_search_ai",
    "case_transcript_search_au",
    "case_transcript_search_ad",
]

# PostgreSQL: GIN indexes on the same expressions the search query uses ('simple': no stemming,
# which suits Persian, for which PostgreSQL has no dictionary).
POSTGRES_SEARCH = [
    "CREATE INDEX ix_transcription_text_fts ON transcription "
    "USING gin (to_tsvector('simple', coalesce(text, '')))",
    "CREATE INDEX ix_case_file_transcript_fts ON case_file "
    "USING gin (to_tsvector('simple', coalesce(transcript, '')))",
]


def upgrade() -> None:
    op.create_table(
        "transcription",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recording_id", sa.Integer(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("words", sa.JSON(), nullable=True),
        sa.Column("model", sa.String(length=120), nullable=True),
        sa.Column("audio_seconds", sa.Float(), nullable=True),
        sa.Column("wall_seconds", sa.Float(), nullable=True),
        sa.Column("cpu_seconds", sa.Float(), nullable=True),
        sa.Column("real_time_factor", sa.Float(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_until", backend.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("worker", sa.String(length=120), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", backend.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", backend.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", backend.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["recording_id"], ["recording.id"], name=op.f("fk_transcription_recording_id_recording")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transcription")),
        sa.UniqueConstraint("recording_id", name=op.f("uq_transcription_recording_id")),
    )
    with op.batch_alter_table("transcription", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_transcription_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_transcription_lease_until"), ["lease_until"], unique=False)
        batch_op.create_index(batch_op.f("ix_transcription_finished_at"), ["finished_at"], unique=False)
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for statement in SQLITE_SEARCH:
            op.execute(statement)
    elif dialect == "postgresql":
        for statement in POSTGRES_SEARCH:
            op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for trigger in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS transcript_search")
    elif dialect == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_case_file_transcript_fts")
        op.execute("DROP INDEX IF EXISTS ix_transcription_text_fts")
    with op.batch_alter_table("transcription", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_transcription_finished_at"))
        batch_op.drop_index(batch_op.f("ix_transcription_lease_until"))
        batch_op.drop_index(batch_op.f("ix_transcription_status"))
    op.drop_table("transcription")
