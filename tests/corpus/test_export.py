"""`corpus export` as a researcher receives it: exactly the consented public posts, streamed into
deterministic shards, with semantic versions that follow what changed."""
from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

from fedserver.corpus import sync
from fedserver.corpus.export import ExportError, export_release
from fedserver.services import posting
from fedserver.store import corpus as corpus_store
from tests.corpus.conftest import World, manifest_of, read_jsonl_shards, read_removals, release_bytes


async def test_export_contains_exactly_the_consenting_authors_public_posts(world: World, tmp_path: Path):
    await world.user("alice", train_ai="allow")
    await world.user("bob")
    await world.user("carol", train_ai="deny")
    await world.user("dave", train_ai="allow", include_unlisted=True, license="CC0-1.0")
    await world.user("erin")
    await world.post("a-public", "alice", "alice in public")
    await world.post("a-unlisted", "alice", "alice unlisted", visibility="unlisted")
    await world.post("a-followers", "alice", "alice to followers", visibility="followers")
    await world.post("a-direct", "alice", "@dave just between us", visibility="direct")
    await world.post("a-excluded", "alice", "keep this one out", excluded=True)
    await world.post("a-deleted", "alice", "soon gone")
    await world.delete("a-deleted", "alice")
    await world.post("b-public", "bob", "bob never said yes")
    await world.post("c-public", "carol", "carol said no")
    await world.post("d-public", "dave", "dave in public")
    await world.post("d-unlisted", "dave", "dave unlisted, allowed")
    await world.post("e-before", "erin", "erin before consenting")
    await world.consent("erin", "allow", scope="future")
    await world.post("e-after", "erin", "erin after consenting")

    result = await export_release(world.ctx, tmp_path / "release")

    records = read_jsonl_shards(tmp_path / "release")
    expected = {world.posts[k] for k in ("a-public", "d-public", "d-unlisted", "e-after")}
    assert {r["post_url"] for r in records} == expected
    assert result.records == len(records) == 4
    assert all(r["visibility"] in ("public", "unlisted") for r in records)
    by_url = {r["post_url"]: r for r in records}
    assert by_url[world.posts["d-public"]]["license"] == "CC0-1.0"
    assert by_url[world.posts["a-public"]]["license"] == "CC-BY-4.0"
    assert all("alice" not in r["author_id"] for r in records)


async def test_records_come_in_post_order_split_into_numbered_shards(world: World, tmp_path: Path):
    await world.user("alice", train_ai="allow")
    urls = []
    for i in range(5):
        urls.append(await world.post(f"p{i}", "alice", f"post number {i}"))
        await asyncio.sleep(0.002)  # post ids are time-ordered to the millisecond

    await export_release(world.ctx, tmp_path / "release", shard_size=2)

    data = sorted(p.name for p in (tmp_path / "release" / "data").iterdir())
    assert data == [f"train-0000{i}-of-00003.jsonl.gz" for i in range(3)]
    assert [r["post_url"] for r in read_jsonl_shards(tmp_path / "release")] == urls
    assert [f["records"] for f in manifest_of(tmp_path / "release")["files"] if f["path"].startswith("data/")] \
        == [2, 2, 1]
    header = (tmp_path / "release" / "data" / data[0]).read_bytes()[:10]
    assert header[3] == 0, "no file name or other optional fields in the gzip header"
    assert header[4:8] == b"\0\0\0\0", "gzip mtime is 0"


async def test_two_exports_of_the_same_state_are_byte_identical(world: World, tmp_path: Path):
    await world.user("alice", train_ai="allow")
    await world.user("bob", train_ai="allow", license="CC-BY-SA-4.0")
    for i in range(3):
        await world.post(f"a{i}", "alice", f"alice #{i} says hello to @bob")
        await world.post(f"b{i}", "bob", f"bob #{i} answers")

    first = await export_release(world.ctx, tmp_path / "one", shard_size=4)
    second = await export_release(world.ctx, tmp_path / "two", shard_size=4)

    assert release_bytes(tmp_path / "one") == release_bytes(tmp_path / "two")
    assert len(release_bytes(tmp_path / "one")) == 8  # 2 shards, removals, card, croissant, manifest + 2 sig
    assert (first.version, first.new_release) == ("1.0.0", True)
    assert (second.version, second.new_release) == ("1.0.0", False)


async def test_exporting_again_into_the_same_directory_replaces_it_with_identical_files(world: World,
                                                                                          tmp_path: Path):
    await world.user("alice", train_ai="allow")
    await world.post("a", "alice", "hello")
    await export_release(world.ctx, tmp_path / "release", shard_size=1)
    before = release_bytes(tmp_path / "release")

    await export_release(world.ctx, tmp_path / "release", shard_size=1)

    assert release_bytes(tmp_path / "release") == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".release.partial")]


async def test_a_consent_change_that_changes_no_record_keeps_the_version_and_the_bytes(world: World,
                                                                                        tmp_path: Path):
    await world.user("alice", train_ai="allow")
    await world.post("a", "alice", "hello")
    await export_release(world.ctx, tmp_path / "one")
    await world.user("frank", train_ai="allow")  # no posts: the corpus does not change

    result = await export_release(world.ctx, tmp_path / "two")

    assert result.version == "1.0.0" and not result.new_release
    assert release_bytes(tmp_path / "one") == release_bytes(tmp_path / "two")


async def test_withdrawal_then_export_is_a_major_release_listing_the_removed_records(world: World,
                                                                                     tmp_path: Path):
    await world.user("alice", train_ai="allow")
    await world.user("dave", train_ai="allow")
    await world.post("a1", "alice", "one")
    await world.post("a2", "alice", "two")
    await world.post("d1", "dave", "dave stays")
    await world.post("d2", "dave", "dave deletes this")
    await export_release(world.ctx, tmp_path / "v1")
    old = {r["post_url"]: r["record_id"] for r in read_jsonl_shards(tmp_path / "v1")}

    await world.consent("alice", "deny")
    await world.delete("d2", "dave")
    result = await export_release(world.ctx, tmp_path / "v2")

    assert (result.version, result.previous_version) == ("2.0.0", "1.0.0")
    removals = read_removals(tmp_path / "v2")
    assert {(r["record_id"], r["reason"]) for r in removals} == {
        (old[world.posts["a1"]], "consent_withdrawn"), (old[world.posts["a2"]], "consent_withdrawn"),
        (old[world.posts["d2"]], "post_deleted")}
    assert all(r["removed_at"] for r in removals)
    assert [r["post_url"] for r in read_jsonl_shards(tmp_path / "v2")] == [world.posts["d1"]]
    manifest = manifest_of(tmp_path / "v2")
    assert (manifest["version"], manifest["previous_version"], manifest["removals"]) == ("2.0.0", "1.0.0", 3)
    assert [r["version"] for r in [await corpus_store.last_release(world.ctx.db.reader)]] == ["2.0.0"]


async def test_additions_only_are_a_minor_release_with_no_removals(world: World, tmp_path: Path):
    await world.user("alice", train_ai="allow")
    await world.post("a1", "alice", "first")
    await export_release(world.ctx, tmp_path / "v1")

    await world.post("a2", "alice", "second")
    await world.user("bob", train_ai="allow")
    await world.post("b1", "bob", "bob joins")
    result = await export_release(world.ctx, tmp_path / "v2")

    assert (result.version, result.previous_version, result.removals) == ("1.1.0", "1.0.0", 0)
    assert read_removals(tmp_path / "v2") == []
    assert len(read_jsonl_shards(tmp_path / "v2")) == 3

    await world.delete("a1", "alice")
    third = await export_release(world.ctx, tmp_path / "v3")
    assert (third.version, third.previous_version) == ("2.0.0", "1.1.0")


async def test_a_record_that_was_not_in_the_previous_release_is_never_listed_as_removed(world: World,
                                                                                        tmp_path: Path):
    await world.user("alice", train_ai="allow")
    await world.post("a1", "alice", "stays")
    a2 = await world.post("a2", "alice", "in and out")
    await sync.reconcile(world.ctx)  # the server's reconciler adds a2 ...
    await posting.set_post_excluded(world.ctx, "alice", a2, True)
    await sync.reconcile(world.ctx)  # ... and removes it before the first release
    await export_release(world.ctx, tmp_path / "v1")
    await posting.set_post_excluded(world.ctx, "alice", a2, False)
    await sync.reconcile(world.ctx)  # back in, then deleted before the next release had it
    await world.delete("a2", "alice")
    await world.post("a3", "alice", "added and deleted between releases")
    await sync.reconcile(world.ctx)
    await world.delete("a3", "alice")

    result = await export_release(world.ctx, tmp_path / "v2")

    assert [r["post_url"] for r in read_jsonl_shards(tmp_path / "v1")] == [world.posts["a1"]]
    assert (result.version, result.removals) == ("1.1.0", 0)
    assert read_removals(tmp_path / "v2") == []


async def test_export_refuses_a_directory_holding_other_files(world: World, tmp_path: Path):
    target = tmp_path / "documents"
    target.mkdir()
    (target / "thesis.tex").write_text("precious", encoding="utf-8")

    with pytest.raises(ExportError, match="not part of a corpus release"):
        await export_release(world.ctx, target)
    assert (target / "thesis.tex").read_text(encoding="utf-8") == "precious"


async def test_progress_bar_shows_records_written_of_total_only_when_asked(world: World, tmp_path: Path):
    await world.user("alice", train_ai="allow")
    for i in range(3):
        await world.post(f"a{i}", "alice", f"post {i}")
    quiet, shown = io.StringIO(), io.StringIO()  # not terminals

    await export_release(world.ctx, tmp_path / "one", stream=quiet)
    await export_release(world.ctx, tmp_path / "two", stream=shown, progress=True)

    assert quiet.getvalue() == ""
    assert "3/3 records" in shown.getvalue() and "rec/s" in shown.getvalue()


async def test_an_empty_corpus_exports_as_one_empty_shard(world: World, tmp_path: Path):
    await world.user("bob")
    await world.post("b", "bob", "not consented")

    result = await export_release(world.ctx, tmp_path / "release")

    assert (result.version, result.records, result.shards) == ("1.0.0", 0, 1)
    assert read_jsonl_shards(tmp_path / "release") == []
