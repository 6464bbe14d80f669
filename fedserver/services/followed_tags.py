"""Followed hashtags: public posts we hold with a hashtag a person follows appear on their home
timeline (the query is in store.timelines.home_entries). For the tag page's Follow button and
/api/v1/followed_tags, /api/v1/tags/:name/follow; and how much a tag is used (Tag.history)."""
from __future__ import annotations

import re
from dataclasses import dataclass

from fedserver.context import Context
from fedserver.store import followed_tags as tag_store
from fedserver.store import tag_usage
from fedserver.store.actors import Actor

TAG_RE = re.compile(r"^\w{1,100}$")
MAX_FOLLOWED = 1000


class TagError(ValueError):
    """Not a hashtag that can be followed (clear message for the person)."""


def normalized(tag: str) -> str:
    """The tag as posts store it (post_tags.tag): without '#', lower case."""
    name = tag.strip().removeprefix("#").lower()
    if not TAG_RE.match(name):
        raise TagError("a hashtag is letters, digits and underscores, at most 100")
    return name


async def follow_tag(ctx: Context, actor: Actor, tag: str) -> str:
    name = normalized(tag)
    async with ctx.db.transaction() as tx:
        if (not await tag_store.follows_tag(tx, actor.id, name)
                and await tag_store.count_followed(tx, actor.id) >= MAX_FOLLOWED):
            raise TagError(f"you can follow at most {MAX_FOLLOWED} hashtags")
        await tag_store.follow_tag(tx, actor.id, name, ctx.clock.now_iso())
    return name


async def unfollow_tag(ctx: Context, actor: Actor, tag: str) -> str:
    name = normalized(tag)
    async with ctx.db.transaction() as tx:
        await tag_store.unfollow_tag(tx, actor.id, name)
    return name


async def is_following(ctx: Context, actor: Actor, tag: str) -> bool:
    return await tag_store.follows_tag(ctx.db.reader, actor.id, normalized(tag))


async def followed(ctx: Context, actor: Actor) -> list[str]:
    return await tag_store.followed_tags(ctx.db.reader, actor.id)


@dataclass(frozen=True)
class DayUse:
    """One day of a hashtag's use (Mastodon's Tag.history entry)."""
    day_start: int  # unix seconds of the day's start (UTC)
    uses: int
    accounts: int


HISTORY_DAYS = 7


async def history(ctx: Context, tags: list[str]) -> dict[str, list[DayUse]]:
    """Each tag's last HISTORY_DAYS days (today first), days without posts as zeros, as Mastodon
    shows a tag's history: posts we hold that anyone may see, and how many accounts wrote them."""
    today = int(ctx.clock.now() // 86400)
    first_day = today - HISTORY_DAYS + 1
    counted = await tag_usage.daily_uses(ctx.db.reader, tags, first_day=first_day)
    return {tag: [DayUse(day * 86400, *counted.get(tag, {}).get(day, (0, 0)))
                  for day in range(today, first_day - 1, -1)] for tag in tags}
