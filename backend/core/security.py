"""Confidentiality of the complainant (R9): identities are encrypted at rest and found by a keyed
hash, so a copy of the database alone reveals neither national IDs nor phone numbers."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
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
        return cls.from_keys(settings.secret_key, settings.lookup_key)

    @classmethod
    def from_keys(cls, secret_key: str, lookup_key: str) -> IdentityVault:
        if not secret_key or not lookup_key:
            raise MissingSecret(
                "DIDEHBAN_SECRET_KEY and DIDEHBAN_LOOKUP_KEY must be set (`didehban keys` prints new ones)"
            )
        return cls(Fernet(secret_key.encode()), lookup_key.encode())

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


# --- staff passwords: argon2id (argon2-cffi); scrypt hashes of earlier releases still verify --------

_LEGACY_SCRYPT = "scrypt$"


def password_hasher() -> PasswordHasher:
    # argon2id with the configured cost; a stored hash made with other parameters (or the scrypt of
    # earlier releases) is rehashed at the owner's next successful login.
    from backend.core.config import get_settings

    s = get_settings()
    return _hasher(s.password_time_cost, s.password_memory_kib, s.password_parallelism)


@lru_cache
def _hasher(time_cost: int, memory_kib: int, parallelism: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)


def hash_password(password: str) -> str:
    return password_hasher().hash(password)


def _verify_scrypt(password: str, stored: str) -> bool:
    try:
        _, salt_b64, digest_b64 = stored.split("$")
        salt, expected = base64.b64decode(salt_b64), base64.b64decode(digest_b64)
    except (ValueError, binascii.Error):
        return False
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
    return hmac.compare_digest(digest, expected)


def verify_password(password: str, stored: str) -> bool:
    if stored.startswith(_LEGACY_SCRYPT):
        return _verify_scrypt(password, stored)
    try:
        return password_hasher().verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def password_needs_rehash(stored: str) -> bool:
    """True for the old scrypt format and for argon2 hashes made with other parameters."""
    if stored.startswith(_LEGACY_SCRYPT):
        return True
    try:
        return password_hasher().check_needs_rehash(stored)
    except InvalidHashError:
        return True


@lru_cache
def _unknown_user_hash(time_cost: int, memory_kib: int, parallelism: int) -> str:
    return _hasher(time_cost, memory_kib, parallelism).hash(secrets.token_urlsafe(16))


def spend_password_work(password: str) -> None:
    """The same hashing work as a real check, for a username that does not exist (or has no
    password): an unknown name must take as long to refuse as a wrong password."""
    hasher = password_hasher()
    verify_password(password, _unknown_user_hash(hasher.time_cost, hasher.memory_cost, hasher.parallelism))


def tokens_match(given: str, expected: str) -> bool:
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


# --- staff session tokens: <base64 json>.<hmac>, signed with DIDEHBAN_SESSION_KEY ----------------
# The token names a session row (`sid`): logging out, a password reset or a revocation ends the row,
# so a token stops working before it expires.


class InvalidSession(ValueError):
    pass


@dataclass(frozen=True)
class SessionClaims:
    user_id: int
    session_id: str
    expires_at: float


def new_session_id() -> str:
    return secrets.token_urlsafe(24)


def issue_session_token(user_id: int, session_id: str, key: str, expires_at: float) -> str:
    if not key:
        raise MissingSecret("DIDEHBAN_SESSION_KEY must be set (`didehban keys` prints one)")
    claims = {"uid": user_id, "sid": session_id, "exp": expires_at}
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode()
    signature = hmac.new(key.encode(), body.encode(), hashlib.sha256).hexdigest()
    return f"{body}.{signature}"


def read_session_token(token: str, key: str, now: float) -> SessionClaims:
    body, _, signature = token.rpartition(".")
    expected = hmac.new(key.encode(), body.encode(), hashlib.sha256).hexdigest()
    # Bytes, not str: compare_digest refuses non-ASCII strings, and a token is untrusted input.
    if not body or not key or not hmac.compare_digest(signature.encode(), expected.encode()):
        raise InvalidSession("the session token is not valid")
    try:
        claims = json.loads(base64.urlsafe_b64decode(body))
        parsed = SessionClaims(int(claims["uid"]), str(claims["sid"]), float(claims["exp"]))
    except (ValueError, KeyError, TypeError, binascii.Error):
        # Signed but without a session id: issued before sessions were kept. Log in again.
        raise InvalidSession("the session token is not valid: log in again") from None
    if parsed.expires_at < now:
        raise InvalidSession("the session has expired: log in again")
    return parsed
