"""Reading Asterisk's CDR file (Master.csv) from where the last reading stopped.

The file only grows, by whole lines, until logrotate moves it aside (a new inode) or someone empties
it (a smaller size, or a different first line once it has grown again). The position (inode, byte
offset, a digest of the file's first bytes) is kept in a small private file, so a reconnect reads
only what was written since, not the whole history again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ivr.ami.book import CallRecord, from_cdr, parse_master_csv

log = logging.getLogger(__name__)


HEAD_BYTES = 256


@dataclass
class Position:
    inode: int = 0
    offset: int = 0
    head: str = ""  # digest of the first min(offset, HEAD_BYTES) bytes read


def _head(path: Path, length: int) -> str:
    with path.open("rb") as f:
        return hashlib.sha256(f.read(min(length, HEAD_BYTES))).hexdigest()


class CdrReader:
    def __init__(self, csv_path: Path, state_path: Path) -> None:
        self.csv_path, self.state_path = csv_path, state_path

    def position(self) -> Position:
        try:
            data = json.loads(self.state_path.read_text())
            return Position(int(data["inode"]), int(data["offset"]), str(data.get("head", "")))
        except (OSError, ValueError, KeyError, TypeError):
            return Position()

    def save(self, position: Position) -> None:
        self.state_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.state_path.with_name(self.state_path.name + ".tmp")
        fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"inode": position.inode, "offset": position.offset, "head": position.head}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.state_path)

    @staticmethod
    def _read_from(path: Path, offset: int) -> tuple[list[CallRecord], int]:
        """Whole lines from `offset` on; a half-written last line waits for the next reading."""
        with path.open("rb") as f:
            f.seek(offset)
            chunk = f.read()
        end = chunk.rfind(b"\n") + 1
        text = chunk[:end].decode("utf-8", errors="replace")
        return [r for r in map(from_cdr, parse_master_csv(text)) if r], offset + end

    def _rotated(self, inode: int) -> Path | None:
        """Where the file we were reading went (Master.csv.1, ...), if it is still there."""
        for candidate in sorted(self.csv_path.parent.glob(self.csv_path.name + ".*")):
            try:
                if candidate.stat().st_ino == inode:
                    return candidate
            except OSError:
                continue
        return None

    def read_new(self) -> tuple[list[CallRecord], Position]:
        """Records written since the saved position, and the position after them. The caller saves
        the position once the records are safe (save()), so a crash in between rereads, never skips."""
        position = self.position()
        records: list[CallRecord] = []
        try:
            stat = self.csv_path.stat()
        except FileNotFoundError:
            return records, position
        if position.inode and position.inode != stat.st_ino:
            # Rotated: finish the old file if it is still beside, then start the new one at 0.
            old = self._rotated(position.inode)
            if old is not None and old.stat().st_size > position.offset:
                records += self._read_from(old, position.offset)[0]
            log.info("the CDR file was rotated: reading the new one from its start")
            position = Position(stat.st_ino, 0)
        elif stat.st_size < position.offset or (
            position.offset and position.head != _head(self.csv_path, position.offset)
        ):
            log.warning("the CDR file was emptied or replaced: reading it again from its start")
            position = Position(stat.st_ino, 0)
        new, offset = self._read_from(self.csv_path, position.offset)
        return records + new, Position(stat.st_ino, offset, _head(self.csv_path, offset))
