"""The signed manifest: a researcher holding the instance actor's public key can tell an intact
release from an altered one."""
from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from fedserver.activitypub.keys import generate_rsa_private_key_pem, load_public_key, public_pem_from_private
from fedserver.corpus.export import export_release
from fedserver.corpus.manifest import check_release, verify_manifest
from tests.corpus.conftest import World, manifest_of, read_jsonl_shards


@pytest.fixture
async def release(world: World, tmp_path: Path) -> Path:
    await world.user("alice", train_ai="allow")
    await world.user("bob", train_ai="allow", license="CC0-1.0")
    for i in range(4):
        await world.post(f"a{i}", "alice", f"alice says {i}")
        await world.post(f"b{i}", "bob", f"bob says {i}")
    await export_release(world.ctx, tmp_path / "release", shard_size=3)
    return tmp_path / "release"


def flip_one_byte(path: Path, offset: int = 20) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


async def test_manifest_signature_verifies_with_the_instance_actor_public_key(world: World, release: Path):
    public_key = await world.instance_public_key()

    assert verify_manifest(release, public_key)
    # The detached signature is plain RSA-PKCS1v15-SHA256 over the manifest's exact bytes.
    load_public_key(public_key).verify(base64.b64decode((release / "manifest.json.sig").read_bytes()),
                                       (release / "manifest.json").read_bytes(), padding.PKCS1v15(),
                                       hashes.SHA256())
    info = json.loads((release / "manifest.sig.json").read_text(encoding="utf-8"))
    assert info["public_key_pem"] == public_key
    assert info["key_id"] == manifest_of(release)["signer"]["key_id"]


async def test_changing_one_byte_of_a_shard_fails_verification(world: World, release: Path):
    flip_one_byte(release / "data" / "train-00001-of-00003.jsonl.gz")

    assert not verify_manifest(release, await world.instance_public_key())
    assert check_release(release, await world.instance_public_key()) == [
        "data/train-00001-of-00003.jsonl.gz: checksum does not match the manifest"]


async def test_changing_one_byte_of_the_manifest_fails_verification(world: World, release: Path):
    flip_one_byte(release / "manifest.json")

    assert not verify_manifest(release, await world.instance_public_key())


async def test_another_key_does_not_verify_the_release(release: Path):
    stranger = public_pem_from_private(generate_rsa_private_key_pem())

    assert not verify_manifest(release, stranger)


async def test_a_file_slipped_into_the_release_fails_verification(world: World, release: Path):
    (release / "data" / "train-00003-of-00003.jsonl.gz").write_bytes(b"not ours")

    assert check_release(release, await world.instance_public_key()) == [
        "data/train-00003-of-00003.jsonl.gz: not listed in the manifest"]


async def test_manifest_lists_every_file_with_matching_checksums_and_record_counts(world: World, release: Path):
    manifest = manifest_of(release)
    files = {f["path"]: f for f in manifest["files"]}

    on_disk = {p.relative_to(release).as_posix() for p in release.rglob("*") if p.is_file()}
    assert set(files) == on_disk - {"manifest.json", "manifest.json.sig", "manifest.sig.json"}
    for path, entry in files.items():
        data = (release / path).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest(), path
        assert entry["bytes"] == len(data), path
    shard_counts = [files[p]["records"] for p in sorted(files) if p.startswith("data/")]
    assert shard_counts == [3, 3, 2]
    assert manifest["records"] == sum(shard_counts) == len(read_jsonl_shards(release))


async def test_manifest_names_the_corpus_cursor_consent_log_head_and_previous_version(world: World, release: Path):
    from fedserver.store import consent as consent_store
    from fedserver.store import corpus as corpus_store

    manifest = manifest_of(release)

    assert manifest["version"] == "1.0.0" and manifest["previous_version"] is None
    assert manifest["corpus_cursor"] == await corpus_store.next_seq(world.ctx.db.reader)
    assert manifest["consent_log"] == {"head": await consent_store.head_hash(world.ctx.db.reader),
                                       "verified": True}
    changes = await corpus_store.changes_after(world.ctx.db.reader, manifest["corpus_cursor"] - 1, 1)
    assert manifest["created_at"] == changes[0]["created_at"]
