from __future__ import annotations

from hypothesis import given, strategies as st

from fedserver.activitypub.sanitize import sanitize_html
from fedserver.text import MentionTarget, find_hashtags, find_mentions, render_html

LOCAL = "social.example"


def _render(text: str, mentions: dict | None = None) -> str:
    return render_html(text, mentions=mentions or {}, tag_url=lambda t: f"https://{LOCAL}/tags/{t}",
                       local_domain=LOCAL)


def test_text_is_escaped_and_split_into_paragraphs_and_lines():
    html = _render("a <b>bold</b> & claim\nsecond line\n\nnew paragraph")
    assert html == "<p>a &lt;b&gt;bold&lt;/b&gt; &amp; claim<br>second line</p><p>new paragraph</p>"


def test_urls_become_links_without_trailing_punctuation():
    html = _render("see https://example.org/a?b=1&c=2.")
    assert '<a href="https://example.org/a?b=1&amp;c=2" rel="nofollow noopener noreferrer"' in html
    assert html.endswith("</a>.</p>")


def test_resolved_mentions_link_to_the_profile_and_unresolved_stay_text():
    target = MentionTarget("https://remote.example/users/bob", "https://remote.example/@bob", "@bob@remote.example")
    html = _render("hi @bob@remote.example and @ghost@nowhere.example",
                   {"bob@remote.example": target})
    assert '<a href="https://remote.example/@bob" class="u-url mention">@<span>bob</span></a>' in html
    assert "@ghost@nowhere.example" in html and "nowhere.example/@" not in html


def test_mentions_and_hashtags_are_found_but_not_inside_urls():
    text = "@alice hi @bob@remote.example:8080 #Cats #cats https://x.example/#notatag x@y.example"
    assert find_mentions(text, LOCAL) == [f"alice@{LOCAL}", "bob@remote.example:8080"]
    assert find_hashtags(text) == ["cats"]


def test_hashtags_link_to_the_local_tag_page():
    assert 'href="https://social.example/tags/fediverse" class="mention hashtag" rel="tag"' in _render("#Fediverse")


@given(st.text(max_size=300))
def test_rendered_html_survives_the_sanitizer_unchanged_apart_from_link_attributes(text):
    html = _render(text)
    assert "<script" not in html.lower()
    # Our own markup uses only tags the sanitizer keeps, so sanitizing never loses text.
    from fedserver.activitypub.sanitize import html_to_text
    assert html_to_text(sanitize_html(html)) == html_to_text(html)
