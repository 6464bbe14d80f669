"""RFC 9421 HTTP Message Signatures for requests, with RFC 9530 Content-Digest.

Verification applies Mastodon's inbound rules (federation.md 3.5): exactly one
signature, `created` and `keyid` required, @method and the target covered,
Content-Digest covered on POST; algorithms rsa-v1_5-sha256 and ed25519. Signing
mirrors Fedify's default (label sig1, @method @target-uri @authority host date,
plus content-type and content-digest with a body). Structured fields are parsed
and serialised with http-sf so the signature base matches other implementations.
"""

from __future__ import annotations

import email.utils
import hmac
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import http_sf
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from http_sf.innerlist import ser_innerlist

from fedserver.activitypub.httpsig import (
    PendingSignature,
    SignatureError,
    check_time_window,
    request_authority,
    sign_message,
)
from fedserver.activitypub.keys import load_private_key

__all__ = ["content_digest_header", "parse_and_check", "sign_request_rfc9421"]

SUPPORTED_ALGORITHMS = ("rsa-v1_5-sha256", "ed25519")
# RFC 9530 algorithms we can check; sha-256 is what Mastodon and Fedify send.
_DIGESTS = {"sha-256": hashes.SHA256, "sha-512": hashes.SHA512}


@dataclass(frozen=True)
class _Target:
    """The request parts derived components (RFC 9421 2.2) are computed from."""

    method: str
    scheme: str
    authority: str  # normalised: lower-case, no default port (RFC 9421 2.2.3)
    path: str
    query: str | None  # None when the request had no "?"

    def request_target(self) -> str:
        return self.path + ("" if self.query is None else "?" + self.query)

    def uri(self) -> str:
        return f"{self.scheme}://{self.authority}{self.request_target()}"


def content_digest_header(body: bytes) -> str:
    """`Content-Digest` value for `body`: `sha-256=:<base64>:` (RFC 9530)."""
    return http_sf.ser_dictionary({"sha-256": (_hash("sha-256", body), {})})


def sign_request_rfc9421(
    method: str,
    url: str,
    *,
    body: bytes | None,
    key_id: str,
    private_key_pem: str,
    now: float | None = None,
    content_type: str = "application/activity+json",
    accept: str | None = None,
) -> dict[str, str]:
    """Return the headers (Host, Date, [Content-Type, Content-Digest], [Accept],
    Signature-Input, Signature) for an RFC 9421-signed request to `url`.

    RSA keys sign as rsa-v1_5-sha256, Ed25519 keys as ed25519. As with cavage signing, send
    exactly these header values and the URL's path/query unchanged.
    """
    now = time.time() if now is None else now
    parts = urlsplit(url)
    target = _Target(
        method=method.upper(),
        scheme=parts.scheme.lower(),
        authority=request_authority(parts.scheme, parts.netloc),
        path=parts.path or "/",
        query=parts.query or None,
    )
    headers = {"Host": target.authority, "Date": email.utils.formatdate(now, usegmt=True)}
    if body is not None:
        headers["Content-Type"] = content_type
        headers["Content-Digest"] = content_digest_header(body)
    if accept is not None:
        headers["Accept"] = accept
    key = load_private_key(private_key_pem)
    alg = "rsa-v1_5-sha256" if isinstance(key, rsa.RSAPrivateKey) else "ed25519"
    components = ["@method", "@target-uri", "@authority", *(name.lower() for name in headers)]
    params = {"created": int(now), "keyid": key_id, "alg": alg}
    member = ([(name, {}) for name in components], params)
    fields = {name.lower(): [value] for name, value in headers.items()}
    base = _signature_base(member, target, fields)
    signature = sign_message(key, base)
    headers["Signature-Input"] = http_sf.ser_dictionary({"sig1": member})
    headers["Signature"] = http_sf.ser_dictionary({"sig1": (signature, {})})
    return headers


def parse_and_check(
    method: str,
    raw_path: str,
    fields: Mapping[str, list[str]],
    body: bytes | None,
    *,
    scheme: str,
    now: float,
    max_skew: float,
    require_digest: bool,
) -> PendingSignature:
    """Pre-check an RFC 9421 signed request (called by httpsig.extract_signature).

    `fields` maps lower-cased header names to their values (httpsig.header_fields).
    The request URI is rebuilt as `scheme://<Host header><raw_path>`.
    """
    inputs = _parse_dictionary(fields, "signature-input")
    signatures = _parse_dictionary(fields, "signature")
    if len(inputs) != 1 or len(signatures) != 1:
        # Mastodon accepts exactly one; choosing among several needs a policy we lack.
        count = max(len(inputs), len(signatures))
        raise SignatureError(f"expected exactly one signature, got {count}")
    ((label, member),) = inputs.items()
    if label not in signatures:
        raise SignatureError("Signature and Signature-Input labels differ")
    signature, _ = signatures[label]
    if not isinstance(signature, bytes):
        raise SignatureError("Signature member is not a byte sequence")
    components, params = _check_member(member)

    key_id = params.get("keyid")
    if not isinstance(key_id, str) or not key_id:
        raise SignatureError("Signature-Input has no keyid parameter")
    alg = params.get("alg")
    if alg is not None and alg not in SUPPORTED_ALGORITHMS:
        raise SignatureError(f"unsupported signature algorithm {alg!r}")
    created = params.get("created")
    if created is None:
        raise SignatureError("Signature-Input has no created parameter")
    expires = params.get("expires")
    if not _is_int(created) or (expires is not None and not _is_int(expires)):
        raise SignatureError("created/expires parameters must be integers")
    _check_coverage(method, components, fields, require_digest)
    if "content-digest" in components:
        _check_content_digest(fields, body)
    check_time_window(float(created), None if expires is None else float(expires), now, max_skew)

    if "host" not in fields:
        raise SignatureError("Host header missing")
    path, sep, query = raw_path.partition("?")
    target = _Target(
        method=method.upper(),
        scheme=scheme.lower(),
        authority=request_authority(scheme, fields["host"][0]),
        path=path or "/",
        query=query if sep else None,
    )
    return PendingSignature(
        key_id=key_id,
        scheme="rfc9421",
        algorithm=alg,
        created=float(created),
        covered=tuple(components),
        signature=signature,
        signing_strings=(_signature_base(member, target, fields),),
    )


def _parse_dictionary(fields: Mapping[str, list[str]], name: str) -> dict[str, Any]:
    if name not in fields:
        raise SignatureError(f"{name.title()} header missing")

    def duplicate(key: str, context: str) -> None:
        if context == "dictionary":
            raise SignatureError(f"duplicate label {key!r} in {name.title()}")

    try:
        # Several field lines of a Dictionary combine with ", " (RFC 8941 3.2).
        raw = ", ".join(fields[name]).encode("ascii")
        parsed = http_sf.parse(raw, tltype="dictionary", on_duplicate_key=duplicate)
    except (http_sf.StructuredFieldError, ValueError):
        raise SignatureError(f"malformed {name.title()} header") from None
    assert isinstance(parsed, dict)
    return parsed


def _check_member(member: Any) -> tuple[list[str], dict[str, Any]]:
    """Validate a Signature-Input member; return its component names and parameters."""
    value, params = member
    if not isinstance(value, list):
        raise SignatureError("Signature-Input member is not an inner list")
    names: list[str] = []
    for name, component_params in value:
        if not isinstance(name, str) or name != name.lower():
            raise SignatureError("component identifiers must be lower-case strings")
        if component_params:
            # ;sf ;key ;bs ;req are valid RFC 9421 but no fediverse sender uses them.
            raise SignatureError(f"unsupported parameters on component {name}")
        if name in names:
            raise SignatureError(f"component {name} covered twice")
        names.append(name)
    return names, params


def _check_coverage(
    method: str, components: list[str], fields: Mapping[str, list[str]], require_digest: bool
) -> None:
    if "@method" not in components:
        raise SignatureError("@method is not covered")
    path_covered = "@path" in components or "@request-target" in components
    if "@target-uri" not in components and not ("@authority" in components and path_covered):
        raise SignatureError("@target-uri (or @authority with @path) is not covered")
    if method.upper() == "POST" and require_digest and "content-digest" not in components:
        if "content-digest" not in fields:
            raise SignatureError("Content-Digest header missing (required for POST)")
        raise SignatureError("content-digest is not covered (required for POST)")


def _check_content_digest(fields: Mapping[str, list[str]], body: bytes | None) -> None:
    digests = _parse_dictionary(fields, "content-digest")
    known = {name: value for name, (value, _) in digests.items() if name in _DIGESTS}
    if not known:
        raise SignatureError(f"unsupported Content-Digest algorithm(s): {', '.join(digests)}")
    for name, expected in known.items():
        if not isinstance(expected, bytes):
            raise SignatureError("malformed Content-Digest header")
        if not hmac.compare_digest(expected, _hash(name, body or b"")):
            raise SignatureError("Content-Digest does not match the request body")


def _signature_base(member: Any, target: _Target, fields: Mapping[str, list[str]]) -> bytes:
    """Build the signature base (RFC 9421 2.5) for a Signature-Input member."""
    lines = []
    for name, _ in member[0]:
        lines.append(f"{http_sf.ser_item((name, {}))}: {_component_value(name, target, fields)}")
    # The params line is the member re-serialised canonically, as 2.3 prescribes.
    lines.append(f'"@signature-params": {ser_innerlist(member)}')
    return "\n".join(lines).encode("utf-8", "surrogateescape")


def _component_value(name: str, target: _Target, fields: Mapping[str, list[str]]) -> str:
    if name == "@method":
        return target.method
    if name == "@target-uri":
        return target.uri()
    if name == "@authority":
        return target.authority
    if name == "@scheme":
        return target.scheme
    if name == "@request-target":
        return target.request_target()
    if name == "@path":
        return target.path
    if name == "@query":
        return "?" + (target.query or "")
    if name.startswith("@"):
        raise SignatureError(f"unsupported derived component {name}")
    if name not in fields:
        raise SignatureError(f"covered header {name} is missing from the request")
    return ", ".join(fields[name])


def _hash(name: str, data: bytes) -> bytes:
    digest = hashes.Hash(_DIGESTS[name]())
    digest.update(data)
    return digest.finalize()


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)

