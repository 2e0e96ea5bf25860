"""Fernet tokens written without importing `cryptography`: what the process-per-call AGI script
seals a case with (issue 13: importing cryptography's Fernet was a quarter of the script's budget
of CPU per call, most of it loading cryptography's own copy of OpenSSL).

The token is Fernet's, byte for byte in layout (spec: github.com/fernet/spec): version 0x80, a
64-bit timestamp, a random 128-bit IV, AES-128-CBC with PKCS#7 padding under the key's second
half, and HMAC-SHA256 under its first half, in url-safe base64. So cryptography's Fernet opens it
(the deliverer and `didehban spool` read with Fernet). AES comes from the OpenSSL libcrypto already
loaded in this process by hashlib's OpenSSL backend (the HMAC below), through ctypes; where that
library cannot be found the token is made by cryptography's Fernet instead.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import struct
import time
from functools import lru_cache
from typing import Any

VERSION = b"\x80"


@lru_cache(maxsize=1)
def _libcrypto() -> Any | None:
    """OpenSSL's libcrypto with the EVP cipher calls declared, or None."""
    import contextlib
    import ctypes

    # Maps the libcrypto Python itself links (hashlib's, as its ssl module's), found below by its
    # name. Not `_ssl`: the per-call script imports neither ssl nor asyncio (issue 13).
    with contextlib.suppress(ImportError):
        import _hashlib  # noqa: F401

    for name in ("libcrypto.so.3", "libcrypto.so.1.1", "libcrypto.dylib"):
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        try:
            ptr, buf, int_p = ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int)
            lib.EVP_CIPHER_CTX_new.restype = ptr
            lib.EVP_CIPHER_CTX_new.argtypes = []
            lib.EVP_CIPHER_CTX_free.restype = None
            lib.EVP_CIPHER_CTX_free.argtypes = [ptr]
            lib.EVP_aes_128_cbc.restype = ptr
            lib.EVP_aes_128_cbc.argtypes = []
            lib.EVP_EncryptInit_ex.restype = ctypes.c_int
            lib.EVP_EncryptInit_ex.argtypes = [ptr, ptr, ptr, buf, buf]
            lib.EVP_EncryptUpdate.restype = ctypes.c_int
            lib.EVP_EncryptUpdate.argtypes = [ptr, ctypes.c_void_p, int_p, buf, ctypes.c_int]
            lib.EVP_EncryptFinal_ex.restype = ctypes.c_int
            lib.EVP_EncryptFinal_ex.argtypes = [ptr, ctypes.c_void_p, int_p]
        except AttributeError:  # not OpenSSL's libcrypto after all
            continue
        return lib
    return None


def _aes_128_cbc(lib: Any, key: bytes, iv: bytes, data: bytes) -> bytes:
    """AES-128-CBC with PKCS#7 padding (OpenSSL's default for CBC)."""
    import ctypes

    out = ctypes.create_string_buffer(len(data) + 16)
    written, final = ctypes.c_int(0), ctypes.c_int(0)
    ctx = lib.EVP_CIPHER_CTX_new()
    if not ctx:
        raise MemoryError("EVP_CIPHER_CTX_new failed")
    try:
        if not (
            lib.EVP_EncryptInit_ex(ctx, lib.EVP_aes_128_cbc(), None, key, iv)
            and lib.EVP_EncryptUpdate(ctx, out, ctypes.byref(written), data, len(data))
            and lib.EVP_EncryptFinal_ex(ctx, ctypes.addressof(out) + written.value, ctypes.byref(final))
        ):
            raise RuntimeError("OpenSSL could not encrypt")
    finally:
        lib.EVP_CIPHER_CTX_free(ctx)
    return out.raw[: written.value + final.value]


def fernet_encrypt(key: bytes, data: bytes, *, now: int | None = None, iv: bytes | None = None) -> str:
    """`Fernet(urlsafe_b64encode(key)).encrypt(data)`, as text. `key` is the raw 32 bytes; `now`
    and `iv` are for tests (a token is reproducible only with both given)."""
    if len(key) != 32:
        raise ValueError("a Fernet key is 32 bytes")
    iv = os.urandom(16) if iv is None else iv
    stamp = int(time.time()) if now is None else now
    lib = _libcrypto()
    if lib is None:
        return _fernet_encrypt_with_cryptography(key, data, stamp)  # its own random IV
    signed = VERSION + struct.pack(">Q", stamp) + iv + _aes_128_cbc(lib, key[16:], iv, data)
    tag = hmac.new(key[:16], signed, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(signed + tag).decode("ascii")


def _fernet_encrypt_with_cryptography(key: bytes, data: bytes, stamp: int) -> str:
    from cryptography.fernet import Fernet

    return Fernet(base64.urlsafe_b64encode(key)).encrypt_at_time(data, stamp).decode("ascii")
