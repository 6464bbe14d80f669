"""Sanitising remote HTML (``content``/``summary``/``name``) and converting it to text.

Remote HTML is attacker-controlled (federation.md §7.5): it is cleaned with nh3 (Rust
ammonia + html5ever, a real HTML5 parser) to Mastodon's ``MASTODON_STRICT`` allowlist
(§4.3) so that what we display matches what Mastodon users see:

* elements ``p br span a del pre code em strong b i u ul ol li blockquote``;
* headings ``h1``-``h6`` become ``<p><strong>...</strong></p>``, exactly Mastodon's
  ``UNSUPPORTED_ELEMENTS_TRANSFORMER`` (chosen over stripping so titles stay visible
  and separate from the following paragraph);
* the contents of ``script``/``style``/``svg``/``math``/... are dropped (the Sanitize
  gem's default ``remove_contents``); other unknown elements are unwrapped to text;
* ``class`` only on ``a``/``span`` and only microformats (``h-* p-* u-* dt-* e-*``) or
  ``mention hashtag ellipsis invisible`` tokens;
* ``href`` only with Mastodon's ``LINK_PROTOCOLS``; relative URLs are dropped (Mastodon
  does not list ``:relative`` either); every link gets
  ``rel="nofollow noopener noreferrer"`` and ``target="_blank"``;
* ``ol start/reversed`` and ``li value`` (numeric only), as Mastodon allows.

html5ever's tree building is quadratic in nesting depth (``"<ol><li><h2>" * 16000``, 192 KB,
took 28 s), so the work is bounded before nh3 sees anything (bound_html): at most
MAX_HTML_CHARS characters and MAX_HTML_TAGS tag openings; past the tag bound the rest of the
post is kept as escaped text. Worst case measured at these bounds: ~50 ms for sanitize_html and
html_to_text together (on a busy 2-core machine), against 28 s before.
"""

from __future__ import annotations

import html as _html
import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import nh3

__all__ = ["ALLOWED_TAGS", "LINK_SCHEMES", "MAX_HTML_CHARS", "MAX_HTML_TAGS", "MAX_STORED_HTML_CHARS",
           "MAX_STORED_HTML_TAGS", "bound_html", "html_as_escaped_text", "html_to_text", "sanitize_html"]

ALLOWED_TAGS = frozenset(
    "p br span a del pre code em strong b i u ul ol li blockquote".split()
)
_HEADINGS = frozenset(f"h{i}" for i in range(1, 7))
LINK_SCHEMES = frozenset(
    "http https dat dweb ipfs ipns ssb gopher xmpp magnet gemini".split()
)
_REMOVE_CONTENTS = frozenset(
    "script style iframe math noembed noframes noscript plaintext svg xmp template".split()
)
_CLASS_PREFIXES = ("h-", "p-", "u-", "dt-", "e-")
_CLASS_NAMES = frozenset({"mention", "hashtag", "ellipsis", "invisible"})
# Class tokens are echoed into our pages: keep them to a boring charset.
_CLASS_TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")
_INTEGER = re.compile(r"^-?[0-9]{1,9}$")


def _filter_classes(value: str) -> str | None:
    kept = [
        tok for tok in value.split()
        if _CLASS_TOKEN.fullmatch(tok)
        and (tok in _CLASS_NAMES or tok.startswith(_CLASS_PREFIXES))
    ]
    return " ".join(dict.fromkeys(kept)) or None


def _attribute_filter(tag: str, attr: str, value: str) -> str | None:
    if attr == "class":
        return _filter_classes(value)
    if attr == "href":
        # nh3 already enforces url_schemes; re-check so a future nh3 default change
        # cannot silently widen the list.
        try:
            scheme = urlsplit(value).scheme.lower()
        except ValueError:
            return None
        return value if scheme in LINK_SCHEMES else None
    if attr in ("start", "value"):
        return value.strip() if _INTEGER.fullmatch(value.strip()) else None
    if attr == "reversed":
        return ""
    return value  # rel/target added by the cleaner itself


_CLEANER = nh3.Cleaner(
    tags=set(ALLOWED_TAGS | _HEADINGS),
    clean_content_tags=set(_REMOVE_CONTENTS),
    attributes={
        "*": set(),  # ammonia's default generic attributes (lang, title) are not Mastodon's
        "a": {"href", "class"},
        "span": {"class"},
        "ol": {"start", "reversed"},
        "li": {"value"},
    },
    attribute_filter=_attribute_filter,
    url_schemes=set(LINK_SCHEMES),
    url_relative="deny",
    link_rel="nofollow noopener noreferrer",
    set_tag_attribute_values={"a": {"target": "_blank"}},
    strip_comments=True,
)


class _HeadingRewriter(HTMLParser):
    """Re-emit nh3 output verbatim except ``<hN>``/``</hN>``.

    Input is html5ever-serialised (balanced, ``<``/``>`` escaped in text and attribute
    values), so raw re-emission is exact; a parser is used rather than string replace
    so that nothing inside attribute values can ever be mistaken for a tag.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.out: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HEADINGS:
            self.out.append("<p><strong>")
        else:
            self.out.append(self.get_starttag_text() or "")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.out.append(self.get_starttag_text() or "")

    def handle_endtag(self, tag: str) -> None:
        self.out.append("</strong></p>" if tag in _HEADINGS else f"</{tag}>")

    def handle_data(self, data: str) -> None:
        self.out.append(data)

    def handle_entityref(self, name: str) -> None:
        self.out.append(f"&{name};")

    def handle_charref(self, name: str) -> None:
        self.out.append(f"&#{name};")


def _rewrite_headings(cleaned: str) -> str:
    if "<h" not in cleaned:
        return cleaned
    rewriter = _HeadingRewriter()
    rewriter.feed(cleaned)
    rewriter.close()
    return "".join(rewriter.out)


# -- bounds ------------------------------------------------------------------------------

# Mastodon caps posts at 500 characters, Pleroma/Akkoma at 5,000 by default; with Mastodon's link
# and mention markup (~40 characters of HTML per tag) a 5,000-character post is ~15 KB of HTML.
# 50,000 leaves room for long Articles and costs nh3 ~1-2 ms on ordinary markup.
MAX_HTML_CHARS = 50_000
# Tag openings (start and end tags: "</p>" creates a <p> when none is open, "</br>" is a <br>).
# Every element html5ever builds comes from one, so this bounds its quadratic work: the worst
# input found at this bound (1,000 distinct unclosed formatting elements with text between) costs
# ~50 ms, nested lists ~15 ms (at 2,000: 90-140 ms). Mastodon-style HTML of a 5,000-character post
# with 30 links and mentions has about 250.
MAX_HTML_TAGS = 1_000
# What cleaning may make of that: links gain rel/target (15x the bytes of "<a>x"), headings become
# two elements, misnested formatting is reopened (~5x the tags of nested "<ol><li><h2>"). Output
# beyond these is kept as escaped text, so what is stored, and shown without cleaning again, is
# bounded whatever the input.
MAX_STORED_HTML_CHARS = 4 * MAX_HTML_CHARS
MAX_STORED_HTML_TAGS = 8 * MAX_HTML_TAGS
# "<" + a letter or "</" + a letter: where the HTML tokenizer can start a tag (WHATWG 13.2.5.6).
# Counting these over-counts (text inside <style> etc. is not markup), never under-counts.
_TAG_OPENING = re.compile(r"</?[A-Za-z]")
# A tag as far as the next "<" or ">": [^<>] keeps every match local, so the scan stays linear
# whatever the input (r"<[^>]*>" would rescan to the end from every "<" of "<<<<...").
_TAG_LIKE = re.compile(r"</?([A-Za-z][A-Za-z0-9]*)[^<>]*>?")


def bound_html(html: str) -> str:
    """html cut to MAX_HTML_CHARS and MAX_HTML_TAGS tag openings; past the tag bound, tags are
    dropped and any other "<" escaped, so the rest stays as text. Unchanged when within bounds;
    linear time."""
    html = html[:MAX_HTML_CHARS]
    cut = None
    for count, match in enumerate(_TAG_OPENING.finditer(html)):
        if count == MAX_HTML_TAGS:
            cut = match.start()
            break
    if cut is None:
        return html
    # Dropping a tag could join a "<" before it to a letter after it ("<<b>i"): escape every "<"
    # left in the tail, so no tag can start there.
    tail = _TAG_LIKE.sub(" ", html[cut:]).replace("<", "&lt;")
    return html[:cut] + tail


# Tags that end a line of text (block-level elements, list items, <br>): no callback per tag.
_LINE_BREAKING_TAG = re.compile(
    r"</?(?:p|div|blockquote|pre|ul|ol|li|table|tr|section|article|header|footer|aside|h[1-6]|figure"
    r"|figcaption|dl|dt|dd|br)(?![A-Za-z0-9])[^<>]*>?", re.IGNORECASE)


def html_as_escaped_text(html: str) -> str:
    """The fallback when cleaning takes too long: html's text, escaped, as paragraphs and line
    breaks, in linear time and without nh3. Block-level tags and <br> become line breaks; other
    tags are dropped; entities are decoded and re-escaped. The result is already in sanitized
    form (sanitize_html leaves it unchanged)."""
    html = _LINE_BREAKING_TAG.sub("\n", html[:MAX_HTML_CHARS])
    # The tree builder drops NUL characters; "\r" is a line break to the tokenizer.
    text = _html.unescape(_TAG_LIKE.sub("", html)).replace("\x00", "").replace("\r", "\n")
    lines = [stripped for line in text.split("\n") if (stripped := _WS.sub(" ", line).strip(" "))]
    # Kept within bound_html's bounds, so that sanitize_html leaves the result as it is.
    room, kept = MAX_HTML_CHARS - len("<p></p>"), []
    for line in lines[:MAX_HTML_TAGS // 2]:
        escaped = _escape_text(line)
        room -= len(escaped) + (len("<br>") if kept else 0)
        if room < 0:
            # Escaping makes a character at most 6 ("&nbsp;"): this much of the line still fits.
            part = line[:max(0, room + len(escaped)) // 6]
            if part:
                kept.append(_escape_text(part))
            break
        kept.append(escaped)
    return f"<p>{'<br>'.join(kept)}</p>" if kept else ""


def _escape_text(text: str) -> str:
    """Text escaped exactly as html5ever serialises a text node (&, <, >, U+00A0)."""
    return _html.escape(text, quote=False).replace("\u00a0", "&nbsp;")


_MAX_PASSES = 4


def sanitize_html(html: str) -> str:
    """Clean remote HTML to Mastodon's allowlist (see module docstring), within the bounds of
    bound_html.  Idempotent on output within those bounds.

    A single html5ever parse/serialise is not always stable: some trees cannot be
    serialised faithfully (``<p><select><p>`` yields nested ``<p>``, which re-parses as
    siblings).  So the cleaner runs until its output is a fixed point, which makes
    ``sanitize_html(sanitize_html(x)) == sanitize_html(x)`` hold; if that does not happen
    within a few passes the content degrades to escaped plain text.
    """
    if not html:
        return ""
    out = _CLEANER.clean(bound_html(html))
    for _ in range(_MAX_PASSES):
        nxt = _CLEANER.clean(_rewrite_headings(out))
        if nxt == out:
            return _within_stored_bounds(out)
        out = nxt
    text = html_to_text(out)
    return _CLEANER.clean("<p>" + _html.escape(text, quote=False) + "</p>") if text else ""


def _within_stored_bounds(out: str) -> str:
    if len(out) <= MAX_STORED_HTML_CHARS and len(_TAG_OPENING.findall(out)) <= MAX_STORED_HTML_TAGS:
        return out
    return html_as_escaped_text(out)


# -- plain text ------------------------------------------------------------------------

_BLOCK_TAGS = frozenset(
    "p div blockquote pre ul ol table tr section article header footer aside "
    "h1 h2 h3 h4 h5 h6 figure figcaption dl".split()
)
_LINE_TAGS = frozenset({"li", "dt", "dd"})
_SKIP_TAGS = _REMOVE_CONTENTS | {"head", "title"}
_WS = re.compile(r"[ \t\n\r\f]+")  # applied to text nodes only, never to markup


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)  # entities arrive unescaped
        self.parts: list[str] = []
        self.pending_newlines = 0  # line breaks owed before the next text
        self.at_line_start = True
        self.skip_depth = 0
        self.pre_depth = 0

    def _break(self, n: int) -> None:
        if self.parts:  # never lead with blank lines
            self.pending_newlines = max(self.pending_newlines, n)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self.skip_depth += 1
        elif tag == "br":
            self.parts.append("\n" * (self.pending_newlines + 1))
            self.pending_newlines = 0
            self.at_line_start = True
        elif tag in _BLOCK_TAGS:
            self._break(2)
            if tag == "pre":
                self.pre_depth += 1
        elif tag in _LINE_TAGS:
            self._break(1)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _SKIP_TAGS:
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self.skip_depth = max(0, self.skip_depth - 1)
        elif tag in _BLOCK_TAGS:
            self._break(2)
            if tag == "pre":
                self.pre_depth = max(0, self.pre_depth - 1)
        elif tag in _LINE_TAGS:
            self._break(1)

    def handle_data(self, data: str) -> None:
        if self.skip_depth:
            return
        if not self.pre_depth:
            data = _WS.sub(" ", data)
            if self.at_line_start or self.pending_newlines:
                data = data.lstrip(" ")
        if not data:
            return
        if self.pending_newlines:
            if self.parts:
                self.parts[-1] = self.parts[-1].rstrip(" ")
            self.parts.append("\n" * self.pending_newlines)
            self.pending_newlines = 0
        self.parts.append(data)
        self.at_line_start = data.endswith("\n")


def html_to_text(html: str) -> str:
    """Plain text for notifications, search, alt text, etc. Only for sanitize_html's output or our
    own markup: Python's HTMLParser is quadratic on some malformed input ("<a " * 1666 takes
    0.4 s) and raises on some ("<![<![").

    ``<br>`` -> newline, paragraph/block boundaries -> blank line (``</p><p>`` gives
    exactly one blank line), list items -> own line, entities unescaped, whitespace in
    text collapsed as a browser would (except inside ``<pre>``), script/style dropped.
    """
    if not html:
        return ""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    text = "".join(parser.parts)
    # Per-line rstrip drops spaces before breaks; leading indentation can only have
    # survived inside <pre>, so keep it.
    return "\n".join(line.rstrip(" ") for line in text.split("\n")).strip("\n")
