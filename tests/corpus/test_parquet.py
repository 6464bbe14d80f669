"""`corpus export --format parquet`: the same records as the JSON Lines release, in Parquet."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from fedserver.corpus.export import ExportError, export_release
from tests.corpus.conftest import World, manifest_of, read_jsonl_shards, release_bytes


@pytest.fixture
async def posted(world: World) -> World:
    await world.user("alice", train_ai="allow")
    await world.user("bob", train_ai="allow", license="CC0-1.0")
    await world.post("a", "alice", "hello @bob #one #two")
    await world.post("b", "bob", "no tags, no mentions", language=None)
    await world.post("c", "alice", "third")
    return world


async def test_parquet_export_holds_the_same_records_as_the_jsonl_export(posted: World, tmp_path: Path):
    pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow is not installed (pip install 'fedserver[parquet]')")
    await export_release(posted.ctx, tmp_path / "jsonl")
    result = await export_release(posted.ctx, tmp_path / "parquet", format="parquet", shard_size=2)

    shards = sorted((tmp_path / "parquet" / "data").glob("train-*.parquet"))
    assert [p.name for p in shards] == ["train-00000-of-00002.parquet", "train-00001-of-00002.parquet"]
    rows = [row for path in shards for row in pq.read_table(path).to_pylist()]
    assert rows == read_jsonl_shards(tmp_path / "jsonl")
    assert result.version == "1.0.0"
    assert manifest_of(tmp_path / "parquet")["format"] == "parquet"
    assert 'path: "data/train-*.parquet"' in (tmp_path / "parquet" / "README.md").read_text(encoding="utf-8")


async def test_two_parquet_exports_of_the_same_state_are_byte_identical(posted: World, tmp_path: Path):
    pytest.importorskip("pyarrow.parquet", reason="pyarrow is not installed (pip install 'fedserver[parquet]')")
    await export_release(posted.ctx, tmp_path / "one", format="parquet")
    await export_release(posted.ctx, tmp_path / "two", format="parquet")

    assert release_bytes(tmp_path / "one") == release_bytes(tmp_path / "two")


async def test_parquet_without_pyarrow_is_a_clear_error(posted: World, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow now raises ImportError

    with pytest.raises(ExportError, match=r"pip install 'fedserver\[parquet\]'"):
        await export_release(posted.ctx, tmp_path / "release", format="parquet")
    assert not (tmp_path / "release").exists()
