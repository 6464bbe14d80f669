"""`corpus export --scrub`: contact details and the handles of people who are not in the corpus are
replaced by typed placeholders; consenting authors' handles stay."""
from __future__ import annotations

from pathlib import Path

import pytest

from fedserver.corpus.export import export_release
from tests.corpus.conftest import World, read_jsonl_shards

TEXT = "Write to jo.doe+fedi@example.org or call +44 20 7946 0958. cc @bob and @dave"


@pytest.fixture
async def posted(world: World) -> World:
    await world.user("alice", train_ai="allow")
    await world.user("bob")  # never consented
    await world.user("dave", train_ai="allow")
    await world.post("d", "dave", "dave is in the corpus")
    await world.post("a", "alice", TEXT)
    return world


async def test_scrub_replaces_email_phone_and_non_consenting_handle_but_keeps_consenting_handle(
        posted: World, tmp_path: Path):
    await export_release(posted.ctx, tmp_path / "release", scrub=True)

    [record] = [r for r in read_jsonl_shards(tmp_path / "release") if r["post_url"] == posted.posts["a"]]
    assert record["text"] == "Write to [EMAIL] or call [PHONE]. cc [HANDLE] and @dave"
    assert "example.org" not in record["html"] and "7946" not in record["html"]


async def test_without_scrub_the_text_is_as_written(posted: World, tmp_path: Path):
    await export_release(posted.ctx, tmp_path / "release")

    [record] = [r for r in read_jsonl_shards(tmp_path / "release") if r["post_url"] == posted.posts["a"]]
    assert record["text"] == TEXT


async def test_scrubbed_html_does_not_name_a_non_consenting_person(posted: World, tmp_path: Path):
    await export_release(posted.ctx, tmp_path / "release", scrub=True)

    [record] = [r for r in read_jsonl_shards(tmp_path / "release") if r["post_url"] == posted.posts["a"]]
    assert "bob" not in record["html"]


@pytest.mark.parametrize("text, expected", [
    ("write to a.b@example.org", "write to [EMAIL]"),
    ("call +49 30 1234567 or (030) 123-4567", "call [PHONE] or [PHONE]"),
    ("hi @bob@host.example", "hi [HANDLE]"),
    ("hi @carol@x.example", "hi @carol@x.example"),
    ("see http://10.0.0.1:8999/x/123456789", "see http://10.0.0.1:8999/x/123456789"),
    ("on 2024-01-15 10:30 from 192.168.100.200", "on 2024-01-15 10:30 from 192.168.100.200"),
    ("in 2026 we had 12 cats", "in 2026 we had 12 cats"),
])
def test_scrub_replaces_contact_details_and_other_peoples_handles_but_not_dates_or_links(text, expected):
    from fedserver.corpus.records import scrub

    assert scrub(text, {"@carol@x.example"}) == expected
