"""Corpus records as researchers receive them: one JSON object per post, with pseudonymous ids,
the author's choice and licence, and the consent event that authorised it."""
from __future__ import annotations

import re
from collections import Counter
from operator import itemgetter
from typing import Any, AsyncIterator, Awaitable, Callable, Sequence

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


# What every record of one author says about the author, built once per author and export:
# (author_id, author_choices, license, license_url, source_instance, local, consent scope).
AuthorParts = tuple[str, dict[str, Any], "str | None", "str | None", str, bool, "str | None"]


def author_parts(names: AuthorPseudonyms, uri: str, domain: str, is_local: Any, choice: str | None,
                 license: str | None, scope: str | None) -> AuthorParts:
    return (names(uri), {TRAIN_AI: choice}, license, LICENSE_URLS.get(license or ""), domain, bool(is_local), scope)


_NO_EVENT: tuple[None, None] = (None, None)


def build_records(rows: Sequence[Sequence[Any]], secret: bytes, *, authors: dict[int, AuthorParts],
                  events: dict[int, tuple[str, str]], mentions: dict[int, list[str]], tags: dict[int, list[str]],
                  scrub_handles: set[str] | None = None) -> list[dict[str, Any]]:
    """Records for store.corpus.PRESENT_COLUMNS rows. authors and events (hash, created_at) by id;
    mentions (pseudonymous author ids, in the mentioned accounts' URL order) and hashtags by post.
    The one place the record layout is written: keys in sorted order, as card.RECORD_FIELDS
    documents them. Parts of an author are shared between their records, so a record must never
    be changed in place."""
    out: list[dict[str, Any]] = []
    append = out.append
    for (post_id, record_id, event_id, actor_id, uri, text, html, summary, language, published_at, edited_at,
         reply, visibility, boosts) in rows:
        author_id, choices, license, license_url, source_instance, local, scope = authors[actor_id]
        event_hash, event_at = events.get(event_id, _NO_EVENT)
        if scrub_handles is not None:
            text, html = scrub(text, scrub_handles), scrub_html(html, scrub_handles)
        append({
            "author_choices": choices,
            "author_id": author_id,
            "boost_count": boosts,
            "consent_event": {"at": event_at, "hash": event_hash, "id": event_id, "scope": scope},
            "content_warning": summary,
            "created_at": published_at,
            "edited_at": edited_at,
            "hashtags": tags.get(post_id, []),
            "html": html,
            "in_reply_to": pseudonym(secret, "record", reply) if reply else None,
            "language": language,
            "license": license,
            "license_url": license_url,
            "local": local,
            "mentions": mentions.get(post_id, []),
            "post_url": uri,
            "record_id": record_id,
            "schema_version": RECORD_SCHEMA_VERSION,
            "source_instance": source_instance,
            "text": text,
            "visibility": visibility,
        })
    return out


def build_record(row: dict[str, Any], secret: bytes, *, mentions: list[str], tags: list[str], boosts: int,
                 scrub_handles: set[str] | None = None, authors: AuthorPseudonyms | None = None
                 ) -> dict[str, Any]:
    """The record for a present corpus row (see store.corpus.RECORD_SELECT); mentions are the
    mentioned accounts' URLs in URL order. authors: a shared memo of author pseudonyms."""
    names = authors or AuthorPseudonyms(secret)
    post_id, event_id = row["post_id"], row["consent_event_id"]
    present = (post_id, row["record_id"], event_id, 0, row["uri"], row["content_text"], row["content_html"],
               row["summary"], row["language"], row["published_at"], row["edited_at"], row["in_reply_to_uri"],
               row["visibility"], boosts)  # PRESENT_COLUMNS, with the author under key 0
    author = author_parts(names, row["author_uri"], row["author_domain"], row["author_is_local"], row["choice"],
                          row["license"], row["scope"])
    return build_records([present], secret, authors={0: author},
                         events={event_id: (row["consent_event_hash"], row["consent_event_at"])},
                         mentions={post_id: [names(uri) for uri in mentions]}, tags={post_id: tags},
                         scrub_handles=scrub_handles)[0]


async def consenting_handles(conn: aiosqlite.Connection) -> set[str]:
    """Handles scrubbing keeps: authors in the corpus now (so the set follows the corpus state), in
    full form, and for local authors also as @user, the way people on this server write them."""
    handles: set[str] = set()
    for username, domain, is_local in await corpus_store.present_author_handles(conn):
        handles.add(f"@{username}@{domain}".lower())
        if is_local:
            handles.add(f"@{username}".lower())
    return handles


async def enrich(conn: aiosqlite.Connection, rows: list[dict[str, Any]], secret: bytes, *,
                 scrub_handles: set[str] | None = None, authors: AuthorPseudonyms | None = None
                 ) -> list[dict[str, Any]]:
    """Build records for a batch of RECORD_SELECT rows with three batched look-ups (not three per
    row): the changes feed's path, for a page of scattered records."""
    ids = [row["post_id"] for row in rows]
    mentions = await corpus_store.mentions_of_posts(conn, ids)
    tags = await corpus_store.tags_of_posts(conn, ids)
    boosts = await corpus_store.boost_counts(conn, ids)
    authors = authors or AuthorPseudonyms(secret)
    return [build_record(row, secret, mentions=mentions.get(row["post_id"], []), tags=tags.get(row["post_id"], []),
                         boosts=boosts.get(row["post_id"], 0), scrub_handles=scrub_handles, authors=authors)
            for row in rows]


# --- Streaming every present record (snapshots and releases) ----------------------------------

class _Memo:
    """id -> value for ids looked up in batches, kept across batches (authors, consent events and
    mentioned accounts repeat across a corpus). Bounded: when a batch would take it past max_size,
    it starts afresh with that batch's ids."""

    def __init__(self, fetch: Callable[[aiosqlite.Connection, list[int]], Awaitable[list[Any]]],
                 make: Callable[[Any], Any], max_size: int = 20_000) -> None:
        self._fetch, self._make, self._max_size = fetch, make, max_size
        self.values: dict[int, Any] = {}

    async def load(self, conn: aiosqlite.Connection, ids: set[int]) -> dict[int, Any]:
        missing = ids.difference(self.values)
        if missing:
            if len(self.values) + len(missing) > self._max_size:
                self.values = {i: v for i, v in self.values.items() if i in ids}
            for row in await self._fetch(conn, sorted(missing)):
                self.values[row[0]] = self._make(row)
        return self.values


class CorpusTally:
    """What store.corpus.stats reports (records, authors, languages, licences, first and last
    publication), counted from the record stream itself, so an export needs no second scan of the
    corpus. Distinct authors are remembered by id up to max_authors; past that, authors is None and
    the caller counts them in SQL (memory stays bounded)."""

    def __init__(self, max_authors: int = 100_000, *, per_author: bool = False) -> None:
        self.records = 0
        # Records per author id, for the researcher receipts of a pull or release (one entry per
        # author in the corpus: what corpus_custody writes, it has to hold anyway).
        self.per_author: Counter[int] | None = Counter() if per_author else None
        self.languages: Counter[str] = Counter()
        self.licenses: Counter[str] = Counter()
        self.first_published: str | None = None
        self.last_published: str | None = None
        self._authors: set[int] | None = set()
        self._max_authors = max_authors

    def add(self, rows: Sequence[Sequence[Any]], authors: dict[int, AuthorParts]) -> None:
        """Count a batch of PRESENT_COLUMNS rows (authors: their parts, for the licences)."""
        if not rows:
            return
        self.records += len(rows)
        self.languages.update("und" if language is None else language for language in map(_LANGUAGE, rows))
        for actor_id, count in Counter(map(_ACTOR, rows)).items():
            if self.per_author is not None:
                self.per_author[actor_id] += count
            license = authors[actor_id][2]
            self.licenses["none" if license is None else license] += count
            if self._authors is not None:
                self._authors.add(actor_id)
                if len(self._authors) > self._max_authors:
                    self._authors = None
        first, last = min(map(_PUBLISHED, rows)), max(map(_PUBLISHED, rows))
        if self.first_published is None or first < self.first_published:
            self.first_published = first
        if self.last_published is None or last > self.last_published:
            self.last_published = last

    @property
    def authors(self) -> int | None:
        return None if self._authors is None else len(self._authors)

    def stats(self, *, authors: int | None = None) -> dict[str, Any]:
        """The stats() dict (authors: the SQL count, when this tally gave up counting them)."""
        return {"records": self.records, "authors": self.authors if authors is None else authors,
                "first_published": self.first_published, "last_published": self.last_published,
                # Most used first, then by code; licences by id (as stats() orders them).
                "languages": dict(sorted(self.languages.items(), key=lambda kv: (-kv[1], kv[0]))),
                "licenses": dict(sorted(self.licenses.items()))}


_ACTOR, _LANGUAGE, _PUBLISHED = (itemgetter(corpus_store.PRESENT_COLUMNS.index(name))
                                 for name in ("actor_id", "language", "published_at"))


class RecordStream:
    """Builds records from store.corpus.present_record_rows batches: per-author facts, consent
    events and mentioned accounts come from memos, mentions and hashtags from one range query per
    batch. Gives the same records as enrich (the changes feed's path; tests compare the two)."""

    def __init__(self, secret: bytes, *, scrub_handles: set[str] | None = None,
                 tally: CorpusTally | None = None) -> None:
        self._secret, self._scrub, self._tally = secret, scrub_handles, tally
        self._names = AuthorPseudonyms(secret)
        self._authors = _Memo(corpus_store.record_authors, lambda row: author_parts(self._names, *row[1:]))
        self._events = _Memo(corpus_store.consent_events_by_id, lambda row: (row[1], row[2]))
        self._mentioned = _Memo(corpus_store.actor_uris, lambda row: row[1])

    async def build(self, conn: aiosqlite.Connection, after_post_id: int, rows: Sequence[Sequence[Any]]
                    ) -> list[dict[str, Any]]:
        """Records for rows, the present records after after_post_id up to the last row's post."""
        mentioned: dict[int, list[int]] = {}
        tags: dict[int, list[str]] = {}
        for post_id, actor_id, tag in await corpus_store.mentions_and_tags_between(conn, after_post_id, rows[-1][0]):
            if tag is None:
                mentioned.setdefault(post_id, []).append(actor_id)
            else:
                tags.setdefault(post_id, []).append(tag)
        mentions = await self._mentions(conn, mentioned)
        authors = await self._authors.load(conn, {row[3] for row in rows})
        events = await self._events.load(conn, {row[2] for row in rows if row[2] is not None})
        if self._tally is not None:
            self._tally.add(rows, authors)
        return build_records(rows, self._secret, authors=authors, events=events, mentions=mentions, tags=tags,
                             scrub_handles=self._scrub)

    async def _mentions(self, conn: aiosqlite.Connection, mentioned: dict[int, list[int]]) -> dict[int, list[str]]:
        if not mentioned:
            return {}
        uris = await self._mentioned.load(conn, {actor_id for ids in mentioned.values() for actor_id in ids})
        # In URL order (byte order of UTF-8 is code point order, as SQL's ORDER BY a.uri had it).
        return {post_id: [self._names(uri) for uri in sorted(uris[i] for i in ids if i in uris)]
                for post_id, ids in mentioned.items()}


async def iter_records(conn: aiosqlite.Connection, secret: bytes, *, max_seq: int | None = None,
                       batch: int = 1000, scrub_handles: set[str] | None = None, tally: CorpusTally | None = None
                       ) -> AsyncIterator[list[dict[str, Any]]]:
    """Every present record in post order, in batches (never the corpus at once). With max_seq,
    only records whose last change is at or before that cursor. tally: counts what it streams."""
    stream = RecordStream(secret, scrub_handles=scrub_handles, tally=tally)
    after = 0
    while True:
        rows = await corpus_store.present_record_rows(conn, after_post_id=after, limit=batch, max_seq=max_seq)
        if not rows:
            return
        yield await stream.build(conn, after, rows)
        after = rows[-1][0]
