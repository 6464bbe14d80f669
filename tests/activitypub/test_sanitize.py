"""Remote HTML sanitising (Mastodon allowlist) and HTML -> text."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedserver.activitypub.sanitize import ALLOWED_TAGS, LINK_SCHEMES, html_to_text, sanitize_html

REL = 'target="_blank" rel="nofollow noopener noreferrer"'


@pytest.mark.parametrize(
    "dirty",
    [
        "<script>alert(1)</script>",
        "<SCRIPT SRC=//evil/x.js></SCRIPT>",
        "<style>body{display:none}</style>",
        '<p onclick="alert(1)">x</p>',
        '<a href="javascript:alert(1)">x</a>',
        '<a href="JaVaScRiPt:alert(1)">x</a>',
        '<a href="  javascript:alert(1)">x</a>',
        '<a href="jav&#x09;ascript:alert(1)">x</a>',
        '<a href="data:text/html,<script>alert(1)</script>">x</a>',
        '<a href="vbscript:msgbox(1)">x</a>',
        '<img src=x onerror="alert(1)">',
        '<svg><script>alert(1)</script></svg>',
        '<iframe src="https://evil"></iframe>',
        '<math><mi xlink:href="javascript:alert(1)">x</mi></math>',
        "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\"></noscript>",
        '<form action="https://evil"><input name=x></form>',
        '<p style="background:url(javascript:alert(1))">x</p>',
        "<!--<script>alert(1)</script>-->",
        '<object data="x"></object><embed src="x">',
    ],
)
def test_dangerous_markup_removed(dirty: str) -> None:
    out = sanitize_html(dirty).lower()
    for needle in ("<script", "javascript:", "vbscript:", "data:", "onclick", "onerror",
                   "<img", "<svg", "<iframe", "<style", "style=", "<form", "<input",
                   "<object", "<embed", "<!--"):
        assert needle not in out, (dirty, out)


def test_allowed_tags_kept() -> None:
    html = ("<p>a<br>b</p><pre><code>x</code></pre><blockquote><p><em>e</em> <strong>s</strong>"
            " <b>b</b> <i>i</i> <u>u</u> <del>d</del></p></blockquote>"
            "<ul><li>1</li></ul><ol><li>2</li></ol>")
    assert sanitize_html(html) == html


def test_links() -> None:
    assert sanitize_html('<a href="https://example.org/x?a=1&amp;b=2" rel="me" target="x" '
                         'title="t">l</a>') == (
        f'<a href="https://example.org/x?a=1&amp;b=2" {REL}>l</a>')
    for scheme in ("http", "https", "dat", "dweb", "ipfs", "ipns", "ssb", "gopher", "xmpp",
                   "magnet", "gemini"):
        assert f'href="{scheme}:' in sanitize_html(f'<a href="{scheme}://x/y">l</a>')
    for bad in ("ftp://x/", "mailto:a@b", "/relative", "//proto-relative/x", "#frag", "tel:1"):
        assert "href" not in sanitize_html(f'<a href="{bad}">l</a>'), bad


def test_class_filtering() -> None:
    html = ('<p><span class="h-card"><a href="https://x/@a" class="u-url mention evil '
            'dt-x e-y p-z hashtag">@a</a></span><span class="invisible ellipsis foo '
            'h-&quot;x">y</span><span class="nothing">z</span></p>')
    assert sanitize_html(html) == (
        '<p><span class="h-card"><a href="https://x/@a" class="u-url mention dt-x e-y p-z '
        f'hashtag" {REL}>@a</a></span><span class="invisible ellipsis">y</span><span>z</span></p>')
    # class only on a/span
    assert sanitize_html('<p class="h-entry">x</p>') == "<p>x</p>"


def test_headings_become_strong_paragraphs() -> None:
    assert sanitize_html('<h1 id="x">Title</h1><p>body</p>') == (
        "<p><strong>Title</strong></p><p>body</p>")
    assert sanitize_html("<h3>a <em>b</em></h3>text") == "<p><strong>a <em>b</em></strong></p>text"
    assert sanitize_html("<p>&lt;h1&gt; is text</p>") == "<p>&lt;h1&gt; is text</p>"


def test_list_attributes() -> None:
    assert sanitize_html('<ol start="3" reversed><li value="7">a</li><li value="x">b</li></ol>') == (
        '<ol start="3" reversed=""><li value="7">a</li><li>b</li></ol>')


def test_unknown_tags_unwrapped_and_entities() -> None:
    assert sanitize_html("<div><table><tr><td>cell</td></tr></table></div>") == "cell"
    assert sanitize_html("a < b & c") == "a &lt; b &amp; c"
    assert sanitize_html("") == ""


_ALLOWED_ATTRS = {"a": {"href", "class", "rel", "target"}, "span": {"class"},
                  "ol": {"start", "reversed"}, "li": {"value"}}


class _MarkupAudit(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, attrs))


def _assert_only_allowed_markup(out: str) -> None:
    """Parse the output: every element/attribute must be on the allowlist."""
    audit = _MarkupAudit()
    audit.feed(out)
    audit.close()
    for tag, attrs in audit.found:
        assert tag in ALLOWED_TAGS, (tag, out)
        for name, value in attrs:
            assert name in _ALLOWED_ATTRS.get(tag, set()), (tag, name, out)
            if name == "href":
                assert urlsplit(value or "").scheme in LINK_SCHEMES, (value, out)


_TAGS = ["p", "br", "span", "a", "del", "pre", "code", "em", "strong", "b", "i", "u", "ul",
         "ol", "li", "blockquote", "h1", "h2", "h6", "script", "style", "div", "img", "svg",
         "math", "table", "td", "tr", "iframe", "noscript", "textarea", "title", "xmp",
         "template", "select", "option", "form", "button", "object"]
_ATTRS = ['href="javascript:alert(1)"', 'href="https://x/<h1>"', "class='mention h-card x'",
          "onclick=alert(1)", 'style="x"', 'href="/rel"', "src=x", 'value="3"', "reversed",
          'class="invisible"', 'href="https://ok.example/"']
_fragment = st.one_of(
    st.builds(lambda t, a: f"<{t} {a}>", st.sampled_from(_TAGS), st.sampled_from(_ATTRS)),
    st.builds(lambda t: f"<{t}>", st.sampled_from(_TAGS)),
    st.builds(lambda t: f"</{t}>", st.sampled_from(_TAGS)),
    st.sampled_from(["<", ">", "&", "&amp;", "&lt;script&gt;", "<!--", "-->", "<![CDATA[",
                     "]]>", '"', "'", "<scr", "ipt>", "\n", " ", "<?x", "&#60;script"]),
    st.text(max_size=8),
)
html_soup = st.lists(_fragment, max_size=30).map("".join)


@settings(max_examples=400, deadline=None)
@given(html_soup)
def test_property_no_script_and_idempotent(html: str) -> None:
    once = sanitize_html(html)
    assert "<script" not in once.lower()
    _assert_only_allowed_markup(once)
    assert sanitize_html(once) == once


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_property_arbitrary_text(html: str) -> None:
    once = sanitize_html(html)
    assert "<script" not in once.lower()
    _assert_only_allowed_markup(once)
    assert sanitize_html(once) == once


@pytest.mark.parametrize(
    "html,text",
    [
        ("<p>Hello</p><p>World</p>", "Hello\n\nWorld"),
        ("<p>line one<br>line two<br/>line three</p>", "line one\nline two\nline three"),
        ("<p>a &amp; b &lt;c&gt; &quot;d&quot; &#39;e&#39; &#x1F600; caf&eacute;</p>",
         "a & b <c> \"d\" 'e' \U0001F600 café"),
        ("<p>a\n   b</p>\n\n<p>  c  </p>", "a b\n\nc"),
        ("<p><span class=\"h-card\"><a href=\"https://x/@a\" class=\"u-url mention\">@<span>a"
         "</span></a></span> hi</p>", "@a hi"),
        ('<p><a href="https://example.org/long/path"><span class="invisible">https://</span>'
         '<span class="ellipsis">example.org/lo</span><span class="invisible">ng/path</span>'
         "</a></p>", "https://example.org/long/path"),
        ("<p>x<script>alert(1)</script><style>p{}</style>y</p>", "xy"),
        ("<pre>  keep\n    indent</pre>", "  keep\n    indent"),
        ("<ul><li>one</li><li>two</li></ul><p>after</p>", "one\ntwo\n\nafter"),
        ("<h1>T</h1>body", "T\n\nbody"),
        ("plain text", "plain text"),
        ("", ""),
        ("<p></p><p>only</p><p></p>", "only"),
    ],
)
def test_html_to_text(html: str, text: str) -> None:
    assert html_to_text(html) == text


def test_html_to_text_of_sanitized() -> None:
    assert html_to_text(sanitize_html("<h2>Hi</h2><p>a<br>b</p>")) == "Hi\n\na\nb"
