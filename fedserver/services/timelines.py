"""What a person sees: the home, local and hashtag timelines, profiles, threads and notifications,
each as post cards that carry only what this viewer may see and do."""
from __future__ import annotations

from dataclasses import dataclass, field

from fedserver.context import Context
from fedserver.corpus.terms import TRAIN_AI
from fedserver.services import audience, consent
from fedserver.store import actors as actor_store
from fedserver.store import interactions as interaction_store
from fedserver.store import follows as follow_store
from fedserver.store import posts as post_store
from fedserver.store import timelines as timeline_store
from fedserver.store.actors import Actor
from fedserver.store.posts import Post

PAGE_SIZE = 20
MAX_ANCESTORS = 40
MAX_DESCENDANTS = 200


@dataclass
class PostCard:
    """A post as one viewer sees it."""
    post: Post
    author: Actor
    sort_id: int
    boosted_by: Actor | None = None
    likes: int = 0
    boosts: int = 0
    liked: bool = False
    boosted: bool = False
    own: bool = False
    # The author consented to training, so "keep this post out of the corpus" means something.
    may_exclude: bool = False

    @property
    def can_boost(self) -> bool:
        return self.post.visibility in ("public", "unlisted")


@dataclass
class Page:
    """One page of a list; next_max_id is set when older items may follow."""
    cards: list[PostCard]
    next_max_id: int | None


@dataclass
class Notification:
    id: int
    kind: str
    created_at: str
    from_actor: Actor
    card: PostCard | None


@dataclass
class NotificationPage:
    items: list[Notification]
    next_max_id: int | None


@dataclass
class Thread:
    ancestors: list[PostCard]
    focus: PostCard
    descendants: list[PostCard] = field(default_factory=list)


async def training_allowed(ctx: Context, actor: Actor) -> bool:
    """Whether the person's current training choice is `allow` (the per-post opt-out then applies)."""
    return (await consent.get_state(ctx, actor.id, TRAIN_AI)).choice == "allow"


async def cards_for(ctx: Context, viewer: Actor | None, entries: list[tuple[int, Post, Actor | None]]
                    ) -> list[PostCard]:
    """Cards for (sort_id, post, booster) entries, with authors, counts and the viewer's own marks
    fetched in a handful of queries for the whole page."""
    reader = ctx.db.reader
    post_ids = list({post.id for _, post, _ in entries})
    authors = await timeline_store.actors_by_ids(reader, list({post.actor_id for _, post, _ in entries}))
    likes = await timeline_store.like_counts(reader, post_ids)
    boosts = await timeline_store.announce_counts(reader, post_ids)
    liked = await timeline_store.liked_among(reader, viewer.id, post_ids) if viewer else set()
    boosted = await timeline_store.boosted_among(reader, viewer.id, post_ids) if viewer else set()
    viewer_consented = viewer is not None and await training_allowed(ctx, viewer)
    cards = []
    for sort_id, post, booster in entries:
        author = authors.get(post.actor_id)
        if author is None:
            continue
        own = viewer is not None and post.actor_id == viewer.id
        cards.append(PostCard(post=post, author=author, sort_id=sort_id, boosted_by=booster,
                              likes=likes.get(post.id, 0), boosts=boosts.get(post.id, 0),
                              liked=post.id in liked, boosted=post.id in boosted, own=own,
                              may_exclude=own and bool(post.is_local) and viewer_consented))
    return cards


async def _page_of_posts(ctx: Context, viewer: Actor | None, posts: list[Post], limit: int) -> Page:
    cards = await cards_for(ctx, viewer, [(p.id, p, None) for p in posts])
    return Page(cards, posts[-1].id if len(posts) == limit else None)


async def home(ctx: Context, viewer: Actor, *, max_id: int | None = None, limit: int = PAGE_SIZE) -> Page:
    entries = await timeline_store.home_entries(ctx.db.reader, viewer.id, max_id=max_id, limit=limit)
    posts = await timeline_store.posts_by_ids(ctx.db.reader, [e.post_id for e in entries])
    boosters = await timeline_store.actors_by_ids(ctx.db.reader, list({e.boosted_by_id for e in entries
                                                                         if e.boosted_by_id is not None}))
    shown: set[int] = set()
    chosen: list[tuple[int, Post, Actor | None]] = []
    for entry in entries:
        post = posts.get(entry.post_id)
        # A post appears once per page: the newest of its own line and its boosts.
        if post is None or post.id in shown:
            continue
        shown.add(post.id)
        chosen.append((entry.sort_id, post, boosters.get(entry.boosted_by_id) if entry.boosted_by_id else None))
    cards = await cards_for(ctx, viewer, chosen)
    return Page(cards, entries[-1].sort_id if len(entries) == limit else None)


async def local(ctx: Context, viewer: Actor | None, *, max_id: int | None = None, limit: int = PAGE_SIZE) -> Page:
    posts = await timeline_store.local_public_posts(ctx.db.reader, max_id=max_id, limit=limit)
    return await _page_of_posts(ctx, viewer, posts, limit)


async def tagged(ctx: Context, tag: str, viewer: Actor | None, *, max_id: int | None = None,
                 limit: int = PAGE_SIZE) -> Page:
    """Public posts with the hashtag; signed-out visitors see only this server's posts (we do not
    republish other servers' posts to the open web)."""
    posts = await timeline_store.tagged_public_posts(ctx.db.reader, tag, include_remote=viewer is not None,
                                                     max_id=max_id, limit=limit)
    return await _page_of_posts(ctx, viewer, posts, limit)


async def relationship(ctx: Context, viewer: Actor | None, target: Actor) -> str:
    """self | following | requested | none: what the follow button should offer."""
    if viewer is None:
        return "none"
    if viewer.id == target.id:
        return "self"
    follow = await follow_store.get_follow(ctx.db.reader, viewer.id, target.id)
    if follow is None:
        return "none"
    return "following" if follow.state == "accepted" else "requested"


def profile_visibilities(relation: str) -> tuple[str, ...]:
    """Public and unlisted posts for everyone; followers-only ones for followers and the author."""
    if relation in ("self", "following"):
        return ("public", "unlisted", "followers")
    return ("public", "unlisted")


@dataclass
class ProfileCounts:
    posts: int
    followers: int
    following: int


async def profile_counts(ctx: Context, actor: Actor, visibilities: tuple[str, ...]) -> ProfileCounts:
    reader = ctx.db.reader
    return ProfileCounts(posts=await post_store.count_actor_posts(reader, actor.id, visibilities),
                         followers=await follow_store.count_followers(reader, actor.id),
                         following=await follow_store.count_following(reader, actor.id))


async def profile_posts(ctx: Context, actor: Actor, viewer: Actor | None, visibilities: tuple[str, ...], *,
                        max_id: int | None = None, limit: int = PAGE_SIZE) -> Page:
    posts = await post_store.list_actor_posts(ctx.db.reader, actor.id, visibilities=visibilities, max_id=max_id,
                                              limit=limit)
    return await _page_of_posts(ctx, viewer, posts, limit)


async def _visible(ctx: Context, posts: list[Post], viewer: Actor | None) -> list[Post]:
    return [post for post in posts if await audience.may_see(ctx, post, viewer)]


async def thread(ctx: Context, post: Post, viewer: Actor | None) -> Thread:
    """The post with the ancestors we hold (oldest first) and the replies we hold (depth first),
    each only if the viewer may see it. Nothing is fetched from other servers here."""
    reader = ctx.db.reader
    ancestors: list[Post] = []
    parent_uri = post.in_reply_to_uri
    while parent_uri and len(ancestors) < MAX_ANCESTORS:
        parent = await post_store.get_post_by_uri(reader, parent_uri)
        if parent is None or parent.id in (a.id for a in ancestors):
            break
        ancestors.insert(0, parent)
        parent_uri = parent.in_reply_to_uri
    descendants: list[Post] = []
    await _collect_replies(ctx, post, descendants, {post.id})
    visible_ancestors = await _visible(ctx, ancestors, viewer)
    visible_descendants = await _visible(ctx, descendants, viewer)
    everything = [*visible_ancestors, post, *visible_descendants]
    cards = await cards_for(ctx, viewer, [(p.id, p, None) for p in everything])
    by_id = {card.post.id: card for card in cards}
    return Thread(ancestors=[by_id[p.id] for p in visible_ancestors if p.id in by_id],
                  focus=by_id[post.id],
                  descendants=[by_id[p.id] for p in visible_descendants if p.id in by_id])


async def _collect_replies(ctx: Context, post: Post, out: list[Post], seen: set[int]) -> None:
    """Replies in reading order: each reply followed by its own replies."""
    for reply in await post_store.list_replies(ctx.db.reader, post.uri, limit=MAX_DESCENDANTS):
        if len(out) >= MAX_DESCENDANTS or reply.id in seen:
            continue
        seen.add(reply.id)
        out.append(reply)
        await _collect_replies(ctx, reply, out, seen)


async def card_of(ctx: Context, post: Post, viewer: Actor | None) -> PostCard:
    return (await cards_for(ctx, viewer, [(post.id, post, None)]))[0]


async def notifications(ctx: Context, viewer: Actor, *, max_id: int | None = None,
                        limit: int = PAGE_SIZE) -> NotificationPage:
    reader = ctx.db.reader
    rows = await timeline_store.notifications(reader, viewer.id, max_id=max_id, limit=limit)
    actors = await timeline_store.actors_by_ids(reader, list({row["from_actor_id"] for row in rows}))
    posts = await timeline_store.posts_by_ids(reader, list({row["post_id"] for row in rows if row["post_id"]}))
    visible = {post.id: post for post in await _visible(ctx, list(posts.values()), viewer)}
    cards = {card.post.id: card for card in await cards_for(ctx, viewer, [(p.id, p, None) for p in visible.values()])}
    items = []
    for row in rows:
        actor = actors.get(row["from_actor_id"])
        if actor is None:
            continue
        items.append(Notification(id=row["id"], kind=row["kind"], created_at=row["created_at"], from_actor=actor,
                                  card=cards.get(row["post_id"]) if row["post_id"] else None))
    return NotificationPage(items, rows[-1]["id"] if len(rows) == limit else None)



async def local_actor(ctx: Context, username: str) -> Actor | None:
    """A live local account's actor by username (None for unknown, deleted, suspended or the
    instance actor)."""
    actor = await actor_store.get_local_actor(ctx.db.reader, username)
    return actor if actor is not None and not actor.is_gone else None


async def actor_by_id(ctx: Context, actor_id: int) -> Actor | None:
    actor = await actor_store.get_actor(ctx.db.reader, actor_id)
    return actor if actor is not None and not actor.deleted_at else None


async def post_by_id(ctx: Context, post_id: int) -> Post | None:
    return await post_store.get_post(ctx.db.reader, post_id)


async def unread_notifications(ctx: Context, actor: Actor) -> int:
    return await interaction_store.count_unread_notifications(ctx.db.reader, actor.id)


async def mark_notifications_read(ctx: Context, actor: Actor) -> None:
    async with ctx.db.transaction() as tx:
        await interaction_store.mark_notifications_read(tx, actor.id, ctx.clock.now_iso())
