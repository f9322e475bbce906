"""The CryptoJS passphrase format, against vectors OpenSSL made (integrations.md)."""

from __future__ import annotations

import base64

import pytest

from kotally.embed.crypto import UndecryptablePayload, decrypt_json, decrypt_text, evp_bytes_to_key
from tests.embed.cryptojs import encrypt, encrypt_bytes, encrypt_json

# `openssl enc -aes-256-cbc -md md5 -pass pass:vector-secret -S 0102030405060708 -P`
VECTOR_SECRET = "vector-secret"
VECTOR_SALT = bytes.fromhex("0102030405060708")
VECTOR_KEY = "6E6BCDDA2A5DD77BFAF82E3851AABFAA63150709D15D483FE1D310ED667A789B"
VECTOR_IV = "A2E273CE609A4B7A17B55776CC78B443"
# The same command with `-base64 -A` over the plaintext below gives the ciphertext after the
# header (OpenSSL 3 leaves out "Salted__" + salt when -S is given); CryptoJS prefixes them.
VECTOR_PLAINTEXT = '{"userId":"u_1","activeLocation":"loc_1"}'
VECTOR_CIPHERTEXT = "h31JMib3Iiuy5F2+hepbKKQ+Odc6SQ4dub4i8i6Cr5BQB7ecc8jL8vmIVUN0ETHG"
VECTOR = "U2FsdGVkX18BAgMEBQYHCId9STIm9yIrsuRdvoXqWyikPjnXOkkOHbm+IvIugq+QUAe3nHPIy/L5iFVDdBExxg=="


def test_evp_bytes_to_key_matches_openssl() -> None:
    key, iv = evp_bytes_to_key(VECTOR_SECRET.encode(), VECTOR_SALT)
    assert key.hex().upper() == VECTOR_KEY
    assert iv.hex().upper() == VECTOR_IV


def test_the_vector_is_the_openssl_ciphertext_behind_the_cryptojs_header() -> None:
    raw = base64.b64decode(VECTOR)
    assert raw[:8] == b"Salted__"
    assert raw[8:16] == VECTOR_SALT
    assert raw[16:] == base64.b64decode(VECTOR_CIPHERTEXT)


def test_decrypts_the_openssl_vector() -> None:
    assert decrypt_text(VECTOR, VECTOR_SECRET).decode() == VECTOR_PLAINTEXT
    assert decrypt_json(VECTOR, VECTOR_SECRET) == {"userId": "u_1", "activeLocation": "loc_1"}


def test_the_tests_encryption_gives_the_vector() -> None:
    assert encrypt(VECTOR_PLAINTEXT, VECTOR_SECRET, VECTOR_SALT) == VECTOR


@pytest.mark.parametrize("length", [0, 1, 15, 16, 17, 200])
def test_round_trip_across_padding_lengths(length: int) -> None:
    text = "x" * length
    assert decrypt_text(encrypt(text, "s3cret"), "s3cret").decode() == text


def test_unicode_secret_and_text() -> None:
    payload = encrypt_json({"userName": "Zoë Ünal", "activeLocation": "loc_1"}, "clé-ß")
    assert decrypt_json(payload, "clé-ß")["userName"] == "Zoë Ünal"


def _bad(payload: str, secret: str = VECTOR_SECRET) -> None:
    with pytest.raises(UndecryptablePayload):
        decrypt_json(payload, secret)


def test_wrong_secret() -> None:
    _bad(VECTOR, "another-secret")


def test_truncated() -> None:
    raw = base64.b64decode(VECTOR)
    _bad(base64.b64encode(raw[:-16]).decode())  # a whole block short: padding breaks
    _bad(base64.b64encode(raw[:-3]).decode())  # not a whole number of blocks
    _bad(base64.b64encode(raw[:16]).decode())  # header and salt only
    _bad(base64.b64encode(raw[:10]).decode())  # part of the salt
    _bad(VECTOR[:-5])  # base64 cut mid-quantum


def test_not_base64() -> None:
    _bad("this is not base64!")
    _bad("U2FsdGVkX1_-")  # URL-safe alphabet is not what CryptoJS writes
    _bad("")
    _bad("é" * 24)


def test_no_salted_header() -> None:
    raw = base64.b64decode(VECTOR)
    _bad(base64.b64encode(raw[16:]).decode())  # ciphertext alone
    _bad(base64.b64encode(b"Pepperd_" + raw[8:]).decode())


def test_altered_ciphertext() -> None:
    raw = bytearray(base64.b64decode(VECTOR))
    raw[-1] ^= 0x01  # the last byte decides the padding
    _bad(base64.b64encode(bytes(raw)).decode())


def test_plaintext_that_is_not_a_json_object() -> None:
    _bad(encrypt("not json", VECTOR_SECRET))
    _bad(encrypt("[1, 2]", VECTOR_SECRET))
    _bad(encrypt('"activeLocation"', VECTOR_SECRET))
    _bad(encrypt("[" * 100_000, VECTOR_SECRET))  # too deep for the parser


def test_plaintext_that_is_not_utf8() -> None:
    _bad(encrypt_bytes(b'{"activeLocation":"\xff"}', VECTOR_SECRET))


def test_over_the_length_limit() -> None:
    _bad(encrypt_json({"activeLocation": "loc_1", "pad": "x" * 9000}, VECTOR_SECRET))
