"""Corpus records as researchers receive them: one JSON object per post, with pseudonymous ids,
the author's choice and licence, and the consent event that authorised it."""
from __future__ import annotations

import re
from typing import Any, AsyncIterator

import aiosqlite

from fedserver.activitypub.normalize import host_of
from fedserver.corpus.sync import pseudonym
from fedserver.corpus.terms import LICENSE_URLS, TRAIN_AI
from fedserver.store import corpus as corpus_store

RECORD_SCHEMA_VERSION = "1"
# Not preceded by "@": "@bob@host.example" is a handle, handled below, not an e-mail address.
EMAIL_RE = re.compile(r"(?<![@\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# A phone number: optional +country code, then 3-5 groups of digits; 8 to 15 digits in all.
PHONE_RE = re.compile(r"(?<![\w/:.@-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,5}(?:[ .-]?\d{2,8}){1,4}(?![\w/:@-])")
DATE_OR_ADDRESS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}|^\d{1,3}(?:\.\d{1,3}){3}$")
URL_IN_TEXT_RE = re.compile(r"https?://[^\s<>\"']+")
HANDLE_RE = re.compile(r"@[A-Za-z0-9_]+(?:@[A-Za-z0-9.-]+(?::\d+)?)?")


# A mention link as Mastodon and fedserver write it: <a href="…/@bob" class="u-url mention">@<span>bob</span></a>.
MENTION_LINK_RE = re.compile(r"<a\b[^>]*\bclass=\"[^\"]*\bmention\b[^\"]*\"[^>]*>.*?</a>", re.S | re.I)
HREF_RE = re.compile(r"\bhref=\"([^\"]*)\"", re.I)
TAG_RE = re.compile(r"<[^>]+>")


def scrub(text: str, consenting_handles: set[str]) -> str:
    """Replace e-mail addresses, phone numbers and @-handles of people who did not consent with
    typed placeholders (handles of consenting authors stay)."""
    text = EMAIL_RE.sub("[EMAIL]", text)
    text = _outside_urls(text, lambda part: PHONE_RE.sub(_phone, part))
    return HANDLE_RE.sub(lambda m: m.group(0) if m.group(0).lower() in consenting_handles else "[HANDLE]", text)


def _phone(match: re.Match[str]) -> str:
    value = match.group(0)
    digits = sum(c.isdigit() for c in value)
    if not 8 <= digits <= 15 or DATE_OR_ADDRESS_RE.match(value):
        return value  # a date, a time or an IP address, not a phone number
    return "[PHONE]"


def _outside_urls(text: str, apply) -> str:
    """Apply a substitution to the text between URLs (numbers inside links are not phone numbers)."""
    out, position = [], 0
    for match in URL_IN_TEXT_RE.finditer(text):
        out.append(apply(text[position:match.start()]))
        out.append(match.group(0))
        position = match.end()
    out.append(apply(text[position:]))
    return "".join(out)


def scrub_html(html: str, consenting_handles: set[str]) -> str:
    """scrub() for post HTML: a mention link names its person in its text and in its href, so a
    non-consenting person's whole link becomes the placeholder; hashtag links stay."""
    def replace_link(match: re.Match[str]) -> str:
        link = match.group(0)
        if "hashtag" in link[:link.index(">")].lower():
            return link
        name = TAG_RE.sub("", link).strip().lstrip("@").split("@")[0]
        href = HREF_RE.search(link)
        host = host_of(href.group(1)) if href else None
        handle = f"@{name}@{host}".lower() if host else f"@{name}".lower()
        return link if handle in consenting_handles else "[HANDLE]"

    return scrub(MENTION_LINK_RE.sub(replace_link, html), consenting_handles)


class AuthorPseudonyms:
    """pseudonym(secret, "author", uri) with a memory: every record names its author and mentions
    name more, and a corpus has far fewer authors than records, so each is hashed once per export
    (an HMAC costs ~1.5 us, a dict hit ~0.05). Bounded: past max_size names it starts afresh."""

    def __init__(self, secret: bytes, max_size: int = 10_000) -> None:
        self._secret, self._max_size = secret, max_size
        self._names: dict[str, str] = {}

    def __call__(self, uri: str) -> str:
        name = self._names.get(uri)
        if name is None:
            if len(self._names) >= self._max_size:
                self._names.clear()
            name = self._names[uri] = pseudonym(self._secret, "author", uri)
        return name


def build_record(row: dict[str, Any], secret: bytes, *, mentions: list[str], tags: list[str], boosts: int,
                 scrub_handles: set[str] | None = None, authors: AuthorPseudonyms | None = None
                 ) -> dict[str, Any]:
    """The record for a present corpus row (see store.corpus.RECORD_SELECT). authors: a shared
    memo of author pseudonyms (same values as pseudonym(secret, "author", ...))."""
    author = authors or AuthorPseudonyms(secret)
    text, html = row["content_text"], row["content_html"]
    if scrub_handles is not None:
        text = scrub(text, scrub_handles)
        html = scrub_html(html, scrub_handles)
    return {
        "record_id": row["record_id"],
        "schema_version": RECORD_SCHEMA_VERSION,
        "post_url": row["uri"],
        "text": text,
        "html": html,
        "content_warning": row["summary"],
        "language": row["language"],
        "created_at": row["published_at"],
        "edited_at": row["edited_at"],
        "author_id": author(row["author_uri"]),
        "author_choices": {TRAIN_AI: row["choice"]},
        "license": row["license"],
        "license_url": LICENSE_URLS.get(row["license"] or ""),
        "consent_event": {"id": row["consent_event_id"], "hash": row["consent_event_hash"],
                          "at": row["consent_event_at"], "scope": row["scope"]},
        "in_reply_to": pseudonym(secret, "record", row["in_reply_to_uri"]) if row["in_reply_to_uri"] else None,
        "mentions": [author(uri) for uri in mentions],
        "boost_count": boosts,
        "hashtags": tags,
        "visibility": row["visibility"],
        "source_instance": row["author_domain"],
        "local": bool(row["author_is_local"]),
    }


async def enrich(conn: aiosqlite.Connection, rows: list[dict[str, Any]], secret: bytes, *,
                 scrub_handles: set[str] | None = None, authors: AuthorPseudonyms | None = None
                 ) -> list[dict[str, Any]]:
    """Build records for a batch of rows with three batched look-ups (not three per row)."""
    ids = [row["post_id"] for row in rows]
    mentions = await corpus_store.mentions_of_posts(conn, ids)
    tags = await corpus_store.tags_of_posts(conn, ids)
    boosts = await corpus_store.boost_counts(conn, ids)
    authors = authors or AuthorPseudonyms(secret)
    return [build_record(row, secret, mentions=mentions.get(row["post_id"], []), tags=tags.get(row["post_id"], []),
                         boosts=boosts.get(row["post_id"], 0), scrub_handles=scrub_handles, authors=authors)
            for row in rows]


async def iter_records(conn: aiosqlite.Connection, secret: bytes, *, max_seq: int | None = None,
                       batch: int = 1000, scrub_handles: set[str] | None = None
                       ) -> AsyncIterator[list[dict[str, Any]]]:
    authors = AuthorPseudonyms(secret)
    async for rows in corpus_store.iter_present_records(conn, batch=batch, max_seq=max_seq):
        yield await enrich(conn, rows, secret, scrub_handles=scrub_handles, authors=authors)
