"""The spool's seal (issue 13): the process-per-call script seals without importing `cryptography`
(ivr.fernet_token), and the tokens are Fernet's, so the deliverer, `didehban spool` and every file
sealed before still open with cryptography's Fernet."""

from __future__ import annotations

import base64
import json
import os

import pytest
from cryptography.fernet import Fernet

from ivr import fernet_token
from ivr.fernet_token import fernet_encrypt
from ivr.spool import Sealer, Spool, SpoolKeyError

KEY = Fernet.generate_key()
RAW = base64.urlsafe_b64decode(KEY)
PAYLOAD = {"national_id": "0013542419", "caller_number": "09121234567", "description": "سلام" * 40}


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 32, 33, 500, 4096])
def test_tokens_are_fernets_byte_for_byte(size):
    data = os.urandom(size)
    iv = os.urandom(16)
    assert fernet_encrypt(RAW, data, now=1_760_000_000, iv=iv) == (
        Fernet(KEY)._encrypt_from_parts(data, 1_760_000_000, iv).decode()
    )
    assert Fernet(KEY).decrypt(fernet_encrypt(RAW, data).encode()) == data


def test_without_libcrypto_the_token_is_made_by_cryptography(monkeypatch):
    monkeypatch.setattr(fernet_token, "_libcrypto", lambda: None)
    assert Fernet(KEY).decrypt(fernet_encrypt(RAW, b"payload").encode()) == b"payload"


def test_sealed_payloads_open_both_ways():
    sealer = Sealer(KEY.decode())
    token = sealer.seal(PAYLOAD)
    assert json.loads(Fernet(KEY).decrypt(token.encode())) == PAYLOAD
    # A payload sealed before this change (by cryptography's Fernet) still opens.
    old = Fernet(KEY).encrypt(json.dumps(PAYLOAD, ensure_ascii=False).encode()).decode()
    assert sealer.open(old) == PAYLOAD
    with pytest.raises(SpoolKeyError, match="another DIDEHBAN_SPOOL_KEY"):
        Sealer(Fernet.generate_key().decode()).open(token)


def test_a_spool_written_by_a_call_is_read_by_the_deliverer(tmp_path):
    writer = Spool(tmp_path, "21", KEY.decode())
    code = writer.file("seal.1", PAYLOAD)
    writer.close()
    [case] = Spool(tmp_path, "21", KEY.decode()).pending()
    assert case.tracking_code == code and case.payload == {
        **PAYLOAD,
        "tracking_code": code,
        "call_id": "seal.1",
    }


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("", "DIDEHBAN_SPOOL_KEY is not set"),
        ("not-a-key", "DIDEHBAN_SPOOL_KEY is not a Fernet key"),
        (base64.urlsafe_b64encode(b"x" * 31).decode(), "DIDEHBAN_SPOOL_KEY is not a Fernet key"),
    ],
)
def test_a_bad_spool_key_is_refused_as_before(key, message):
    with pytest.raises(SpoolKeyError, match=message):
        Sealer(key)
