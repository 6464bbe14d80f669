"""Web Push on the wire, with no database: the VAPID key pair (RFC 8292), and one push message
encrypted for a subscriber with its request headers. The cryptography is the maintained
libraries' (http-ece for RFC 8188/8291 content encoding, py-vapid for the signed JWT), never our own.

Two encodings, chosen by the subscription's `standard` flag as Mastodon 4.4 does: RFC 8291
`aes128gcm` with `Authorization: vapid t=..., k=...`, and the draft `aesgcm` with `Encryption` and
`Crypto-Key` headers and `Authorization: WebPush <jwt>`, which Mastodon sent before 4.4 and which
apps (and their relays) that do not ask for `standard` still decrypt."""
from __future__ import annotations

import base64
import binascii
import os
import time
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

import http_ece
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid01, Vapid02

# RFC 8030 §5.2: how long the push service keeps an undelivered message (Mastodon: 48 h).
TTL_SECONDS = 48 * 3600
# RFC 8292 §2: the JWT's exp at most 24 h ahead; Mastodon signs for 12 h.
JWT_LIFETIME_SECONDS = 12 * 3600


class WebPushKeyError(ValueError):
    """A subscriber's key or auth secret that is not a P-256 point / 16 bytes."""


@dataclass(frozen=True)
class EncryptedPush:
    body: bytes
    headers: dict[str, str]


def new_vapid_key_pair() -> tuple[str, str]:
    """(private key PEM, public key as apps read it: base64url of the uncompressed point, padded
    as Mastodon's `vapid_key` is)."""
    vapid = Vapid02()
    vapid.generate_keys()
    private_pem = vapid.private_pem().decode("ascii")
    return private_pem, public_key_text(vapid.public_key)


def public_key_text(key: ec.EllipticCurvePublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return base64.urlsafe_b64encode(raw).decode("ascii")


def decode_key(text: str) -> bytes:
    """base64 or base64url, padded or not (Mastodon.py sends standard base64, browsers base64url)."""
    cleaned = text.strip().replace("+", "-").replace("/", "_").rstrip("=")
    try:
        return base64.urlsafe_b64decode(cleaned + "=" * (-len(cleaned) % 4))
    except (binascii.Error, ValueError):
        raise WebPushKeyError("not base64") from None


def check_subscriber_keys(p256dh: str, auth: str) -> tuple[bytes, bytes]:
    """The subscriber's public key (a P-256 point) and auth secret (16 bytes), or WebPushKeyError."""
    public, secret = decode_key(p256dh), decode_key(auth)
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public)
    except ValueError:
        raise WebPushKeyError("keys[p256dh] is not a P-256 public key") from None
    if len(secret) != 16:
        raise WebPushKeyError("keys[auth] must be 16 bytes")
    return public, secret


@lru_cache(maxsize=4)
def _signing_key(private_pem: str) -> ec.EllipticCurvePrivateKey:
    # Parsed once, not for every push (the instance has one key).
    key = serialization.load_pem_private_key(private_pem.encode("ascii"), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("the VAPID key is not an EC key")
    return key


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def audience(endpoint: str) -> str:
    """RFC 8292 §2: the JWT's aud is the push resource's origin."""
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc}"


def encrypt_push(payload: bytes, *, endpoint: str, p256dh: str, auth: str, standard: bool,
                 vapid_private_pem: str, subject: str, urgency: str = "normal",
                 now: float | None = None) -> EncryptedPush:
    """Encrypt payload for the subscriber and sign the VAPID JWT for the endpoint's origin."""
    receiver_key, auth_secret = check_subscriber_keys(p256dh, auth)
    # A fresh sender key pair per message (RFC 8291 §3.1).
    sender = ec.generate_private_key(ec.SECP256R1())
    signing_key = _signing_key(vapid_private_pem)
    claims = {"aud": audience(endpoint), "sub": subject,
              "exp": int((now if now is not None else time.time()) + JWT_LIFETIME_SECONDS)}
    # no-strict: py-vapid otherwise insists on a mailto: sub; RFC 8292 §2.1 allows an https: URI,
    # the instance's own address, which Mastodon also sends when it has no contact email.
    conf = {"no-strict": True}
    headers = {"TTL": str(TTL_SECONDS), "Urgency": urgency, "Content-Type": "application/octet-stream"}
    if standard:
        body = http_ece.encrypt(payload, private_key=sender, dh=receiver_key, auth_secret=auth_secret,
                                version="aes128gcm")
        headers.update(Vapid02(signing_key, conf=conf).sign(claims))
        headers["Content-Encoding"] = "aes128gcm"
        return EncryptedPush(body=body, headers=headers)
    salt = os.urandom(16)
    sender_public = _b64url(sender.public_key().public_bytes(serialization.Encoding.X962,
                                                             serialization.PublicFormat.UncompressedPoint))
    body = http_ece.encrypt(payload, salt=salt, private_key=sender, keyid=sender_public, dh=receiver_key,
                            auth_secret=auth_secret, version="aesgcm")
    headers.update(Vapid01(signing_key, conf=conf).sign(claims, crypto_key=f"dh={sender_public}"))
    headers["Content-Encoding"] = "aesgcm"
    headers["Encryption"] = f"salt={_b64url(salt)}"
    return EncryptedPush(body=body, headers=headers)
