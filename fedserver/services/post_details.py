"""What the client API shows of a page of posts beyond their cards: mentions, hashtags, the post
each replies to (when we hold it and the viewer may see it), reply counts, and the authors' and
boosters' account views. Read for the whole page at once."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from fedserver.context import Context
from fedserver.services import audience, bookmarks, directory
from fedserver.services.directory import AccountView
from fedserver.services.timelines import PostCard
from fedserver.store import interactions as interaction_store
from fedserver.store import note_batches
from fedserver.store import posts as post_store
from fedserver.store.actors import Actor
from fedserver.store.posts import Post

# Replies counted per post, at most (the count is a display hint; Mastodon caps nothing, but an
# unbounded count would read every reply of a viral post for each page).
MAX_COUNTED_REPLIES = 100


@dataclass
class PostDetails:
    mentions: list[Actor] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    parent: Post | None = None
    replies: int = 0


@dataclass
class PageDetails:
    posts: dict[int, PostDetails]
    accounts: dict[int, AccountView]
    bookmarked: set[int] = field(default_factory=set)  # of the posts, those the viewer bookmarked


async def details_for(ctx: Context, cards: list[PostCard], viewer: Actor | None, *,
                      also_accounts: Sequence[Actor] = ()) -> PageDetails:
    """also_accounts: other accounts the page shows (a notification's sender)."""
    reader = ctx.db.reader
    post_ids = [card.post.id for card in cards]
    mentions = await note_batches.mentioned_actors(reader, post_ids)
    tags = await note_batches.tags(reader, post_ids)
    replies = await note_batches.live_replies(reader, [card.post.uri for card in cards], MAX_COUNTED_REPLIES)
    parents: dict[str, Post] = {}
    for uri in {card.post.in_reply_to_uri for card in cards if card.post.in_reply_to_uri is not None}:
        parent = await post_store.get_post_by_uri(reader, uri)
        if parent is not None:
            parents[uri] = parent
    visible_parents = {p.id for p in await audience.may_see_all(ctx, list(parents.values()), viewer)}
    details = {}
    for card in cards:
        parent = parents.get(card.post.in_reply_to_uri or "")
        details[card.post.id] = PostDetails(
            mentions=mentions.get(card.post.id, []), tags=tags.get(card.post.id, []),
            parent=parent if parent is not None and parent.id in visible_parents else None,
            replies=len(replies.get(card.post.uri, [])))
    shown = [a for card in cards for a in (card.author, card.boosted_by) if a is not None] + list(also_accounts)
    accounts: dict[int, AccountView] = await directory.account_views(ctx, shown, viewer)
    marked = await bookmarks.bookmarked_ids(ctx, viewer, post_ids) if viewer is not None else set()
    return PageDetails(posts=details, accounts=accounts, bookmarked=marked)


async def boost_id(ctx: Context, actor: Actor, post: Post) -> int | None:
    """The id of the actor's boost of the post (a time-ordered id), if they boosted it."""
    found = await interaction_store.get_announce(ctx.db.reader, actor.id, post.id)
    return found.id if found is not None else None


async def filter_posts(ctx: Context, cards: list[PostCard], *, exclude_replies: bool, only_media: bool,
                       tagged: str | None) -> list[PostCard]:
    """A profile's filters (Mastodon's account statuses): without replies to others (replies in
    one's own thread stay), only with media, only with a hashtag."""
    if only_media:
        cards = [card for card in cards if card.attachments]
    if tagged:
        tags = await note_batches.tags(ctx.db.reader, [card.post.id for card in cards])
        cards = [card for card in cards if tagged.lower() in tags.get(card.post.id, [])]
    if exclude_replies:
        kept = []
        for card in cards:
            uri = card.post.in_reply_to_uri
            parent = await post_store.get_post_by_uri(ctx.db.reader, uri) if uri else None
            if uri is None or (parent is not None and parent.actor_id == card.post.actor_id):
                kept.append(card)
        cards = kept
    return cards


async def earlier_versions(ctx: Context, post: Post) -> list[dict]:
    """The post's earlier versions, oldest first: content_html, summary, sensitive and revised_at
    (when that version was written)."""
    return await post_store.list_revisions(ctx.db.reader, post.id)
