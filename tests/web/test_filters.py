"""The template filters: the only ways HTML reaches a page are our own rendering of what a local
person typed (links, mentions, hashtags) and sanitized remote HTML; everything else is escaped."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
from markupsafe import Markup

from fedserver.activitypub.sanitize import sanitize_html
from fedserver.text import MentionTarget, render_html
from fedserver.web import filters
from fedserver.web.common import env
from fedserver.web.social import bio_html


@dataclass
class FakeActor:
    username: str
    domain: str
    display_name: str = ""
    summary_html: str = ""
    is_local: int = 1
    id: int = 7
    icon_url: str | None = None


def test_linkify_makes_links_clickable_and_escapes_the_rest():
    html = filters.linkify('see https://example.org/a?b=1&c=2 <b>not bold</b> & "quotes"')
    assert isinstance(html, Markup)
    assert '<a href="https://example.org/a?b=1&amp;c=2" rel="nofollow noopener noreferrer" target="_blank">' in html
    assert "&lt;b&gt;not bold&lt;/b&gt; &amp; &quot;quotes&quot;" in html
    assert "<b>" not in html


def test_linkify_of_nothing_is_empty():
    assert filters.linkify(None) == "" and filters.linkify("") == ""


def test_linkify_turns_hashtags_into_local_tag_links():
    assert '<a href="/tags/cats" class="mention hashtag" rel="tag">#<span>Cats</span></a>' in filters.linkify("#Cats")


def test_render_html_links_resolved_mentions_and_hashtags():
    target = MentionTarget("https://remote.example/users/bob", "https://remote.example/@bob", "@bob@remote.example")
    html = render_html("hi @bob@remote.example #Fediverse @ghost@nowhere.example",
                       mentions={"bob@remote.example": target}, tag_url=lambda tag: f"https://here.example/tags/{tag}",
                       local_domain="here.example")
    assert '<span class="h-card"><a href="https://remote.example/@bob" class="u-url mention">@<span>bob</span></a></span>' in html
    assert '<a href="https://here.example/tags/fediverse" class="mention hashtag" rel="tag">#<span>Fediverse</span></a>' in html
    assert "@ghost@nowhere.example" in html and "nowhere.example/@" not in html


@pytest.mark.parametrize("dirty", [
    "<p>hi<script>alert(1)</script></p>",
    '<p onclick="alert(1)">hi</p>',
    '<a href="javascript:alert(1)" onclick="alert(2)">hi</a>',
    '<img src=x onerror="alert(1)"><p>hi</p>',
])
def test_post_html_shows_the_stored_sanitized_form_as_it_is(dirty):
    # Remote HTML is sanitized when it is stored; the page shows exactly that, cleaning nothing again.
    stored = sanitize_html(dirty)
    html = filters.post_html(stored)
    assert isinstance(html, Markup) and html == stored
    assert "<script" not in html and "onclick" not in html and "onerror" not in html and "javascript:" not in html
    assert "hi" in html


def test_post_html_of_stored_links_keeps_them_safe():
    html = filters.post_html(sanitize_html('<p><a href="https://example.org/" rel="me">site</a></p>'))
    assert 'href="https://example.org/"' in html and 'rel="nofollow noopener noreferrer"' in html


def test_display_names_and_handles_are_escaped_in_post_cards():
    actor = FakeActor(username="eve", domain="evil.example", display_name='<script>alert(1)</script>"Eve"',
                      is_local=0)
    html = env.from_string('{% from "social/_macros.html" import display_name, avatar %}'
                           '<a>{{ display_name(actor) }}</a> {{ actor | handle }} {{ avatar(actor) }}'
                           ).render(actor=actor)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "@eve@evil.example" in html


def test_avatars_only_load_from_web_addresses():
    actor = FakeActor(username="eve", domain="evil.example", icon_url="javascript:alert(1)", is_local=0)
    html = env.from_string('{% from "social/_macros.html" import avatar %}{{ avatar(actor) }}').render(actor=actor)
    assert "javascript:" not in html and "<img" not in html


def test_handle_filter_is_user_at_domain():
    assert filters.handle(FakeActor(username="alice", domain="here.example")) == "@alice@here.example"


def test_datetime_short_is_utc_minutes_and_empty_for_nonsense():
    assert filters.datetime_short("2024-03-05T07:08:09.123456Z") == "2024-03-05 07:08 UTC"
    assert filters.datetime_short("yesterday") == "" and filters.datetime_short(None) == ""


def test_local_bio_links_carry_rel_me_so_other_sites_can_verify_the_profile():
    bio = render_html("my site: https://alice.example", mentions={}, tag_url=lambda tag: f"/tags/{tag}",
                      local_domain="here.example")
    html = bio_html(FakeActor(username="alice", domain="here.example", summary_html=bio))
    assert 'rel="me nofollow noopener noreferrer"' in html and 'href="https://alice.example"' in html


def test_remote_bios_show_as_stored_sanitized_and_get_no_rel_me():
    stored = sanitize_html('<p onclick="x()">hi <a href="https://eve.example" rel="me">me</a>'
                           '<script>alert(1)</script></p>')
    html = bio_html(FakeActor(username="eve", domain="evil.example", is_local=0, summary_html=stored))
    assert html == stored
    assert "onclick" not in html and "<script" not in html and 'rel="me' not in html
    assert 'href="https://eve.example"' in html


def test_post_times_read_in_words_and_the_tooltip_has_the_exact_time():
    now = 1_772_546_400.0  # 2026-03-03 14:00 UTC
    assert filters.relative_time("2026-03-03T13:59:30Z", now) == "now"
    assert filters.relative_time("2026-03-03T13:55:00Z", now) == "5 min"
    assert filters.relative_time("2026-03-03T11:00:00Z", now) == "3 h"
    assert filters.relative_time("2026-03-01T14:00:00Z", now) == "2 d"
    assert filters.relative_time("2026-01-03T09:00:00Z", now) == "Jan 3"
    assert filters.relative_time("2025-03-03T09:00:00Z", now) == "Mar 3, 2025"
    assert filters.relative_time("not a time", now) == ""
    assert filters.exact_time("2026-03-03T14:05:09.123456Z") == "Mar 3, 2026, 14:05 UTC"
