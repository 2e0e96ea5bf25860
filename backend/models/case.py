"""Cases, the confidential identity behind them, and everything that happens to them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text, event
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from backend.models.base import Base, UTCDateTime, utcnow


class Caller(Base):
    """A complainant's identity. Only ciphertext and keyed hashes are stored (R9)."""

    __tablename__ = "caller"

    id: Mapped[int] = mapped_column(primary_key=True)
    # One row per person: concurrent first calls with one national ID cannot make two identities.
    national_id_hash: Mapped[str | None] = mapped_column(String(64), index=True, unique=True)
    national_id_enc: Mapped[str | None] = mapped_column(Text)
    # The number the caller first called from. Messages and ownership use the case's own number
    # (Case.phone_*): a later call from another number must not redirect earlier cases' SMS.
    phone_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    phone_enc: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Case(Base):
    __tablename__ = "case_file"
    # Reports and the public page read one service's cases of a period (R19, R20).
    __table_args__ = (Index("ix_case_file_service_created_at", "service", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tracking_code: Mapped[str] = mapped_column(String(10), unique=True)
    service: Mapped[str] = mapped_column(String(16), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    category: Mapped[str | None] = mapped_column(String(40))
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    channel: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    transcript: Mapped[str | None] = mapped_column(Text)
    answer: Mapped[str | None] = mapped_column(Text)
    # The caller hung up while recording: what was said is kept, and flagged (R5).
    incomplete: Mapped[bool] = mapped_column(Boolean, default=False)
    # Idempotency key from the IVR (Asterisk's unique id): the same call never makes two cases.
    call_id: Mapped[str | None] = mapped_column(String(80), unique=True)
    # Keyed hash of what the filing said (identity, kind, message...): a replay under the same call_id
    # must say the same, or it is a conflict, not a replay.
    request_hash: Mapped[str | None] = mapped_column(String(64))
    # The number this case was filed from (encrypted, and a keyed hash to match it): its SMS go
    # there and it proves ownership; it never changes when the same person calls from elsewhere.
    phone_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    phone_enc: Mapped[str | None] = mapped_column(Text)
    caller_id: Mapped[int | None] = mapped_column(ForeignKey("caller.id"), index=True)
    current_unit_id: Mapped[int | None] = mapped_column(ForeignKey("unit.id"), index=True)
    due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    satisfaction: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Milestones for reports (R19), kept from the case's events as they are written (backend/models/
    # milestones.py), so every report figure is one GROUP BY over this table.
    first_screened_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    first_referred_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    first_answered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    late_returns: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The unit the case was last referred to: the one answering for it in reports, even once the
    # answer has gone up and the case sits at the central office.
    handling_unit_id: Mapped[int | None] = mapped_column(ForeignKey("unit.id"), index=True)

    caller: Mapped[Caller | None] = relationship()
    current_unit = relationship("Unit", foreign_keys=[current_unit_id])
    events: Mapped[list[CaseEvent]] = relationship(
        back_populates="case", order_by="CaseEvent.id", cascade="save-update, merge"
    )
    referrals: Mapped[list[Referral]] = relationship(back_populates="case", order_by="Referral.id")
    recordings: Mapped[list[Recording]] = relationship(back_populates="case", order_by="Recording.id")
    attachments: Mapped[list[Attachment]] = relationship(back_populates="case", order_by="Attachment.id")
    aliases: Mapped[list[CaseCode]] = relationship(back_populates="case", order_by="CaseCode.id")


class CaseCode(Base):
    """Another tracking code a caller was told for a case: an IVR node issued it while the backend's
    answer was lost, and the backend had already filed the call under its own code. Either resolves."""

    __tablename__ = "case_code"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(10), unique=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_file.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    case: Mapped[Case] = relationship(back_populates="aliases")


class CaseEvent(Base):
    """Append-only history: every state change and every act on a case."""

    __tablename__ = "case_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_file.id"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    action: Mapped[str] = mapped_column(String(30))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str | None] = mapped_column(String(20))
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    # "ivr", "system", "scheduler", or the username: who did it, readable without a join.
    actor: Mapped[str] = mapped_column(String(64))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("unit.id"))
    note: Mapped[str | None] = mapped_column(Text)

    case: Mapped[Case] = relationship(back_populates="events")
    unit = relationship("Unit")


class HistoryIsAppendOnly(RuntimeError):
    pass


@event.listens_for(Session, "before_flush")
def _refuse_history_rewrites(session: Session, _ctx, _instances) -> None:
    # The history is evidence: what happened to a case is added to, never edited or removed.
    for obj in session.dirty:
        if isinstance(obj, CaseEvent) and session.is_modified(obj):
            raise HistoryIsAppendOnly("case events cannot be changed once written")
    for obj in session.deleted:
        if isinstance(obj, CaseEvent):
            raise HistoryIsAppendOnly("case events cannot be deleted")


class Referral(Base):
    """One unit's turn with a case, with its own deadline (R11-R13)."""

    __tablename__ = "referral"
    __table_args__ = (
        # A report's "units with the most late returns": the referrals returned within the period.
        Index("ix_referral_state_closed_at", "state", "closed_at"),
        # The scheduler's every tick: open referrals past their deadline, most overdue first. One range
        # of this index, however many referrals are open (issue 13: no scan of the open ones).
        Index("ix_referral_state_due_at", "state", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_file.id"), index=True)
    from_unit_id: Mapped[int | None] = mapped_column(ForeignKey("unit.id"))
    to_unit_id: Mapped[int] = mapped_column(ForeignKey("unit.id"), index=True)
    referred_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    referred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    # open | answered | returned | referred_on | sent_back | escalated (handed to the level above)
    state: Mapped[str] = mapped_column(String(20), default="open", index=True)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(Text)

    case: Mapped[Case] = relationship(back_populates="referrals")
    to_unit = relationship("Unit", foreign_keys=[to_unit_id])
    from_unit = relationship("Unit", foreign_keys=[from_unit_id])


class Recording(Base):
    __tablename__ = "recording"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("case_file.id"), index=True)
    call_log_id: Mapped[int | None] = mapped_column(ForeignKey("call_log.id"), index=True)
    # message: what the caller said for the case; call: the whole call (supervisors' log)
    kind: Mapped[str] = mapped_column(String(20), default="message")
    path: Mapped[str] = mapped_column(Text)
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    case: Mapped[Case | None] = relationship(back_populates="recordings")


class Attachment(Base):
    """Evidence and documents (R17)."""

    __tablename__ = "attachment"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("case_file.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(Text)
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    case: Mapped[Case] = relationship(back_populates="attachments")
