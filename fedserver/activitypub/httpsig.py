"""HTTP Signatures on the wire: draft-cavage-12 signing and verification, and the
common inbound entry point that also dispatches RFC 9421 requests (rfc9421.py).

Verification is split in two so the caller can fetch the key in between:
`extract_signature` parses and pre-checks everything that needs no key (format,
digest, coverage, time window) and returns a `PendingSignature`; the caller
resolves `key_id` to a public key and calls `PendingSignature.verify`.
Rules follow Mastodon's SignatureVerification/SignedRequest (federation.md 3.2).
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import hashlib
import hmac
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from fedserver.activitypub.keys import PrivateKey, PublicKey, load_private_key, load_public_key

__all__ = [
    "PendingSignature", "SignatureError", "UnsignedRequest", "body_digest_header", "extract_signature",
    "prepare_signed_request", "sign_request"
]

# Mastodon: created may be up to 1 h in the future; default validity 5 min plus 1 h of
# clock-skew grace after expiry [M-sig]. So a Date ~65 min old is the last accepted.
DEFAULT_MAX_SKEW = 3600 + 300
_DEFAULT_VALIDITY = 300

# Algorithms each key type may be used with; None = no algorithm named (RFC 9421 `alg`
# absent), hs2019 = "derive it from the key" (SWICG report; GoToSocial emits it).
_RSA_ALGORITHMS = {None, "hs2019", "rsa-sha256", "rsa-v1_5-sha256"}
_ED25519_ALGORITHMS = {None, "hs2019", "ed25519"}


class SignatureError(Exception):
    """Raised for any unverifiable signature.

    str(e) is a short human reason for the log/401 body.
    """


@dataclass(frozen=True)
class PendingSignature:
    """A parsed, pre-checked signature waiting for its key.

    `signing_strings` holds one or more candidate messages (cavage: with and without the
    query in (request-target)); the signature is valid if any of them verifies.
    """

    key_id: str
    scheme: str  # "cavage" or "rfc9421"
    algorithm: str | None
    created: float
    covered: tuple[str, ...] = ()
    signature: bytes = field(default=b"", repr=False)
    signing_strings: tuple[bytes, ...] = field(default=(), repr=False)

    def verify(self, public_key: PublicKey | str) -> None:
        """Check the signature with a key object or PEM string; raise SignatureError if invalid."""
        key = load_public_key(public_key) if isinstance(public_key, str) else public_key
        if isinstance(key, rsa.RSAPublicKey):
            allowed, kind = _RSA_ALGORITHMS, "RSA"
        elif isinstance(key, ed25519.Ed25519PublicKey):
            allowed, kind = _ED25519_ALGORITHMS, "Ed25519"
        else:
            raise SignatureError(f"unsupported key type {type(key).__name__}")
        if self.algorithm not in allowed:
            raise SignatureError(f"algorithm {self.algorithm} cannot be used with an {kind} key")
        for message in self.signing_strings:
            if verify_message(key, message, self.signature):
                return
        raise SignatureError("signature mismatch")


def sha256(data: bytes) -> bytes:
    """SHA-256 of `data` (hashlib: the same OpenSSL digest as cryptography's, without building a
    Hash object per call, which is half the cost for an inbox-sized body)."""
    return hashlib.sha256(data).digest()


def body_digest_header(body: bytes) -> str:
    """The draft-cavage `Digest` header value for `body`: `SHA-256=<base64>`."""
    return "SHA-256=" + base64.b64encode(sha256(body)).decode("ascii")


def sign_message(key: PrivateKey, message: bytes) -> bytes:
    """Sign with RSASSA-PKCS1-v1_5/SHA-256 (RSA) or pure Ed25519."""
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    return key.sign(message)


def verify_message(key: PublicKey, message: bytes, signature: bytes) -> bool:
    """True if `signature` over `message` verifies with `key` (RSA PKCS1v15 SHA-256 or Ed25519)."""
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        else:
            key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


def header_fields(headers: Mapping[str, str]) -> dict[str, list[str]]:
    """Lower-cased header name -> all its values in order (works for dict and CIMultiDict)."""
    fields: dict[str, list[str]] = {}
    for name, value in headers.items():
        fields.setdefault(name.lower(), []).append(value.strip())
    return fields


def request_authority(scheme: str, netloc: str) -> str:
    """host[:port] as sent in Host: lower-cased, without userinfo or the scheme's default port."""
    authority = netloc.rpartition("@")[2].lower()
    default_port = {"https": ":443", "http": ":80"}.get(scheme.lower())
    if default_port and authority.endswith(default_port):
        authority = authority[: -len(default_port)]
    return authority


def check_time_window(created: float, expires: float | None, now: float, max_skew: float) -> None:
    """Reject a signature created more than max_skew ago or ahead, or long expired."""
    if created > now + max_skew:
        raise SignatureError("signature date is too far in the future")
    if created < now - max_skew:
        raise SignatureError("signature date is too old")
    # Mastodon allows the same grace after an explicit expiry as after its default one;
    # max_skew already includes the 5-minute default validity.
    if expires is not None and now > expires + max(0.0, max_skew - _DEFAULT_VALIDITY):
        raise SignatureError("signature has expired")


def sign_request(
    method: str,
    url: str,
    *,
    body: bytes | None,
    key_id: str,
    private_key_pem: str,
    content_type: str = "application/activity+json",
    accept: str | None = None,
    now: float | None = None,
) -> dict[str, str]:
    """Return the headers to send for a draft-cavage-signed request.

    Host (netloc incl. non-default port), Date (IMF-fixdate), with a body Digest and
    Content-Type, Accept when given, and Signature. The caller must send exactly these
    values and the URL's raw path: with aiohttp pass `data=body` (not `json=`) and
    `yarl.URL(url, encoded=True)` so nothing is re-encoded after signing.
    An RSA key signs as rsa-sha256 (what Mastodon emits); an Ed25519 key as hs2019.
    """
    key = load_private_key(private_key_pem)
    unsigned = prepare_signed_request(method, url, body=body, key_id=key_id, key=key, content_type=content_type,
                                      accept=accept, now=now)
    return unsigned.with_signature(sign_message(key, unsigned.message))


@dataclass(frozen=True)
class UnsignedRequest:
    """A draft-cavage request with everything but its signature: `message` is the signing string,
    to be signed elsewhere (another process, in a batch) with the same key and then passed to
    `with_signature`. Gives the same headers as `sign_request` for the same inputs."""

    headers: dict[str, str]
    message: bytes
    key_id: str
    algorithm: str
    signed_names: str

    def with_signature(self, signature: bytes) -> dict[str, str]:
        """The headers to send, Signature included (`signature` over `message`)."""
        return {**self.headers, "Signature": (
            f'keyId="{_quote(self.key_id)}",algorithm="{self.algorithm}",headers="{self.signed_names}",'
            f'signature="{base64.b64encode(signature).decode("ascii")}"')}


def prepare_signed_request(
    method: str,
    url: str,
    *,
    body: bytes | None,
    key_id: str,
    key: PrivateKey,
    body_digest: str | None = None,
    content_type: str = "application/activity+json",
    accept: str | None = None,
    now: float | None = None,
) -> UnsignedRequest:
    """`sign_request` without the signing step, for senders that sign many requests in a batch
    (a fan-out's deliveries). `body_digest` is `body_digest_header(body)` when the caller already
    has it (one body sent to many inboxes); `key` only decides the algorithm name here."""
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = {
        "Host": request_authority(parts.scheme, parts.netloc),
        "Date": email.utils.formatdate(time.time() if now is None else now, usegmt=True),
    }
    if body is not None:
        headers["Digest"] = body_digest or body_digest_header(body)
        headers["Content-Type"] = content_type
    if accept is not None:
        headers["Accept"] = accept
    # Same order Mastodon uses: (request-target) host date digest content-type | accept.
    lines = [f"(request-target): {method.lower()} {target}"]
    lines += [f"{name.lower()}: {value}" for name, value in headers.items()]
    return UnsignedRequest(
        headers=headers, message="\n".join(lines).encode("utf-8"), key_id=key_id,
        algorithm="rsa-sha256" if isinstance(key, rsa.RSAPrivateKey) else "hs2019",
        signed_names=" ".join(["(request-target)", *(name.lower() for name in headers)]))


def extract_signature(
    method: str,
    raw_path: str,
    headers: Mapping[str, str],
    body: bytes | None,
    *,
    now: float | None = None,
    max_skew: float = DEFAULT_MAX_SKEW,
    require_digest: bool = True,
    scheme: str = "https",
) -> PendingSignature:
    """Parse and pre-check a request's signature without the key (see module docstring).

    `raw_path` is the undecoded path plus query as received (aiohttp `request.raw_path`);
    `body` the exact bytes received; `scheme` the server's public URL scheme (needed to
    rebuild RFC 9421 `@target-uri`). Signature-Input selects RFC 9421, else the cavage
    Signature header is used. Raises SignatureError with a precise reason.
    """
    fields = header_fields(headers)
    now = time.time() if now is None else now
    if "signature-input" in fields:
        # Imported here: rfc9421 imports SignatureError/PendingSignature from this module.
        from fedserver.activitypub import rfc9421

        return rfc9421.parse_and_check(
            method, raw_path, fields, body,
            scheme=scheme, now=now, max_skew=max_skew, require_digest=require_digest,
        )
    return _extract_cavage(method, raw_path, fields, body, now, max_skew, require_digest)


def _extract_cavage(
    method: str,
    raw_path: str,
    fields: dict[str, list[str]],
    body: bytes | None,
    now: float,
    max_skew: float,
    require_digest: bool,
) -> PendingSignature:
    values = fields.get("signature")
    if not values:
        raise SignatureError("missing Signature header")
    if len(values) > 1:
        raise SignatureError("more than one Signature header")
    params = _parse_signature_params(values[0])
    key_id = params.get("keyid")
    if not key_id:
        raise SignatureError("Signature header has no keyId")
    if not params.get("signature"):
        raise SignatureError("Signature header has no signature")
    signature = _b64decode(params["signature"], "signature")
    algorithm = params.get("algorithm", "hs2019").lower()
    if algorithm not in ("rsa-sha256", "hs2019"):
        raise SignatureError(f"unsupported signature algorithm {algorithm!r}")
    # Defaults per draft-cavage-12 2.1.3 as Mastodon applies them.
    default_signed = "(created)" if algorithm == "hs2019" else "date"
    signed = params.get("headers", default_signed).lower().split()
    if not signed:
        raise SignatureError("Signature header has an empty headers list")
    created_param = _number_param(params, "created")
    expires_param = _number_param(params, "expires")
    _check_cavage_strength(method, signed, algorithm, fields, require_digest)

    if "digest" in signed:
        _check_digest(fields, body)
    if "(created)" in signed:
        if created_param is None:
            raise SignatureError("(created) is signed but the created parameter is missing")
        created = created_param
    else:
        created = _parse_date(fields)
    if "(expires)" in signed and expires_param is None:
        raise SignatureError("(expires) is signed but the expires parameter is missing")
    check_time_window(created, expires_param if "(expires)" in signed else None, now, max_skew)

    # Mastodon (>= 4.2.4) signs the query too; older senders did not: try both [M-sigreq].
    targets = [raw_path]
    if "?" in raw_path and "(request-target)" in signed:
        targets.append(raw_path.partition("?")[0])
    strings = tuple(_cavage_signing_string(method, t, signed, fields, params) for t in targets)
    return PendingSignature(
        key_id=key_id,
        scheme="cavage",
        algorithm=algorithm,
        created=created,
        covered=tuple(signed),
        signature=signature,
        signing_strings=strings,
    )


def _check_cavage_strength(
    method: str,
    signed: list[str],
    algorithm: str,
    fields: dict[str, list[str]],
    require_digest: bool,
) -> None:
    """Mastodon's verify_signature_strength! plus its pseudo-header rule [M-sig]."""
    if ("(created)" in signed or "(expires)" in signed) and algorithm != "hs2019":
        raise SignatureError(f"(created)/(expires) may only be signed with hs2019, not {algorithm}")
    if "date" not in signed and "(created)" not in signed:
        raise SignatureError("neither date nor (created) is signed")
    if "(request-target)" not in signed and "digest" not in signed:
        raise SignatureError("neither (request-target) nor digest is signed")
    if method.upper() in ("GET", "HEAD") and "host" not in signed:
        raise SignatureError("host is not signed (required for GET)")
    if method.upper() == "POST" and require_digest and "digest" not in signed:
        if "digest" not in fields:
            raise SignatureError("Digest header missing (required for POST)")
        raise SignatureError("digest is not signed (required for POST)")


def _cavage_signing_string(
    method: str,
    target: str,
    signed: list[str],
    fields: dict[str, list[str]],
    params: dict[str, str],
) -> bytes:
    lines = []
    for name in signed:
        if name == "(request-target)":
            value = f"{method.lower()} {target}"
        elif name in ("(created)", "(expires)"):
            value = params[name[1:-1]]
        elif name.startswith("("):
            raise SignatureError(f"unknown pseudo-header {name}")
        elif name in fields:
            value = ", ".join(fields[name])
        else:
            raise SignatureError(f"signed header {name} is missing from the request")
        lines.append(f"{name}: {value}")
    # surrogateescape restores the exact bytes aiohttp decoded header values from.
    return "\n".join(lines).encode("utf-8", "surrogateescape")


def _check_digest(fields: dict[str, list[str]], body: bytes | None) -> None:
    """Verify `Digest` like Mastodon: comma-separated, algorithm case-insensitive (bovine
    writes `sha-256=`), only SHA-256 is checked."""
    if "digest" not in fields:
        raise SignatureError("digest is signed but the Digest header is missing")
    offered: dict[str, str] = {}
    for part in ", ".join(fields["digest"]).split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            raise SignatureError("malformed Digest header")
        offered.setdefault(name.strip().lower(), value.strip())
    if "sha-256" not in offered:
        raise SignatureError(f"only SHA-256 Digest is supported, got: {', '.join(offered)}")
    expected = _b64decode(offered["sha-256"], "Digest")
    if len(expected) != 32:
        raise SignatureError("Digest value is not a SHA-256 hash (not 32 bytes)")
    if not hmac.compare_digest(expected, sha256(body or b"")):
        raise SignatureError("Digest does not match the request body")


# Date header text -> seconds. Requests signed within the same second carry the same text, so a
# busy inbox parses each second's Date once. A cache that may be lost; bounded by clearing.
_parsed_dates: dict[str, float] = {}


def _parse_date(fields: dict[str, list[str]]) -> float:
    if "date" not in fields:
        raise SignatureError("date is signed but the Date header is missing")
    text = ", ".join(fields["date"])
    seconds = _parsed_dates.get(text)
    if seconds is not None:
        return seconds
    parsed = email.utils.parsedate_tz(text)
    if parsed is None:
        raise SignatureError("malformed Date header")
    seconds = float(email.utils.mktime_tz(parsed))
    if len(_parsed_dates) >= 256:
        _parsed_dates.clear()
    _parsed_dates[text] = seconds
    return seconds


# name=value pairs; value a quoted-string (with \-escapes) or a bare token/number.
# The quoted-string is matched as runs of plain characters between escapes ("unrolled"): the
# alternation per character it replaces cost ~15 us on a 344-character signature, per request.
_PARAM = re.compile(
    r'\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"([^"\\]*(?:\\.[^"\\]*)*)"|([^",\s]+))\s*(?:,|$)'
)
_UNESCAPE = re.compile(r"\\(.)")


def _parse_signature_params(value: str) -> dict[str, str]:
    """Parse `keyId="...",algorithm="...",headers="...",signature="..."`; names lower-cased."""
    value = value.strip()
    if value[:10].lower() == "signature ":  # legacy prefix Mastodon tolerates
        value = value[10:].lstrip()
    params: dict[str, str] = {}
    pos = 0
    while pos < len(value):
        match = _PARAM.match(value, pos)
        if match is None or match.end() == pos:
            raise SignatureError("malformed Signature header")
        name = match.group(1).lower()
        if name in params:
            raise SignatureError(f"malformed Signature header: duplicate {name}")
        quoted, bare = match.group(2), match.group(3)
        if quoted is not None:
            params[name] = _UNESCAPE.sub(r"\1", quoted) if "\\" in quoted else quoted
        else:
            params[name] = bare
        pos = match.end()
    if not params:
        raise SignatureError("malformed Signature header")
    return params


def _number_param(params: dict[str, str], name: str) -> float | None:
    if name not in params:
        return None
    try:
        number = float(params[name])
    except ValueError:
        raise SignatureError(f"malformed Signature header: {name} is not a number") from None
    if not math.isfinite(number):
        raise SignatureError(f"malformed Signature header: {name} is not a number")
    return number


def _b64decode(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError(f"{what} is not valid base64") from None


def _quote(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"')
