"""What a release's records say, byte for byte, and what names them: the documented JSON encoding,
every value of a record, the digest of the records (the same whatever the compression, format or
sharding), the compression level in the manifest, the card's counts, and a failing compressor."""
from __future__ import annotations

import functools
import gzip
import hashlib
import json
import sys
from pathlib import Path

import pytest

from fedserver.corpus import export as export_module
from fedserver.corpus import records, shards, sync
from fedserver.corpus.export import ExportError, export_release
from fedserver.services import interactions
from fedserver.store import actors as actor_store
from fedserver.store import consent as consent_store
from fedserver.store import corpus as corpus_store
from fedserver.store import posts as post_store
from tests.corpus.conftest import World, manifest_of, read_jsonl_shards, release_bytes

# Text that needs escaping in JSON, or that an encoder might escape when it need not.
AWKWARD = 'quote " backslash \\ slash / tab\t bell \x07 del \x7f \u2028 é ✓ 😀 שלום <b>&amp;</b>'


@pytest.fixture
async def rich(world: World) -> World:
    await world.user("alice", train_ai="allow", license="CC-BY-4.0")
    await world.user("bob", train_ai="allow", license="CC0-1.0", include_unlisted=True)
    await world.user("carol")  # never consented: mentioned, boosting, never in the corpus
    await world.post("a1", "alice", f"hello @bob and @carol #Fediverse #café {AWKWARD}", content_warning=AWKWARD)
    await world.post("b1", "bob", "an answer", reply_to="a1", language=None)
    await world.post("b2", "bob", "quietly", visibility="unlisted", language="de")
    await world.post("c1", "carol", "not in the corpus")
    await world.post("a2", "alice", "replying to carol, who is not in the corpus", reply_to="c1", language="fr")
    for booster in ("bob", "carol"):
        await interactions.boost(world.ctx, booster, world.posts["a1"])
    return world


async def test_every_line_is_the_stdlib_json_encoding_of_its_record(rich: World, tmp_path: Path):
    await export_release(rich.ctx, tmp_path / "release")

    [shard] = (tmp_path / "release" / "data").glob("*.jsonl.gz")
    lines = gzip.decompress(shard.read_bytes()).split(b"\n")
    assert lines.pop() == b"", "every record ends with a newline"
    assert len(lines) == 4
    for line in lines:
        record = json.loads(line)
        assert line == json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    assert any(json.loads(line)["content_warning"] == AWKWARD for line in lines)  # stored as written


async def test_a_record_carries_exactly_the_documented_values(rich: World, tmp_path: Path):
    await export_release(rich.ctx, tmp_path / "release")

    by_url = {r["post_url"]: r for r in read_jsonl_shards(tmp_path / "release")}
    secret = await sync.corpus_secret(rich.ctx)
    reader = rich.ctx.db.reader
    alice, bob, carol = [await actor_store.get_local_actor(reader, n) for n in ("alice", "bob", "carol")]
    a1 = await post_store.get_post_by_uri(reader, rich.posts["a1"])
    [alice_consent] = await consent_store.list_events_of_actor(reader, alice.id)
    assert by_url[rich.posts["a1"]] == {
        "author_choices": {"train-ai": "allow"},
        "author_id": sync.pseudonym(secret, "author", alice.uri),
        "boost_count": 2,
        "consent_event": {"at": alice_consent.created_at, "hash": alice_consent.hash, "id": alice_consent.id,
                          "scope": "all"},
        "content_warning": AWKWARD,
        "created_at": a1.published_at,
        "edited_at": None,
        "hashtags": ["café", "fediverse"],
        "html": a1.content_html,
        "in_reply_to": None,
        "language": "en",
        "license": "CC-BY-4.0",
        "license_url": "https://creativecommons.org/licenses/by/4.0/",
        "local": True,
        # Mentioned accounts in the order of their URLs, consenting or not, always pseudonymous.
        "mentions": [sync.pseudonym(secret, "author", uri) for uri in sorted([bob.uri, carol.uri])],
        "post_url": rich.posts["a1"],
        "record_id": sync.pseudonym(secret, "record", rich.posts["a1"]),
        "schema_version": "1",
        "source_instance": rich.ctx.urls.domain,
        "text": a1.content_text,
        "visibility": "public",
    }
    b1 = by_url[rich.posts["b1"]]
    # A reply mentions the author it answers.
    assert (b1["in_reply_to"], b1["language"], b1["license"], b1["boost_count"], b1["hashtags"], b1["mentions"]) \
        == (by_url[rich.posts["a1"]]["record_id"], None, "CC0-1.0", 0, [],
            [sync.pseudonym(secret, "author", alice.uri)])
    assert by_url[rich.posts["b2"]]["visibility"] == "unlisted"
    # A reply to a post outside the corpus still names it, by the id it would have.
    assert by_url[rich.posts["a2"]]["in_reply_to"] == sync.pseudonym(secret, "record", rich.posts["c1"])


async def test_streamed_records_equal_the_changes_feed_records_in_any_batch_size(rich: World):
    reader = rich.ctx.db.reader
    await sync.reconcile(rich.ctx)
    secret = await sync.corpus_secret(rich.ctx)
    handles = {"@alice", "@bob"}

    async def streamed(batch: int, scrub: set[str] | None) -> list[dict]:
        return [r async for b in records.iter_records(reader, secret, batch=batch, scrub_handles=scrub) for r in b]

    ids = [p for p in (await corpus_store.records_by_post_ids(reader, [
        (await post_store.get_post_by_uri(reader, uri)).id for uri in rich.posts.values()])).items()]
    rows = [row for _, row in sorted(ids)]
    for scrub in (None, handles):
        expected = await records.enrich(reader, rows, secret, scrub_handles=scrub)
        assert len(expected) == 4
        for batch in (1, 2, 1000):
            assert await streamed(batch, scrub) == expected


async def test_another_gzip_level_gives_other_files_but_the_same_version_and_records(rich: World, tmp_path: Path):
    first = await export_release(rich.ctx, tmp_path / "fast", shard_size=2, gzip_level=1)
    second = await export_release(rich.ctx, tmp_path / "small", shard_size=2, gzip_level=9)

    assert (first.version, first.new_release) == ("1.0.0", True)
    assert (second.version, second.new_release) == ("1.0.0", False)
    fast, small = manifest_of(tmp_path / "fast"), manifest_of(tmp_path / "small")
    assert (fast["compression"], small["compression"]) == ({"codec": "gzip", "level": 1},
                                                           {"codec": "gzip", "level": 9})
    assert fast["records_sha256"] == small["records_sha256"]
    assert [f.get("records_sha256") for f in fast["files"]] == [f.get("records_sha256") for f in small["files"]]
    assert read_jsonl_shards(tmp_path / "fast") == read_jsonl_shards(tmp_path / "small")
    assert release_bytes(tmp_path / "fast")["data/train-00000-of-00002.jsonl.gz"] \
        != release_bytes(tmp_path / "small")["data/train-00000-of-00002.jsonl.gz"]


async def test_records_sha256_is_the_digest_of_the_decompressed_records_whatever_format_or_shards(
        rich: World, tmp_path: Path):
    await export_release(rich.ctx, tmp_path / "one-shard")
    await export_release(rich.ctx, tmp_path / "shards", shard_size=3)
    digests = {manifest_of(tmp_path / d)["records_sha256"] for d in ("one-shard", "shards")}
    if _has_pyarrow():
        await export_release(rich.ctx, tmp_path / "parquet", format="parquet", shard_size=3)
        digests.add(manifest_of(tmp_path / "parquet")["records_sha256"])
        parquet_files = [f for f in manifest_of(tmp_path / "parquet")["files"] if f["path"].startswith("data/")]
        shard_files = [f for f in manifest_of(tmp_path / "shards")["files"] if f["path"].startswith("data/")]
        assert [f["records_sha256"] for f in parquet_files] == [f["records_sha256"] for f in shard_files]

    content = b"".join(gzip.decompress(p.read_bytes())
                       for p in sorted((tmp_path / "shards" / "data").glob("*.jsonl.gz")))
    assert digests == {hashlib.sha256(content).hexdigest()}
    for entry in manifest_of(tmp_path / "shards")["files"]:
        if entry["path"].startswith("data/"):
            data = (tmp_path / "shards" / entry["path"]).read_bytes()
            assert entry["records_sha256"] == hashlib.sha256(gzip.decompress(data)).hexdigest()
            assert (entry["sha256"], entry["bytes"]) == (hashlib.sha256(data).hexdigest(), len(data))


def _has_pyarrow() -> bool:
    try:
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.parametrize("max_authors", [100_000, 1])
async def test_the_card_counts_what_the_stats_endpoint_counts(rich: World, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch, max_authors: int):
    # With max_authors 1 the export stops remembering authors and counts them in SQL instead.
    monkeypatch.setattr(export_module, "CorpusTally", functools.partial(records.CorpusTally,
                                                                        max_authors=max_authors))
    await export_release(rich.ctx, tmp_path / "release")

    stats = await corpus_store.stats(rich.ctx.db.reader)
    card = (tmp_path / "release" / "README.md").read_text(encoding="utf-8")
    assert (stats["records"], stats["authors"]) == (4, 2)
    assert (f"- Records: {stats['records']} from {stats['authors']} authors, published {stats['first_published']}"
            f" to {stats['last_published']}\n") in card
    assert "- Languages: de (1), en (1), fr (1), und (1)\n" in card
    assert "- [CC-BY-4.0](https://creativecommons.org/licenses/by/4.0/): 2 records\n" in card
    assert "- [CC0-1.0](https://creativecommons.org/publicdomain/zero/1.0/): 2 records\n" in card


async def test_a_compressor_that_fails_fails_the_export_and_leaves_no_release(rich: World, tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(shards, "worker_command",
                        lambda level: [sys.executable, "-c", "import sys; sys.stdin.read(5); sys.exit('disk full')"])

    with pytest.raises(ExportError, match="compressor process failed: disk full"):
        await export_release(rich.ctx, tmp_path / "release")
    assert not (tmp_path / "release").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".release.partial")]


async def test_gzip_level_outside_1_to_9_is_refused(rich: World, tmp_path: Path):
    with pytest.raises(ExportError, match="--gzip-level"):
        await export_release(rich.ctx, tmp_path / "release", gzip_level=0)
