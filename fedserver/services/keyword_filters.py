"""Keyword filters (Mastodon's filters v2): a person's titled sets of keywords that hide posts, or
show them collapsed behind "Filtered: <title>", in the contexts they chose (home and lists,
notifications, public timelines, threads, profiles) until an optional expiry; a filter may also
name single posts (Mastodon's filter statuses, set through the client API). Applied by the
timeline services, so the web pages and the client API filter alike."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from fedserver.clock import iso_from_epoch, time_ordered_id
from fedserver.context import Context
from fedserver.services import events
from fedserver.store import keyword_filters as filter_store
from fedserver.store.actors import Actor
from fedserver.store.keyword_filters import FilterStatus, Keyword, KeywordFilter

CONTEXTS = ("home", "notifications", "public", "thread", "account")
ACTIONS = ("warn", "hide")
MAX_TITLE = 100
MAX_KEYWORD = 100
MAX_KEYWORDS = 50
MAX_FILTERS = 100
MAX_FILTER_STATUSES = 1000
# Longest expiry offered: a year (Mastodon's client offers up to a week; the API takes any).
MAX_EXPIRY_SECONDS = 366 * 86400


class FilterError(Exception):
    """The filter is not valid (clear message for the person)."""


class FilterNotFound(FilterError):
    """No filter with that id belongs to this person."""


@dataclass
class FilterResult:
    """What the viewer's filters say about one post in one context."""
    hidden_by: tuple[KeywordFilter, ...]  # the "hide" filters that matched
    warned_by: tuple[KeywordFilter, ...]  # the "warn" filters that matched

    @property
    def hidden(self) -> bool:
        return bool(self.hidden_by)


def keyword_pattern(keywords: list[Keyword]) -> re.Pattern[str] | None:
    """One case-insensitive pattern for a filter's keywords. A whole-word keyword needs a word
    boundary only on a side where it starts or ends with a word character, as Mastodon does
    (so "#tag" or "c++" still match)."""
    parts = []
    for kw in keywords:
        text = re.escape(kw.keyword)
        if kw.whole_word:
            start = r"(?<!\w)" if re.match(r"\w", kw.keyword) else ""
            end = r"(?!\w)" if re.search(r"\w$", kw.keyword) else ""
            text = f"{start}{text}{end}"
        parts.append(text)
    return re.compile("|".join(parts), re.IGNORECASE) if parts else None


def _checked(title: str, contexts: list[str], action: str, keywords: list[tuple[str, bool]],
             expires_in: int | None, require_keywords: bool) -> tuple[str, tuple[str, ...], list[Keyword]]:
    title = " ".join(title.split())
    if not title:
        raise FilterError("give the filter a title")
    if len(title) > MAX_TITLE:
        raise FilterError(f"a filter title may have at most {MAX_TITLE} characters")
    chosen = tuple(c for c in CONTEXTS if c in contexts)
    if not chosen or len(set(contexts)) != len(chosen):
        raise FilterError("choose where the filter applies: home, notifications, public, thread or account")
    if action not in ACTIONS:
        raise FilterError("choose whether to hide the posts or show them with a warning")
    cleaned = []
    for word, whole in keywords:
        word = word.strip()
        if not word:
            continue
        if len(word) > MAX_KEYWORD:
            raise FilterError(f"a keyword may have at most {MAX_KEYWORD} characters")
        cleaned.append(Keyword(word, whole))
    if not cleaned and require_keywords:
        raise FilterError("give the filter at least one keyword")
    if len(cleaned) > MAX_KEYWORDS:
        raise FilterError(f"a filter may have at most {MAX_KEYWORDS} keywords")
    if expires_in is not None and not (0 < expires_in <= MAX_EXPIRY_SECONDS):
        raise FilterError("the expiry must be in the future and at most a year away")
    return title, chosen, cleaned


async def save_filter(ctx: Context, owner: Actor, *, title: str, contexts: list[str], action: str,
                      keywords: list[tuple[str, bool]], expires_in: int | None = None,
                      filter_id: int | None = None, require_keywords: bool = True) -> KeywordFilter:
    """Create a filter (filter_id None) or replace an existing one's settings and keywords.
    expires_in: seconds from now, or None for never. require_keywords=False: a filter of single
    posts only (the client API, as Mastodon's, allows one without keywords)."""
    title, chosen, cleaned = _checked(title, contexts, action, keywords, expires_in, require_keywords)
    now = ctx.clock.now()
    expires_at = iso_from_epoch(now + timedelta(seconds=expires_in).total_seconds()) if expires_in else None
    new = filter_id is None
    async with ctx.db.transaction() as tx:
        if new:
            if await filter_store.count_filters(tx, owner.id) >= MAX_FILTERS:
                raise FilterError(f"you can have at most {MAX_FILTERS} filters")
            filter_id = time_ordered_id(now)
        elif await filter_store.get_filter(tx, owner.id, filter_id) is None:  # type: ignore[arg-type]
            raise FilterNotFound("there is no such filter")
        assert filter_id is not None
        await filter_store.save_filter(tx, filter_id=filter_id, owner_id=owner.id, title=title, contexts=chosen,
                                       action=action, expires_at=expires_at, keywords=cleaned,
                                       now=ctx.clock.now_iso(), new=new)
        saved = await filter_store.get_filter(tx, owner.id, filter_id)
        await events.filters_changed(ctx, tx, owner.id)
    assert saved is not None
    return saved


async def get_filter(ctx: Context, owner: Actor, filter_id: int) -> KeywordFilter:
    found = await filter_store.get_filter(ctx.db.reader, owner.id, filter_id)
    if found is None:
        raise FilterNotFound("there is no such filter")
    return found


async def filters_of(ctx: Context, owner: Actor) -> list[KeywordFilter]:
    """All the person's filters, expired ones included (they can be renewed)."""
    return await filter_store.filters_of(ctx.db.reader, owner.id)


async def delete_filter(ctx: Context, owner: Actor, filter_id: int) -> None:
    async with ctx.db.transaction() as tx:
        if await filter_store.get_filter(tx, owner.id, filter_id) is None:
            raise FilterNotFound("there is no such filter")
        await filter_store.delete_filter(tx, owner.id, filter_id)
        await events.filters_changed(ctx, tx, owner.id)


async def add_filter_status(ctx: Context, owner: Actor, filter_id: int, post_id: int) -> FilterStatus:
    """Make one of the person's filters apply to a post (one they may see: the caller checks)."""
    async with ctx.db.transaction() as tx:
        if await filter_store.get_filter(tx, owner.id, filter_id) is None:
            raise FilterNotFound("there is no such filter")
        if await filter_store.count_statuses(tx, filter_id) >= MAX_FILTER_STATUSES:
            raise FilterError(f"a filter may name at most {MAX_FILTER_STATUSES} posts")
        status_id = time_ordered_id(ctx.clock.now())
        if not await filter_store.add_status(tx, status_id=status_id, filter_id=filter_id, post_id=post_id,
                                             now=ctx.clock.now_iso()):
            raise FilterError("this post is in the filter already")
    return FilterStatus(status_id, filter_id, post_id)


async def get_filter_status(ctx: Context, owner: Actor, status_id: int) -> FilterStatus:
    found = await filter_store.get_status(ctx.db.reader, owner.id, status_id)
    if found is None:
        raise FilterNotFound("there is no such filtered post")
    return found


async def remove_filter_status(ctx: Context, owner: Actor, status_id: int) -> None:
    async with ctx.db.transaction() as tx:
        if await filter_store.get_status(tx, owner.id, status_id) is None:
            raise FilterNotFound("there is no such filtered post")
        await filter_store.delete_status(tx, status_id)


class Matcher:
    """The viewer's live filters for one context, compiled once per page."""

    def __init__(self, filters: list[KeywordFilter]) -> None:
        self._compiled = [(f, keyword_pattern(f.keywords), frozenset(s.post_id for s in f.statuses))
                          for f in filters if f.keywords or f.statuses]

    def __bool__(self) -> bool:
        return bool(self._compiled)

    def check(self, text: str, post_id: int | None = None) -> FilterResult:
        """The filters whose keywords the text matches, or that name the post itself."""
        matched = [f for f, pattern, posts in self._compiled
                   if post_id in posts or (pattern is not None and pattern.search(text))]
        return FilterResult(hidden_by=tuple(f for f in matched if f.action == "hide"),
                            warned_by=tuple(f for f in matched if f.action != "hide"))


async def matcher(ctx: Context, viewer: Actor | None, context: str) -> Matcher:
    if viewer is None:
        return Matcher([])
    live = await filter_store.filters_of(ctx.db.reader, viewer.id, live_at=ctx.clock.now_iso())
    return Matcher([f for f in live if context in f.contexts])
