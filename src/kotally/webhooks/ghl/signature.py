"""GHL webhook signatures over the raw body: Ed25519 (`X-GHL-Signature`, preferred) or the
legacy RSA PKCS#1 v1.5 SHA-256 (`X-WH-Signature`), with GHL's public keys (integrations.md)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

ED25519_HEADER = "x-ghl-signature"
RSA_HEADER = "x-wh-signature"
UNSIGNED = "N/A"  # what GHL sends in a signature header it did not sign


class SignatureError(Exception):
    """Missing, malformed or wrong: answered 401 SIGNATURE_INVALID, nothing stored."""


@dataclass(frozen=True)
class GhlKeys:
    ed25519: Ed25519PublicKey | None
    rsa: RSAPublicKey | None


def load_public_key(text: str) -> object:
    """An SPKI public key given as PEM text or as the base64 of its DER."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        return serialization.load_pem_public_key(text.encode())
    try:
        der = base64.b64decode("".join(text.split()), validate=True)
    except binascii.Error as exc:
        raise ValueError("the key is neither PEM text nor base64 DER") from exc
    return serialization.load_der_public_key(der)


@lru_cache(maxsize=8)
def keys(ed25519_text: str | None, rsa_text: str | None) -> GhlKeys:
    """The configured keys; a key of the wrong kind is a configuration error (ValueError)."""
    ed = load_public_key(ed25519_text) if ed25519_text else None
    rsa = load_public_key(rsa_text) if rsa_text else None
    if ed is not None and not isinstance(ed, Ed25519PublicKey):
        raise ValueError("KOTALLY_GHL_WEBHOOK_ED25519_PUBLIC_KEY is not an Ed25519 public key")
    if rsa is not None and not isinstance(rsa, RSAPublicKey):
        raise ValueError("KOTALLY_GHL_WEBHOOK_RSA_PUBLIC_KEY is not an RSA public key")
    return GhlKeys(ed, rsa)


def _present(value: str | None) -> str | None:
    if value is None or not value.strip() or value.strip() == UNSIGNED:
        return None
    return value.strip()


def _decode(signature: str) -> bytes:
    try:
        return base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("the signature is not base64") from None


def verify(body: bytes, ed25519_sig: str | None, rsa_sig: str | None, keys: GhlKeys) -> str:
    """Check the body's signature; returns the scheme that verified it ("ed25519" or "rsa")."""
    ed_value, rsa_value = _present(ed25519_sig), _present(rsa_sig)
    if ed_value is not None and keys.ed25519 is not None:
        try:
            keys.ed25519.verify(_decode(ed_value), body)
        except InvalidSignature:
            raise SignatureError("the Ed25519 signature does not match the body") from None
        return "ed25519"
    if rsa_value is not None and keys.rsa is not None:
        try:
            keys.rsa.verify(_decode(rsa_value), body, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            raise SignatureError("the RSA signature does not match the body") from None
        return "rsa"
    if ed_value is None and rsa_value is None:
        raise SignatureError("the request is not signed")
    raise SignatureError("no configured key for the signature sent")
