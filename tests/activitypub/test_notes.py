from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from fedserver.activitypub.notes import InvalidNote, addressing, parse_note, visibility_of
from fedserver.activitypub.vocab import PUBLIC

FOLLOWERS = "https://a.example/users/bob/followers"
MENTIONED = ["https://b.example/users/alice"]


@pytest.mark.parametrize("visibility, to, cc", [
    ("public", [PUBLIC], [FOLLOWERS, *MENTIONED]),
    ("unlisted", [FOLLOWERS], [PUBLIC, *MENTIONED]),
    ("followers", [FOLLOWERS], MENTIONED),
    ("direct", MENTIONED, []),
])
def test_addressing_matches_mastodon_for_each_visibility(visibility, to, cc):
    assert addressing(visibility, FOLLOWERS, MENTIONED) == {"to": to, "cc": cc}


@given(st.sampled_from(["public", "unlisted", "followers", "direct"]),
       st.lists(st.sampled_from(MENTIONED + ["https://c.example/users/x"]), unique=True, min_size=1))
def test_visibility_read_back_from_addressing_is_the_one_written(visibility, mentions):
    audience = addressing(visibility, FOLLOWERS, mentions)
    assert visibility_of(audience["to"], audience["cc"], FOLLOWERS) == visibility


def test_public_may_be_spelled_as_public_or_as_public_compact_form():
    assert visibility_of(["as:Public"], [], FOLLOWERS) == "public"
    assert visibility_of([], ["Public"], FOLLOWERS) == "unlisted"


def _note(**extra):
    return {"id": "https://a.example/notes/1", "type": "Note", "attributedTo": "https://a.example/users/bob",
            "content": "<p>hi <script>alert(1)</script><b>there</b></p>", "to": [PUBLIC], **extra}


def test_remote_note_content_is_sanitized_and_tags_are_read():
    parsed, visibility = parse_note(_note(tag=[
        {"type": "Mention", "href": "https://b.example/users/alice", "name": "@alice@b.example"},
        {"type": "Hashtag", "name": "#Cats", "href": "https://a.example/tags/cats"}], summary="cw"))
    assert visibility == "public"
    assert "<script" not in parsed.content_html and "alert" not in parsed.content_text
    assert parsed.mention_hrefs == ["https://b.example/users/alice"]
    assert parsed.hashtags == ["cats"]
    assert parsed.sensitive and parsed.summary == "cw"


def test_content_map_is_used_when_content_is_missing_and_gives_the_language():
    parsed, _ = parse_note({**_note(), "content": None, "contentMap": {"de": "<p>Hallo</p>"}})
    assert parsed.content_text == "Hallo" and parsed.language == "de"


@pytest.mark.parametrize("obj", [
    "https://a.example/notes/1",
    {"type": "Note", "attributedTo": "https://a.example/users/bob"},
    {"id": "https://a.example/notes/1", "type": "Note"},
    {"id": "https://a.example/x", "type": "Video", "attributedTo": "https://a.example/users/bob"},
])
def test_objects_that_cannot_be_shown_as_posts_are_refused(obj):
    with pytest.raises(InvalidNote):
        parse_note(obj)


def test_only_http_links_of_remote_objects_and_actors_are_kept():
    from fedserver.activitypub.actors import actor_profile

    parsed, _ = parse_note(_note(url="javascript:alert(1)"))
    assert parsed.url is None
    actor = {"@context": "https://www.w3.org/ns/activitystreams", "id": "https://a.example/users/bob",
             "type": "Person", "inbox": "https://a.example/users/bob/inbox", "url": "javascript:alert(1)",
             "icon": {"type": "Image", "url": "data:image/png;base64,AAAA"},
             "publicKey": {"id": "https://a.example/users/bob#main-key", "owner": "https://a.example/users/bob",
                           "publicKeyPem": "-----BEGIN PUBLIC KEY-----x"}}
    profile = actor_profile(actor)
    assert profile["url"] is None and profile["icon_url"] is None


def test_media_attachments_are_read_in_order_with_http_links_only():
    parsed, _ = parse_note(_note(attachment=[
        {"type": "Document", "mediaType": "image/jpeg", "url": "https://m.example/a.jpg", "name": "alt text",
         "width": 1200, "height": True},
        {"type": "Image", "url": ["ftp://m.example/b.png", {"type": "Link", "href": "https://m.example/b.png",
                                                              "mediaType": "image/png"}]},
        {"type": "Audio", "url": "data:audio/ogg;base64,AAAA"},
        {"type": "PropertyValue", "name": "Website", "value": "https://m.example"},
        "https://m.example/not-an-object.png",
    ]))
    assert [(a.url, a.media_type, a.description, a.width, a.height) for a in parsed.attachments] == [
        ("https://m.example/a.jpg", "image/jpeg", "alt text", 1200, None),
        ("https://m.example/b.png", "image/png", None, None, None),
    ]


def test_at_most_sixteen_attachments_are_kept():
    many = [{"type": "Document", "mediaType": "image/png", "url": f"https://m.example/{n}.png"} for n in range(40)]
    parsed, _ = parse_note(_note(attachment=many))
    assert [a.url for a in parsed.attachments] == [f"https://m.example/{n}.png" for n in range(16)]


def test_a_questions_poll_is_read_with_its_counts():
    question = _note(type="Question", endTime="2026-12-01T10:00:00Z", votersCount=7, anyOf=[
        {"type": "Note", "name": "Tea", "replies": {"type": "Collection", "totalItems": 5}},
        {"type": "Note", "name": "Coffee", "replies": {"type": "Collection", "totalItems": True}},
        {"type": "Note", "replies": {"totalItems": 3}},  # no name: not a choice
    ])
    parsed, _ = parse_note(question)
    assert parsed.poll is not None and parsed.poll.multiple and parsed.poll.voters == 7
    assert [(o.name, o.votes) for o in parsed.poll.options] == [("Tea", 5), ("Coffee", 0)]
    assert parsed.poll.ends_at == "2026-12-01T10:00:00Z" and parsed.poll.closed_at is None
    single, _ = parse_note(_note(type="Question", oneOf=[{"type": "Note", "name": "Yes"}], closed="2026-11-01T00:00:00Z"))
    assert single.poll is not None and not single.poll.multiple and single.poll.closed_at == "2026-11-01T00:00:00Z"
    assert parse_note(_note(type="Question"))[0].poll is None  # no choices: a post without a poll
    assert parse_note(_note(oneOf=[{"type": "Note", "name": "Yes"}]))[0].poll is None  # only Questions
