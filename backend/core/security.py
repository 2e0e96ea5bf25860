"""Confidentiality of the complainant (R9): identities are encrypted at rest and found by a keyed
hash, so a copy of the database alone reveals neither national IDs nor phone numbers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken

from backend.core.config import Settings
from domain.privacy import mask_phone as mask_phone  # re-exported: the backend's callers import it here


class MissingSecret(RuntimeError):
    pass


@dataclass(frozen=True)
class IdentityVault:
    fernet: Fernet
    lookup_key: bytes

    @classmethod
    def from_settings(cls, settings: Settings) -> IdentityVault:
        if not settings.secret_key or not settings.lookup_key:
            raise MissingSecret(
                "DIDEHBAN_SECRET_KEY and DIDEHBAN_LOOKUP_KEY must be set (`didehban keys` prints new ones)"
            )
        return cls(Fernet(settings.secret_key.encode()), settings.lookup_key.encode())

    def encrypt(self, value: str) -> str:
        return self.fernet.encrypt(value.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self.fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise MissingSecret("this identity was encrypted under another DIDEHBAN_SECRET_KEY") from exc

    def lookup_hash(self, value: str) -> str:
        return hmac.new(self.lookup_key, value.encode(), hashlib.sha256).hexdigest()


def new_secrets() -> dict[str, str]:
    return {
        "DIDEHBAN_SECRET_KEY": Fernet.generate_key().decode(),
        "DIDEHBAN_LOOKUP_KEY": secrets.token_urlsafe(32),
        "DIDEHBAN_IVR_TOKEN": secrets.token_urlsafe(24),
        "DIDEHBAN_SESSION_KEY": secrets.token_urlsafe(32),
        "DIDEHBAN_AMI_SECRET": secrets.token_urlsafe(16),
        # The IVR node's own key: its spool of cases waiting for the backend is encrypted under it.
        "DIDEHBAN_SPOOL_KEY": Fernet.generate_key().decode(),
    }


# --- staff passwords: scrypt from the standard library, no extra dependency ------------------


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, salt_b64, digest_b64 = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    digest = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt_b64), n=2**14, r=8, p=1)
    return hmac.compare_digest(digest, base64.b64decode(digest_b64))


def tokens_match(given: str, expected: str) -> bool:
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


# --- staff session tokens: <base64 json>.<hmac>, signed with DIDEHBAN_SESSION_KEY ----------------


class InvalidSession(ValueError):
    pass


def issue_session_token(user_id: int, key: str, expires_at: float) -> str:
    import json

    if not key:
        raise MissingSecret("DIDEHBAN_SESSION_KEY must be set (`didehban keys` prints one)")
    body = base64.urlsafe_b64encode(json.dumps({"uid": user_id, "exp": expires_at}).encode()).decode()
    signature = hmac.new(key.encode(), body.encode(), hashlib.sha256).hexdigest()
    return f"{body}.{signature}"


def read_session_token(token: str, key: str, now: float) -> int:
    import json

    body, _, signature = token.rpartition(".")
    expected = hmac.new(key.encode(), body.encode(), hashlib.sha256).hexdigest()
    if not body or not key or not hmac.compare_digest(signature, expected):
        raise InvalidSession("the session token is not valid")
    claims = json.loads(base64.urlsafe_b64decode(body))
    if claims["exp"] < now:
        raise InvalidSession("the session has expired: log in again")
    return int(claims["uid"])
