"""Key material helpers: generate actor keys and load PEM keys with a cache.

PEM parsing (ASN.1 + key validation) costs far more than an RSA verify, and an
inbox sees the same few thousand remote keys over and over, so loads are
memoised by the PEM text.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Union

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

PrivateKey = Union[rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey]
PublicKey = Union[rsa.RSAPublicKey, ed25519.Ed25519PublicKey]

# Enough for every remote actor a busy single-user/small instance talks to.
_CACHE_SIZE = 10_000


def generate_rsa_private_key_pem() -> str:
    """Return a new 2048-bit RSA private key as PKCS#8 PEM (what Mastodon and peers expect)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    ).decode("ascii")


def public_pem_from_private(pem: str) -> str:
    """Return the SubjectPublicKeyInfo PEM (`-----BEGIN PUBLIC KEY-----`) for a private key PEM."""
    return (
        load_private_key(pem)
        .public_key()
        .public_bytes(
            encoding=serialization.Encoding.PEM,
            format=serialization.PublicFormat.SubjectPublicKeyInfo,
        )
        .decode("ascii")
    )


@lru_cache(maxsize=_CACHE_SIZE)
def load_private_key(pem: str) -> PrivateKey:
    """Parse an unencrypted PKCS#8 or PKCS#1 PEM private key (RSA or Ed25519).

    Raises ValueError for malformed PEM or an unsupported key type.
    """
    # Private keys are only ever our own, made by generate_rsa_private_key_pem and stored by us, so
    # cryptography's RSA consistency check (70 ms per 2048-bit key, versus 0.014 ms without) would
    # only re-prove what key generation guarantees, while stalling the event loop on each local
    # account's first signature and every signing CLI command. The option exists since
    # cryptography 39 (we require >= 42). Remote *public* keys are still fully checked below.
    key = serialization.load_pem_private_key(pem.strip().encode("ascii"), password=None,
                                             unsafe_skip_rsa_key_validation=True)
    if not isinstance(key, (rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey)):
        raise ValueError(f"unsupported private key type {type(key).__name__}")
    return key


@lru_cache(maxsize=_CACHE_SIZE)
def load_public_key(pem: str) -> PublicKey:
    """Parse a PEM public key (SPKI, or PKCS#1 `RSA PUBLIC KEY` as some old peers publish).

    Supports RSA and Ed25519. Raises ValueError for malformed PEM or other key types.
    """
    # A non-ASCII PEM raises UnicodeEncodeError, itself a ValueError.
    key = serialization.load_pem_public_key(pem.strip().encode("ascii"))
    if not isinstance(key, (rsa.RSAPublicKey, ed25519.Ed25519PublicKey)):
        raise ValueError(f"unsupported public key type {type(key).__name__}")
    return key
