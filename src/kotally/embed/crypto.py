"""Decrypting GHL's user context: the CryptoJS passphrase format (integrations.md).

`CryptoJS.AES.encrypt(text, passphrase)` gives base64("Salted__" + 8-byte salt + ciphertext), with
the AES-256-CBC key and IV from OpenSSL's EVP_BytesToKey (MD5, one round) over passphrase + salt,
and PKCS#7 padding: the same bytes as `openssl enc -aes-256-cbc -md md5`.

There is no MAC: a payload that decrypts to valid PKCS#7 and JSON under the shared secret is taken
as GHL's. A wrong secret or an altered byte almost always breaks the padding or the JSON; every
failure is the same `UndecryptablePayload`, so an answer tells a caller nothing about why.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

MAGIC = b"Salted__"
SALT_BYTES = 8
KEY_BYTES = 32  # AES-256
IV_BYTES = 16
BLOCK_BYTES = 16
# GHL's user context is a few hundred bytes; the page's body limit bounds it further.
PAYLOAD_CHARS_MAX = 8192


class UndecryptablePayload(ValueError):
    """The payload is not the CryptoJS format, or does not decrypt to a JSON object."""


def evp_bytes_to_key(passphrase: bytes, salt: bytes) -> tuple[bytes, bytes]:
    """OpenSSL EVP_BytesToKey with MD5 and one round: D_i = MD5(D_{i-1} + passphrase + salt)."""
    derived, block = b"", b""
    while len(derived) < KEY_BYTES + IV_BYTES:
        block = hashlib.md5(block + passphrase + salt, usedforsecurity=False).digest()
        derived += block
    return derived[:KEY_BYTES], derived[KEY_BYTES : KEY_BYTES + IV_BYTES]


def decrypt_text(payload: str, secret: str) -> bytes:
    """The plaintext bytes of a CryptoJS passphrase-format string."""
    if not payload or len(payload) > PAYLOAD_CHARS_MAX or not payload.isascii():
        raise UndecryptablePayload
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise UndecryptablePayload from None
    header = len(MAGIC) + SALT_BYTES
    ciphertext = raw[header:]
    if not raw.startswith(MAGIC) or not ciphertext or len(ciphertext) % BLOCK_BYTES:
        raise UndecryptablePayload
    key, iv = evp_bytes_to_key(secret.encode(), raw[len(MAGIC) : header])
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(BLOCK_BYTES * 8).unpadder()
    try:
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:  # bad padding: another secret, or altered bytes
        raise UndecryptablePayload from None


def decrypt_json(payload: str, secret: str) -> dict[str, Any]:
    """The JSON object inside a payload."""
    plaintext = decrypt_text(payload, secret)
    try:
        data = json.loads(plaintext.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise UndecryptablePayload from None
    if not isinstance(data, dict):
        raise UndecryptablePayload
    return data
