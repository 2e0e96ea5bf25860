"""The settings checks an IVR node and the backend share: tracking-code prefixes and the node's spool
key. Plain functions, so the IVR node's settings (read per call by a process-per-call AGI script)
and the backend's pydantic settings apply the same rules with the same messages.

Each check raises ValueError with a message fit for the operator (pydantic turns it into a
validation error on the backend's side; the IVR node's settings name the variable)."""

from __future__ import annotations

import binascii
import json
import re
from base64 import urlsafe_b64decode

# Two digits, not starting with 0: a tracking code's issuer (the backend or one IVR node).
PREFIX = re.compile(r"[1-9][0-9]")
SPOOL_KEY_HINT = "(`didehban keys` prints one)"


def check_prefix(value: str) -> str:
    """A tracking-code prefix (the backend's, or an IVR node's)."""
    if not isinstance(value, str) or not PREFIX.fullmatch(value):
        raise ValueError(f"a tracking-code prefix is two digits, not starting with 0: {value!r}")
    return value


def split_prefixes(value: object) -> object:
    """DIDEHBAN_NODE_PREFIXES as written: "21,22" or a JSON list. Anything else is left to the caller."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


def check_prefixes(values: list[str]) -> list[str]:
    for prefix in values:
        check_prefix(prefix)
    return values


def offline_prefixes(node_prefixes: list[str], backend_prefix: str) -> frozenset[str]:
    """Prefixes an offline code may carry: the IVR nodes', never the backend's own."""
    return frozenset(node_prefixes) - {backend_prefix}


def check_spool_key(key: str) -> bytes:
    """The node's DIDEHBAN_SPOOL_KEY: a Fernet key (32 bytes, url-safe base64). Returns the raw key."""
    if not key:
        raise ValueError(f"DIDEHBAN_SPOOL_KEY is not set {SPOOL_KEY_HINT}")
    try:
        raw = urlsafe_b64decode(key.encode())
    except (binascii.Error, ValueError, TypeError, AttributeError):
        raw = b""
    if len(raw) != 32:
        raise ValueError(f"DIDEHBAN_SPOOL_KEY is not a Fernet key {SPOOL_KEY_HINT}")
    return raw


def node_problem(node_prefix: str, spool_key: str) -> str | None:
    """Why this node may not answer calls (no prefix of its own, no spool key), or None."""
    if not node_prefix:
        return (
            "DIDEHBAN_NODE_PREFIX is not set: give every IVR node its own two-digit prefix "
            "(for example DIDEHBAN_NODE_PREFIX=21), so codes issued offline never collide"
        )
    if not spool_key:
        return f"DIDEHBAN_SPOOL_KEY is not set {SPOOL_KEY_HINT}"
    return None
