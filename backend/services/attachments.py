"""Evidence and documents attached to a case (R17): images, PDF and audio, their type decided by
their content (never by the name or the browser's claim), their size capped, stored under the data
folder (outside anything served as static files) under a name that tells nothing."""

from __future__ import annotations

import datetime as dt
import secrets
import unicodedata
from pathlib import Path

from sqlalchemy.orm import Session

from backend.models import Attachment, Case, CaseEvent, User

ATTACHMENT_MAX_BYTES = 10 * 1024 * 1024
NAME_MAX = 120

# content type -> extension, for the kinds accepted
ACCEPTED = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "application/pdf": "pdf",
    "audio/wav": "wav",
    "audio/mpeg": "mp3",
    "audio/ogg": "ogg",
}


class AttachmentError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def sniff(head: bytes) -> str | None:
    """The content type of a file from its first bytes, or None for anything not accepted."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "audio/mpeg"
    if head.startswith(b"OggS"):
        return "audio/ogg"
    return None


def safe_display_name(name: str) -> str:
    """The uploader's file name, only for display: no path, no control characters, bounded."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if not unicodedata.category(ch).startswith("C")).strip()
    return (name or "پیوست")[:NAME_MAX]


def attachments_dir(data_dir: Path) -> Path:
    return data_dir / "attachments"


def store_attachment(
    session: Session,
    data_dir: Path,
    case: Case,
    filename: str,
    content: bytes,
    *,
    user: User | None,
    actor: str,
    now: dt.datetime,
) -> Attachment:
    if not content:
        raise AttachmentError("empty_file", "the file is empty")
    if len(content) > ATTACHMENT_MAX_BYTES:
        raise AttachmentError(
            "file_too_large", f"a file has at most {ATTACHMENT_MAX_BYTES // (1024 * 1024)} MB"
        )
    content_type = sniff(content[:16])
    if content_type is None:
        raise AttachmentError("unsupported_type", "only images (JPEG, PNG, WebP), PDF and audio are accepted")
    # <case id>/<random>.<ext>: neither the caller nor the uploader's file name is in the path.
    relative = f"{case.id}/{secrets.token_hex(16)}.{ACCEPTED[content_type]}"
    target = attachments_dir(data_dir) / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content)
    attachment = Attachment(
        case=case,
        filename=safe_display_name(filename),
        content_type=content_type,
        size_bytes=len(content),
        path=relative,
        uploaded_by_id=user.id if user else None,
        created_at=now,
    )
    session.add(attachment)
    session.add(
        CaseEvent(
            case=case,
            at=now,
            action="attach",
            from_status=case.status,
            to_status=case.status,
            actor=actor,
            actor_user_id=user.id if user else None,
            unit_id=case.current_unit_id,
            note=attachment.filename,
        )
    )
    return attachment


def attachment_file(data_dir: Path, attachment: Attachment) -> Path | None:
    """The stored file, if it is still inside the attachments folder."""
    root = attachments_dir(data_dir).resolve()
    path = (root / attachment.path).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path
