"""CryptoJS.AES.encrypt(text, passphrase), written apart from the code under test.

The format: base64("Salted__" + salt + AES-256-CBC(PKCS#7(text))), key and IV from OpenSSL's
EVP_BytesToKey with MD5 over passphrase + salt. test_crypto.py checks this against bytes made by
`openssl enc -aes-256-cbc -md md5`, so the tests do not merely agree with themselves.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from typing import Any

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


def _key_iv(passphrase: bytes, salt: bytes) -> tuple[bytes, bytes]:
    d1 = hashlib.md5(passphrase + salt).digest()
    d2 = hashlib.md5(d1 + passphrase + salt).digest()
    d3 = hashlib.md5(d2 + passphrase + salt).digest()
    return d1 + d2, d3


def encrypt(text: str, passphrase: str, salt: bytes | None = None) -> str:
    return encrypt_bytes(text.encode(), passphrase, salt)


def encrypt_bytes(data: bytes, passphrase: str, salt: bytes | None = None) -> str:
    salt = os.urandom(8) if salt is None else salt
    key, iv = _key_iv(passphrase.encode(), salt)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(data) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    return base64.b64encode(b"Salted__" + salt + ciphertext).decode()


def encrypt_json(data: Any, passphrase: str, salt: bytes | None = None) -> str:
    return encrypt(json.dumps(data), passphrase, salt)
