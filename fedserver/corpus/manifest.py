"""What identifies a corpus release: its semantic version (decided from the corpus cursor and the
removals since the previous release), the manifest of its files, the manifest's signature with the
instance actor's key, and verification of all of that."""
from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import aiosqlite
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from fedserver.activitypub.keys import load_private_key, load_public_key
from fedserver.store import corpus as corpus_store
from fedserver.store import locks

MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.sig"
SIGNATURE_INFO = "manifest.sig.json"
SIGNATURE_ALGORITHM = "rsa-pkcs1v15-sha256"
FIRST_VERSION = "1.0.0"
# A corpus without any change yet still needs a deterministic date.
EPOCH = "1970-01-01T00:00:00.000000Z"


class ReleaseError(Exception):
    """The release cannot be made or does not verify (clear message for the admin)."""


@dataclass(frozen=True)
class ReleasePlan:
    """The version a corpus state gets. A state already released keeps its version (is_new False)."""
    version: str
    seq: int
    created_at: str
    previous_version: str | None
    previous_seq: int
    is_new: bool
    removes_records: bool


def bump(version: str, *, major: bool) -> str:
    parts = [int(p) for p in version.split(".")]
    if len(parts) != 3:
        raise ReleaseError(f"release version {version!r} is not MAJOR.MINOR.PATCH")
    return f"{parts[0] + 1}.0.0" if major else f"{parts[0]}.{parts[1] + 1}.0"


async def plan_release(conn: aiosqlite.Connection) -> ReleasePlan:
    """Version rules (Croissant's semantic versioning applied to consent): the first release is 1.0.0;
    one that removes records of the previous release is a new MAJOR; one that only adds or updates
    records a new MINOR; an unchanged corpus keeps its version (and gives the same records: the version
    follows the corpus cursor, never the files, whose bytes change with the compression level)."""
    seq = await corpus_store.next_seq(conn)
    changes = await corpus_store.changes_after(conn, seq - 1, 1) if seq else []
    created_at = changes[0]["created_at"] if changes else EPOCH
    last = await corpus_store.last_release(conn)
    if last is not None and last["seq"] > seq:
        raise ReleaseError(f"release {last['version']} was made at corpus cursor {last['seq']}, beyond this"
                           f" database's cursor {seq}: was the database restored from an older backup?")
    if last is not None and last["seq"] == seq:
        previous = await corpus_store.release_before(conn, seq)
        version, is_new = last["version"], False
    else:
        previous, version, is_new = last, FIRST_VERSION, True
    previous_seq = previous["seq"] if previous else 0
    removes = previous is not None and await _any_removal(conn, previous_seq, seq)
    if is_new and previous is not None:
        version = bump(previous["version"], major=removes)
    return ReleasePlan(version=version, seq=seq, created_at=created_at,
                       previous_version=previous["version"] if previous else None, previous_seq=previous_seq,
                       is_new=is_new, removes_records=removes)


async def _any_removal(conn: aiosqlite.Connection, after_seq: int, up_to_seq: int) -> bool:
    async for _ in corpus_store.iter_removals_between(conn, after_seq, up_to_seq, batch=1):
        return True
    return False


async def record_release(tx: aiosqlite.Connection, plan: ReleasePlan, records: int, now: str) -> None:
    """Add the release row (inside the caller's write transaction), unless this state was released."""
    if not plan.is_new:
        return
    # Two exports of one state in two processes at once (researchers pulling through two web
    # processes): the second must see the first's row, not fail on its version.
    await locks.lock_name(tx, "corpus-release")
    last = await corpus_store.last_release(tx)
    if last is not None and last["seq"] == plan.seq and last["version"] == plan.version:
        return  # another export of the same state got there first
    if last is not None and last["seq"] >= plan.seq:
        raise ReleaseError(f"release {last['version']} was made meanwhile; export again")
    await corpus_store.add_release(tx, version=plan.version, seq=plan.seq, records=records, now=now)


# --- Files and the manifest ---------------------------------------------------------------------

def file_digest(path: Path) -> tuple[str, int]:
    """SHA-256 and size, read in chunks (shards can be large)."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def describe_file(root: Path, relative: str, **extra: Any) -> dict[str, Any]:
    sha256, size = file_digest(root / relative)
    return {"path": relative, "sha256": sha256, "bytes": size, **extra}


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    """Canonical form: sorted keys, fixed indentation, one trailing newline (same input, same bytes)."""
    return (json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def sign_manifest(root: Path, data: bytes, *, private_key_pem: str, key_id: str, public_key_pem: str,
                  signer: str) -> None:
    """Write manifest.json, its detached signature and the signature's description. RSA PKCS#1 v1.5
    signatures are deterministic, so the same manifest gives the same signature."""
    key = load_private_key(private_key_pem)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ReleaseError("the instance actor's key is not an RSA key")
    signature = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    (root / MANIFEST).write_bytes(data)
    (root / SIGNATURE).write_bytes(base64.b64encode(signature) + b"\n")
    info = {"algorithm": SIGNATURE_ALGORITHM, "key_id": key_id, "signer": signer, "signed_file": MANIFEST,
            "signature_file": SIGNATURE, "public_key_pem": public_key_pem}
    (root / SIGNATURE_INFO).write_bytes(manifest_bytes(info))


def check_release(root: Path, public_key_pem: str) -> list[str]:
    """Everything wrong with a release directory: a bad signature, a missing, altered or unlisted
    file. An empty list means the release is intact and signed by that key."""
    try:
        data = (root / MANIFEST).read_bytes()
        signature = base64.b64decode((root / SIGNATURE).read_bytes().strip(), validate=True)
    except (OSError, ValueError) as exc:
        return [f"cannot read the manifest or its signature: {exc}"]
    try:
        key = load_public_key(public_key_pem)
    except ValueError as exc:
        return [f"cannot load the public key: {exc}"]
    if not isinstance(key, rsa.RSAPublicKey):
        return ["the public key is not an RSA key"]
    try:
        key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return ["the manifest's signature does not verify with this public key"]
    try:
        manifest = json.loads(data)
        files = manifest["files"]
    except (ValueError, KeyError, TypeError):
        return ["the manifest is not a release manifest"]
    problems = []
    listed = set()
    for entry in files:
        relative = str(entry.get("path", ""))
        if not _safe_relative(relative):
            problems.append(f"{relative!r}: not a path inside the release")
            continue
        listed.add(relative)
        path = root / relative
        if not path.is_file():
            problems.append(f"{relative}: missing")
            continue
        sha256, size = file_digest(path)
        if sha256 != entry.get("sha256") or size != entry.get("bytes"):
            problems.append(f"{relative}: checksum does not match the manifest")
    own = {MANIFEST, SIGNATURE, SIGNATURE_INFO}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_file() and relative not in listed and relative not in own:
            problems.append(f"{relative}: not listed in the manifest")
    return problems


def verify_manifest(root: Path | str, public_key_pem: str) -> bool:
    """True when the manifest is signed by the key and every file matches its checksum."""
    return not check_release(Path(root), public_key_pem)


def _safe_relative(relative: str) -> bool:
    path = PurePosixPath(relative)
    return bool(relative) and not path.is_absolute() and ".." not in path.parts and "\\" not in relative


def signature_info(root: Path) -> dict[str, Any]:
    try:
        return json.loads((root / SIGNATURE_INFO).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReleaseError(f"cannot read {SIGNATURE_INFO}: {exc}") from None
