"""Accept / Content-Type parsing against the header variants real peers send (§2.1)."""

from __future__ import annotations

import pytest

from fedserver.activitypub.mediatypes import (
    AS2_ACCEPT,
    AS2_CONTENT_TYPE,
    AS_PUBLIC,
    is_activitypub_content_type,
    is_public_address,
    parse_accept,
    wants_activitypub,
)

PROFILE = 'profile="https://www.w3.org/ns/activitystreams"'


@pytest.mark.parametrize(
    "accept",
    [
        AS2_ACCEPT,
        # Mastodon >= 4.3 (PR #30354): profile ld+json first, then activity+json, bare ld+json
        f"application/ld+json; {PROFILE}, application/activity+json, application/ld+json",
        # older Mastodon JsonLdHelper
        f"application/activity+json, application/ld+json; {PROFILE}, text/html;q=0.1",
        "application/activity+json, application/ld+json",  # Misskey/Pleroma style
        "application/activity+json",
        "application/ld+json",  # no profile: still AP (§2.1 "with or without profile")
        'application/ld+json;profile="https://www.w3.org/ns/activitystreams"',
        # profile lists with several IRIs, quoted commas/semicolons must not split
        'application/ld+json; profile="https://www.w3.org/ns/activitystreams https://x/a,b;c"',
        "Application/Activity+JSON",
        "text/html;q=0.9, application/activity+json",
        "application/activity+json;q=0.5, text/html;q=0.4",
        "*/*;q=0.1, application/activity+json",
        "application/activity+json, */*",
        "text/*;q=1, application/activity+json",  # equal q: explicit beats text/*
        "application/activity+json, text/html",  # equal q: first listed wins
    ],
)
def test_wants_activitypub_true(accept: str) -> None:
    assert wants_activitypub(accept)


@pytest.mark.parametrize(
    "accept",
    [
        "",
        None,
        "*/*",
        "application/*",
        "text/html",
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",  # browser
        "application/json",
        "application/jrd+json",
        "application/activity+json;q=0",
        "text/html, application/activity+json;q=0.5",
        "text/html, application/activity+json",  # equal q: html listed first
        "application/activity+jsonx, application/activity",
        'text/html; foo="application/activity+json"',  # only inside a quoted param
        "garbage,,;;==",
    ],
)
def test_wants_activitypub_false(accept: str | None) -> None:
    assert not wants_activitypub(accept)


def test_parse_accept_quoted_params_and_q() -> None:
    ranges = parse_accept('a/b; p="x, y; z" ; q=0.3, c/d;q=bogus, */*;q=2')
    assert [(r.essence, r.q) for r in ranges] == [("a/b", 0.3), ("c/d", 1.0), ("*/*", 1.0)]
    assert ranges[0].params == {"p": "x, y; z"}


@pytest.mark.parametrize(
    "ctype,expected",
    [
        ("application/activity+json", True),
        ("application/activity+json; charset=utf-8", True),
        ("APPLICATION/ACTIVITY+JSON", True),
        (f"application/ld+json; {PROFILE}", True),
        ("application/ld+json; profile=https://www.w3.org/ns/activitystreams", True),
        ('application/ld+json; profile="https://w3id.org/security/v1 '
         'https://www.w3.org/ns/activitystreams"', True),
        ("application/ld+json", False),
        ('application/ld+json; profile="https://www.w3.org/ns/activitystreams#"', False),
        ('application/ld+json; profile="http://www.w3.org/ns/activitystreams"', False),
        ("application/json", False),
        ("text/html", False),
        ("", False),
        (None, False),
        ("application/activity+json, text/html", False),
        ("*/*", False),
    ],
)
def test_is_activitypub_content_type(ctype: str | None, expected: bool) -> None:
    assert is_activitypub_content_type(ctype) is expected


def test_public_address() -> None:
    assert AS2_CONTENT_TYPE == "application/activity+json"
    for s in (AS_PUBLIC, "as:Public", "Public"):
        assert is_public_address(s)
    for s in ("public", "https://www.w3.org/ns/activitystreams", "as:public", None, ["Public"]):
        assert not is_public_address(s)
