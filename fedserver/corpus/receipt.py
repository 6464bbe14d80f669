"""Consent receipts: a person's current training choice and its whole history from the hash-chained
consent log, structured after ISO/IEC TS 27560:2023 (consent record information structure; field
names as in its clause 6.3, in the snake_case the DPV implementation guide uses), signed with the
instance actor's RSA key so that anyone can check it with the public key of the instance actor
document, without asking this server (docs/consent-receipts.md).

Signature: a JWS (RFC 7515) in compact serialization with a detached payload (RFC 7515 Appendix F),
algorithm RS256. The payload is the JSON Canonicalization Scheme (RFC 8785) serialization of the
`receipt` member. The file itself is the canonical rendering of {"receipt", "signature"}, and
verification insists on it, so that no byte of the file can change and still verify."""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from fedserver.activitypub.keys import load_private_key, load_public_key

SCHEMA_VERSION = "fedserver-consent-receipt/1"
CONFORMS_TO = "ISO/IEC TS 27560:2023"
ALGORITHM = "RS256"
MEDIA_TYPE = "application/json"
# Fields of a consent-log event that its chained hash covers (store/consent.py _HASHED_FIELDS).
LOG_FIELDS = ("actor_id", "actor_uri", "purpose", "choice", "license", "scope", "include_unlisted",
              "terms_version", "terms_hash", "source", "note", "created_at")


class ReceiptError(Exception):
    """A receipt cannot be made, read or checked (clear message for the person or admin)."""


@dataclass(frozen=True)
class Party:
    party_id: str
    party_name: str
    party_url: str


@dataclass(frozen=True)
class Notice:
    url: str
    version: str
    sha256: str
    text: str


@dataclass(frozen=True)
class Purpose:
    purpose_id: str
    purpose: str
    processing_method: str
    recipients: str
    retention_period: str
    withdrawal_method: str


# --- canonical bytes and base64url ------------------------------------------------------------

def canonical_json(value: Any) -> bytes:
    """RFC 8785 (JCS) for the values a receipt holds: strings, integers, booleans, null, arrays and
    objects with ASCII keys (no floats), for which sorted keys, no insignificant whitespace and
    UTF-8 without \\u escapes of non-ASCII characters is exactly JCS."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def render(document: dict[str, Any]) -> bytes:
    """The file a person downloads: sorted keys, two-space indentation, one trailing newline."""
    return (json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    """Strict: only the canonical encoding of some bytes is accepted (no padding, no stray bits)."""
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ReceiptError(f"not base64url: {exc}") from None
    if _b64url(data) != text:
        raise ReceiptError("not in canonical base64url form")
    return data


# --- building ---------------------------------------------------------------------------------

def event_entry(event: Any, prev_choice: str) -> dict[str, Any]:
    """One consent event as ISO/IEC TS 27560's event fields, with the consent-log entry it came
    from (every field its hash covers, so anyone can recompute that hash)."""
    state = {"allow": "given", "deny": "withdrawn" if prev_choice == "allow" else "refused",
             "unset": "withdrawn" if prev_choice == "allow" else "unset"}[event.choice]
    entry: dict[str, Any] = {
        "event_time": event.created_at,
        "event_type": "expressed_consent" if event.choice == "allow" else "consent_decision",
        "event_state": state,
        "entity_id": {"self": event.actor_uri, "admin": "administrator of this server",
                      "remote-signal": "the person's own server (signal in their actor document)"
                      }.get(event.source, event.source),
        "validity_duration": "until withdrawn" if event.choice == "allow" else None,
        "choice": event.choice,
        "license": event.license,
        "scope": event.scope,
        "include_unlisted": bool(event.include_unlisted),
        "notice_version": event.terms_version,
        "notice_sha256": event.terms_hash,
        "consent_log_entry": {**{k: getattr(event, k) for k in LOG_FIELDS}, "id": event.id,
                              "prev_hash": event.prev_hash, "hash": event.hash},
    }
    return entry


def build_receipt(*, receipt_id: str, issued_at: str, principal_uri: str, controller: Party, notice: Notice,
                  purpose: Purpose, current: dict[str, Any], events: list[Any], log_head: str,
                  signer_uri: str, key_id: str) -> dict[str, Any]:
    """The receipt: ISO/IEC TS 27560 header, processing (one purpose), parties and events."""
    return {
        "schema_version": SCHEMA_VERSION,
        "conforms_to": CONFORMS_TO,
        "receipt_id": receipt_id,
        "receipt_time": issued_at,
        "record_id": f"{principal_uri}#consent-{purpose.purpose_id}",
        "pii_principal_id": principal_uri,
        "language": "en",
        "privacy_notice": {"url": notice.url, "version": notice.version, "sha256": notice.sha256,
                           "text": notice.text},
        "purposes": [{
            "purpose_id": purpose.purpose_id,
            "purpose": purpose.purpose,
            "purpose_type": "AI model training (IETF aipref category train-ai)",
            "lawful_basis": "consent",
            "pii_information": [
                {"pii_type": "public posts the person wrote on this server (text, HTML, language, times, "
                             "hashtags, reply and mention structure)", "pii_optional": True},
                {"pii_type": "pseudonymous author id (keyed hash of the account URL)", "pii_optional": False}],
            "pii_controllers": [controller.party_id],
            "collection_method": "the person's explicit choice on the consent settings page (or an administrator "
                                 "acting for them, marked as such), after being shown the privacy notice",
            "processing_method": purpose.processing_method,
            "storage_locations": [controller.party_url],
            "retention_period": purpose.retention_period,
            "recipient_third_parties": purpose.recipients,
            "withdrawal_method": purpose.withdrawal_method,
            "privacy_rights": ["withdraw consent at any time", "exclude single posts", "delete posts or the account",
                               "read the consent history"],
        }],
        "parties": [{"party_id": controller.party_id, "party_name": controller.party_name,
                     "party_role": "pii_controller", "party_url": controller.party_url,
                     "party_contact": controller.party_url}],
        "consent_status": current,
        "events": [event_entry(e, prev) for e, prev in _with_previous(events)],
        "consent_log": {
            "hash": "SHA-256 over the JSON of {prev: prev_hash, ...the entry's fields} with sorted keys and "
                    "no whitespace; each entry chains to the one before it in the server's whole log",
            "head_at_issue": log_head,
        },
        "issuer": {"actor": signer_uri, "key_id": key_id},
    }


def _with_previous(events: list[Any]) -> list[tuple[Any, str]]:
    """Each event with the person's choice before it (a deny after an allow is a withdrawal)."""
    previous, out = "unset", []
    for event in events:
        out.append((event, previous))
        previous = event.choice
    return out


# --- signing and verifying ----------------------------------------------------------------------

def sign(receipt: dict[str, Any], *, private_key_pem: str, key_id: str) -> dict[str, Any]:
    """The document to download: the receipt and its detached JWS."""
    key = load_private_key(private_key_pem)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ReceiptError("the instance actor's key is not an RSA key")
    header = _b64url(canonical_json({"alg": ALGORITHM, "kid": key_id}))
    signing_input = f"{header}.{_b64url(canonical_json(receipt))}".encode("ascii")
    signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return {"receipt": receipt, "signature": {"jws": f"{header}..{_b64url(signature)}", "key_id": key_id}}


@dataclass(frozen=True)
class Verification:
    ok: bool
    problems: tuple[str, ...]
    key_id: str | None = None
    receipt: dict[str, Any] | None = None


def public_key_from(text: str) -> tuple[str, str | None]:
    """(PEM, key id) from either a PEM public key or an actor document (its publicKey)."""
    stripped = text.strip()
    if stripped.startswith("-----BEGIN"):
        return stripped, None
    try:
        document = json.loads(stripped)
        key = document["publicKey"]
        key = key[0] if isinstance(key, list) else key
        return str(key["publicKeyPem"]), str(key.get("id") or "") or None
    except (ValueError, KeyError, TypeError, IndexError):
        raise ReceiptError("the key file is neither a PEM public key nor an actor document with publicKey") from None


def verify(data: bytes, public_key_pem: str, *, expected_key_id: str | None = None) -> Verification:
    """Check a receipt file: canonical form, the JWS over the receipt with this key (and key id,
    when known), and that every consent-log entry's hash matches its fields."""
    try:
        document = json.loads(data.decode("utf-8"))
        jws = document["signature"]["jws"]
        receipt = document["receipt"]
        if not isinstance(jws, str) or not isinstance(receipt, dict):
            raise TypeError
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, RecursionError):
        return Verification(False, ("not a consent receipt (JSON with receipt and signature.jws)",))
    problems: list[str] = []
    if render(document) != data:
        problems.append("the file is not in its canonical form: it was altered after signing")
    try:
        header_b64, payload_b64, signature_b64 = jws.split(".")
        header = json.loads(_b64url_decode(header_b64))
        signature = _b64url_decode(signature_b64)
    except (ValueError, ReceiptError) as exc:
        return Verification(False, (*problems, f"the signature is malformed: {exc}"))
    if payload_b64 != "" or not isinstance(header, dict) or header.get("alg") != ALGORITHM:
        return Verification(False, (*problems, "the signature is not a detached RS256 JWS"))
    key_id = header.get("kid")
    if expected_key_id is not None and key_id != expected_key_id:
        problems.append(f"signed with key {key_id}, not with {expected_key_id}")
    if document["signature"].get("key_id") != key_id:
        problems.append("the key id beside the signature differs from the signed one")
    try:
        key = load_public_key(public_key_pem)
    except ValueError as exc:
        return Verification(False, (*problems, f"cannot load the public key: {exc}"))
    if not isinstance(key, rsa.RSAPublicKey):
        return Verification(False, (*problems, "the public key is not an RSA key"))
    try:
        signing_input = f"{header_b64}.{_b64url(canonical_json(receipt))}".encode("ascii")
        key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
    except ValueError:  # NaN or Infinity: no signed receipt holds them
        problems.append("the receipt holds numbers that JSON cannot carry")
    except InvalidSignature:
        problems.append("the signature does not verify with this public key")
    problems += _check_log_entries(receipt)
    return Verification(not problems, tuple(problems), key_id, receipt)


def log_entry_hash(entry: dict[str, Any]) -> str:
    """The consent log's hash of one entry (store/consent.py event_hash)."""
    canonical = json.dumps({"prev": entry["prev_hash"], **{k: entry[k] for k in LOG_FIELDS}},
                           sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _check_log_entries(receipt: dict[str, Any]) -> list[str]:
    problems = []
    for event in receipt.get("events") or []:
        try:
            entry = event["consent_log_entry"]
            if log_entry_hash(entry) != entry["hash"]:
                problems.append(f"consent-log entry {entry.get('id')}: its hash does not match its fields")
        except (KeyError, TypeError):
            problems.append("an event lacks its consent-log entry")
    return problems
