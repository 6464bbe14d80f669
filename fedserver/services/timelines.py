"""What a person sees: the home, local and hashtag timelines, profiles, threads and notifications,
each as post cards that carry only what this viewer may see and do."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TypeVar

from fedserver.activitypub.normalize import host_of
from fedserver.context import Context
from fedserver.corpus.terms import TRAIN_AI
from fedserver.services import audience, consent, keyword_filters
from fedserver.services import polls as polls_service
from fedserver.services import media_cache
from fedserver.store import actors as actor_store
from fedserver.store import attachments as attachment_store
from fedserver.store import bookmarks as bookmark_store
from fedserver.store import hosts as host_store
from fedserver.store import pins as pin_store
from fedserver.store import interactions as interaction_store
from fedserver.store import follows as follow_store
from fedserver.store import note_batches
from fedserver.store import polls as poll_store
from fedserver.store import posts as post_store
from fedserver.store import timelines as timeline_store
from fedserver.store.actors import Actor
from fedserver.store.attachments import Attachment
from fedserver.store.polls import Poll
from fedserver.store.posts import Post

T = TypeVar("T")

PAGE_SIZE = 20
MAX_ANCESTORS = 40
MAX_DESCENDANTS = 200
# Threads with up to this many replies are read in one query (bench/pages.py: a thread page).
THREAD_READ_AT_ONCE = 800


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
    attachments: list[Attachment] = field(default_factory=list)
    poll: Poll | None = None
    # The viewer's own vote in the poll (option positions), and whether votes are still taken.
    my_votes: tuple[int, ...] = ()
    poll_open: bool = False
    # The viewer bookmarked it; its author pinned it (issue 16: bookmarks, pinned posts).
    bookmarked: bool = False
    pinned: bool = False
    # Who wrote the post this one answers, when we hold it ("In reply to @name").
    reply_to_author: Actor | None = None
    # The viewer's keyword filters this post matched that let it show, folded behind their titles:
    # "warn" ones (and "hide" ones for a post opened by its address). The API's Status.filtered.
    filtered: tuple[keyword_filters.KeywordFilter, ...] = ()
    # Custom emoji of a remote post: shortcode -> its picture's address on this server.
    emojis: dict[str, str] = field(default_factory=dict)

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
    # The stored group (likes or boosts of one post, follows, within 12 hours); None: a group of one.
    group_key: str | None = None


@dataclass
class NotificationPage:
    items: list[Notification]
    next_max_id: int | None


@dataclass
class Thread:
    ancestors: list[PostCard]
    focus: PostCard
    descendants: list[PostCard] = field(default_factory=list)


class TrainingChoices:
    """People's training choices, each read at most once while one page is built: a thread page
    asks about its author for the cards, the compose form and the crawler signals. Made per request
    and dropped with it, so a changed choice shows on the next page."""

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._states: dict[int, consent.ConsentState] = {}

    async def state(self, actor_id: int) -> consent.ConsentState:
        state = self._states.get(actor_id)
        if state is None:
            state = self._states[actor_id] = await consent.get_state(self._ctx, actor_id, TRAIN_AI)
        return state

    async def allowed(self, actor: Actor) -> bool:
        """Whether the person's current training choice is `allow` (the per-post opt-out then applies)."""
        return (await self.state(actor.id)).choice == "allow"


async def training_allowed(ctx: Context, actor: Actor, choices: TrainingChoices | None = None) -> bool:
    """Whether the person's current training choice is `allow` (the per-post opt-out then applies)."""
    return await (choices or TrainingChoices(ctx)).allowed(actor)


async def cards_for(ctx: Context, viewer: Actor | None, entries: list[tuple[int, Post, Actor | None]], *,
                    actors: dict[int, Actor] | None = None, choices: TrainingChoices | None = None,
                    shown_anyway: frozenset[int] = frozenset()) -> list[PostCard]:
    """Cards for (sort_id, post, booster) entries, with authors, counts and the viewer's own marks
    fetched in a handful of queries for the whole page (authors from `actors` when the caller has
    already read them; the viewer's training choice from `choices`, and only when the page shows
    one of the viewer's own posts). Posts by, and boosts by, accounts the viewer blocked or muted
    are left out, except the posts in shown_anyway (one the viewer opened by its address); so are
    those an admin's moderation hides (_moderated)."""
    reader = ctx.db.reader
    hidden = await follow_store.hidden_ids(reader, viewer.id) if viewer is not None else set()
    if hidden:
        entries = [(sort_id, post, booster) for sort_id, post, booster in entries
                   if post.id in shown_anyway or (post.actor_id not in hidden
                                                  and (booster is None or booster.id not in hidden))]
    authors = actors if actors is not None else await timeline_store.actors_by_ids(
        reader, list({post.actor_id for _, post, _ in entries}))
    entries = await _moderated(ctx, viewer, entries, authors, shown_anyway)
    post_ids = list({post.id for _, post, _ in entries})
    question_ids = list({post.id for _, post, _ in entries if post.object_type == "Question"})
    parent_uris = [post.in_reply_to_uri for _, post, _ in entries if post.in_reply_to_uri]
    # The page's reads at once: queued together, the reader's thread runs them back to back (on
    # PostgreSQL, pooled connections run them side by side) instead of one wake-up of this loop
    # per read. Only Questions have polls: most pages need no read for them.
    counts, media, emojis, polls, bookmarked, pinned, parents = await asyncio.gather(
        note_batches.interaction_counts(reader, post_ids, viewer.id if viewer else None),
        attachment_store.attachments_for(reader, post_ids),
        media_cache.emoji_sources(ctx, [post.id for _, post, _ in entries if not post.is_local]),
        poll_store.polls_for(reader, question_ids),
        bookmark_store.bookmarked_among(reader, viewer.id, post_ids) if viewer is not None else _nothing(set()),
        pin_store.pinned_among(reader, post_ids),
        note_batches.reply_parent_authors(reader, parent_uris) if parent_uris else _nothing({}))
    my_votes = await poll_store.votes_of(reader, viewer.id, list(polls)) if viewer is not None and polls else {}
    now = ctx.clock.now()
    viewer_consented = False
    if viewer is not None and any(post.actor_id == viewer.id and post.is_local for _, post, _ in entries):
        viewer_consented = await training_allowed(ctx, viewer, choices)
    cards = []
    for sort_id, post, booster in entries:
        author = authors.get(post.actor_id)
        if author is None:
            continue
        own = viewer is not None and post.actor_id == viewer.id
        likes, boosts, liked, boosted = counts.get(post.id, (0, 0, False, False))
        cards.append(PostCard(post=post, author=author, sort_id=sort_id, boosted_by=booster,
                              likes=likes, boosts=boosts, liked=liked, boosted=boosted, own=own,
                              may_exclude=own and bool(post.is_local) and viewer_consented,
                              attachments=media.get(post.id, []), poll=polls.get(post.id),
                              my_votes=my_votes.get(post.id, ()),
                              poll_open=post.id in polls and polls_service.is_open(polls[post.id], now),
                              bookmarked=post.id in bookmarked, pinned=post.id in pinned,
                              reply_to_author=parents.get(post.in_reply_to_uri or ""),
                              emojis=emojis.get(post.id, {})))
    return cards


async def _moderated(ctx: Context, viewer: Actor | None, entries: list[tuple[int, Post, Actor | None]],
                     authors: dict[int, Actor], shown_anyway: frozenset[int]) -> list[tuple[int, Post, Actor | None]]:
    """The entries an admin's moderation leaves: nothing by or boosted by a suspended account; posts
    and boosts of silenced accounts only for the people here who follow them (and a post of one
    that the viewer opened by its address)."""
    def gone(actor: Actor | None) -> bool:
        return actor is not None and actor.is_gone

    entries = [(sort_id, post, booster) for sort_id, post, booster in entries
               if not gone(authors.get(post.actor_id)) and not gone(booster)]
    involved = [*(authors.get(post.actor_id) for _, post, _ in entries), *(booster for _, _, booster in entries)]
    silenced = {a.id for a in involved if a is not None and a.silenced_at and (viewer is None or a.id != viewer.id)}
    if not silenced:
        return entries
    if viewer is not None:
        silenced -= await note_batches.followed_among(ctx.db.reader, viewer.id, list(silenced))
    return [(sort_id, post, booster) for sort_id, post, booster in entries
            if (post.id in shown_anyway or post.actor_id not in silenced)
            and (booster is None or booster.id not in silenced)]


async def _nothing(value: T) -> T:
    return value


def _filter_text(card: PostCard) -> str:
    """What keyword filters look at: the text, the content warning, poll choices and media
    descriptions (as Mastodon does)."""
    parts = [card.post.content_text or "", card.post.summary or ""]
    if card.poll is not None:
        parts += [choice.name for choice in card.poll.choices]
    parts += [item.description or "" for item in card.attachments]
    return "\n".join(parts)


async def apply_filters(ctx: Context, viewer: Actor | None, cards: list[PostCard], context: str, *,
                        keep: frozenset[int] = frozenset()) -> list[PostCard]:
    """The cards the viewer's keyword filters for this context leave: "hide" matches go (except
    the posts in keep: one opened by its address shows, collapsed), "warn" matches are marked with
    the filters' titles. The viewer's own posts are never filtered."""
    matcher = await keyword_filters.matcher(ctx, viewer, context)
    if not matcher:
        return cards
    kept = []
    for card in cards:
        if not card.own:
            result = matcher.check(_filter_text(card), card.post.id)
            if result.hidden and card.post.id not in keep:
                continue
            card.filtered = result.warned_by + result.hidden_by
        kept.append(card)
    return kept


async def _page_of_posts(ctx: Context, viewer: Actor | None, posts: list[Post], limit: int,
                         choices: TrainingChoices | None, context: str) -> Page:
    cards = await cards_for(ctx, viewer, [(p.id, p, None) for p in posts], choices=choices)
    cards = await apply_filters(ctx, viewer, cards, context)
    return Page(cards, posts[-1].id if len(posts) == limit else None)


async def home(ctx: Context, viewer: Actor, *, max_id: int | None = None, limit: int = PAGE_SIZE,
               choices: TrainingChoices | None = None) -> Page:
    entries = await timeline_store.home_entries(ctx.db.reader, viewer.id, max_id=max_id, limit=limit)
    return await page_of_entries(ctx, viewer, entries, limit, "home", choices=choices)


async def page_of_entries(ctx: Context, viewer: Actor, entries: list[timeline_store.TimelineEntry], limit: int,
                          context: str, *, choices: TrainingChoices | None = None) -> Page:
    """A page of feed entries (posts and boosts: home, a list) as cards, filtered for the context."""
    posts = await timeline_store.posts_by_ids(ctx.db.reader, [e.post_id for e in entries])
    # Authors and boosters in one read.
    boosters = {e.boosted_by_id for e in entries if e.boosted_by_id is not None}
    actors = await timeline_store.actors_by_ids(ctx.db.reader, list({p.actor_id for p in posts.values()} | boosters))
    shown: set[int] = set()
    chosen: list[tuple[int, Post, Actor | None]] = []
    for entry in entries:
        post = posts.get(entry.post_id)
        # A post appears once per page: the newest of its own line and its boosts.
        if post is None or post.id in shown:
            continue
        shown.add(post.id)
        chosen.append((entry.sort_id, post, actors.get(entry.boosted_by_id) if entry.boosted_by_id else None))
    cards = await cards_for(ctx, viewer, chosen, actors=actors, choices=choices)
    cards = await apply_filters(ctx, viewer, cards, context)
    return Page(cards, entries[-1].sort_id if len(entries) == limit else None)


async def local(ctx: Context, viewer: Actor | None, *, max_id: int | None = None, limit: int = PAGE_SIZE,
                choices: TrainingChoices | None = None) -> Page:
    posts = await timeline_store.local_public_posts(ctx.db.reader, max_id=max_id, limit=limit)
    return await _page_of_posts(ctx, viewer, posts, limit, choices, "public")


async def federated(ctx: Context, viewer: Actor, *, max_id: int | None = None, limit: int = PAGE_SIZE,
                    choices: TrainingChoices | None = None) -> Page:
    """Public posts from other servers known here (signed-in people only: we do not republish them
    to the open web), none by silenced or suspended accounts nor from blocked domains; the viewer's
    blocks and mutes apply (cards_for). A page whose rows a domain block thins is topped up from
    older rows, a few reads at most."""
    kept: list[Post] = []
    before, more = max_id, True
    for _ in range(5):
        posts = await timeline_store.remote_public_posts(ctx.db.reader, max_id=before, limit=limit)
        more = len(posts) == limit
        blocked = await host_store.blocked_among(ctx.db.reader, {h for h in map(_host, posts) if h})
        kept.extend(p for p in posts if _host(p) not in blocked)
        if posts:
            before = posts[-1].id
        if len(kept) >= limit or not more:
            break
    if len(kept) > limit:
        kept, before, more = kept[:limit], kept[limit - 1].id, True
    cards = await cards_for(ctx, viewer, [(p.id, p, None) for p in kept], choices=choices)
    cards = await apply_filters(ctx, viewer, cards, "public")
    return Page(cards, before if more else None)


def _host(post: Post) -> str | None:
    return host_of(post.uri)


async def tagged(ctx: Context, tag: str, viewer: Actor | None, *, max_id: int | None = None,
                 limit: int = PAGE_SIZE, choices: TrainingChoices | None = None) -> Page:
    """Public posts with the hashtag; signed-out visitors see only this server's posts (we do not
    republish other servers' posts to the open web)."""
    posts = await timeline_store.tagged_public_posts(ctx.db.reader, tag, include_remote=viewer is not None,
                                                     max_id=max_id, limit=limit)
    return await _page_of_posts(ctx, viewer, posts, limit, choices, "public")


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
    posts, followers, following = await timeline_store.profile_counts(ctx.db.reader, actor.id, visibilities)
    return ProfileCounts(posts=posts, followers=followers, following=following)


async def profile_posts(ctx: Context, actor: Actor, viewer: Actor | None, visibilities: tuple[str, ...], *,
                        max_id: int | None = None, limit: int = PAGE_SIZE,
                        choices: TrainingChoices | None = None) -> Page:
    posts = await post_store.list_actor_posts(ctx.db.reader, actor.id, visibilities=visibilities, max_id=max_id,
                                              limit=limit)
    return await _page_of_posts(ctx, viewer, posts, limit, choices, "account")


async def thread(ctx: Context, post: Post, viewer: Actor | None, *,
                 choices: TrainingChoices | None = None) -> Thread:
    """The post with the ancestors we hold (oldest first) and the replies we hold (depth first),
    each only if the viewer may see it. Nothing is fetched from other servers here."""
    ancestors: list[Post] = []
    if post.in_reply_to_uri:
        for parent in await note_batches.reply_chain(ctx.db.reader, post.in_reply_to_uri, MAX_ANCESTORS):
            if parent.id in (a.id for a in ancestors):
                break  # the chain loops back
            ancestors.insert(0, parent)
    descendants = await _descendants(ctx, post)
    visible = {p.id for p in await audience.may_see_all(ctx, [*ancestors, *descendants], viewer)}
    visible_ancestors = [p for p in ancestors if p.id in visible]
    visible_descendants = [p for p in descendants if p.id in visible]
    everything = [*visible_ancestors, post, *visible_descendants]
    cards = await cards_for(ctx, viewer, [(p.id, p, None) for p in everything], choices=choices,
                            shown_anyway=frozenset({post.id}))
    cards = await apply_filters(ctx, viewer, cards, "thread", keep=frozenset({post.id}))
    by_id = {card.post.id: card for card in cards}
    return Thread(ancestors=[by_id[p.id] for p in visible_ancestors if p.id in by_id],
                  focus=by_id[post.id],
                  descendants=[by_id[p.id] for p in visible_descendants if p.id in by_id])


async def _descendants(ctx: Context, post: Post) -> list[Post]:
    """Replies in reading order, each reply followed by its own replies, at most MAX_DESCENDANTS
    (and at most MAX_DESCENDANTS replies of any one post, the oldest)."""
    replies_of = await _reply_lists(ctx, post)
    out: list[Post] = []
    seen = {post.id}
    stack = [iter(replies_of.get(post.uri, []))]
    while stack:
        reply = next(stack[-1], None)
        if reply is None:
            stack.pop()
        elif len(out) < MAX_DESCENDANTS and reply.id not in seen:
            seen.add(reply.id)
            out.append(reply)
            stack.append(iter(replies_of.get(reply.uri, [])))
    return out


async def _reply_lists(ctx: Context, post: Post) -> dict[str, list[Post]]:
    """The live replies of each post below this one (by the replied-to uri, oldest first, at most
    MAX_DESCENDANTS each), as far as reading order can reach within MAX_DESCENDANTS posts. A thread
    of up to THREAD_READ_AT_ONCE replies is read in one query; a larger one one level per query,
    each level cut after its first MAX_DESCENDANTS posts in reading order (any later one has that
    many posts before it)."""
    tree = await note_batches.reply_tree(ctx.db.reader, post.uri, max_depth=MAX_DESCENDANTS,
                                         max_rows=THREAD_READ_AT_ONCE)
    replies_of: dict[str, list[Post]] = {}
    if tree is not None:
        for reply in {reply.id: reply for reply in tree}.values():  # a reply loop repeats posts
            replies_of.setdefault(reply.in_reply_to_uri or "", []).append(reply)
        return {uri: sorted(replies, key=lambda p: p.id)[:MAX_DESCENDANTS] for uri, replies in replies_of.items()}
    seen = {post.id}
    level = [post]
    while level:
        found = await note_batches.live_replies(ctx.db.reader, [p.uri for p in level], MAX_DESCENDANTS)
        replies_of.update(found)
        next_level: list[Post] = []
        for parent in level:
            for reply in found.get(parent.uri, []):
                if reply.id not in seen and len(next_level) < MAX_DESCENDANTS:
                    seen.add(reply.id)
                    next_level.append(reply)
        level = next_level
    return replies_of


async def card_of(ctx: Context, post: Post, viewer: Actor | None, *,
                  choices: TrainingChoices | None = None) -> PostCard:
    return (await cards_for(ctx, viewer, [(post.id, post, None)], choices=choices,
                            shown_anyway=frozenset({post.id})))[0]


async def notifications(ctx: Context, viewer: Actor, *, max_id: int | None = None, limit: int = PAGE_SIZE,
                        choices: TrainingChoices | None = None) -> NotificationPage:
    rows = await timeline_store.notifications(ctx.db.reader, viewer.id, max_id=max_id, limit=limit)
    items = await notification_items(ctx, viewer, rows, choices=choices)
    return NotificationPage(items, rows[-1]["id"] if len(rows) == limit else None)


async def notification_items(ctx: Context, viewer: Actor, rows: list[dict], *,
                             choices: TrainingChoices | None = None) -> list[Notification]:
    """Stored notification rows as the viewer may see them (the posts' visibility, filters,
    suspended and silenced senders)."""
    reader = ctx.db.reader
    posts = await timeline_store.posts_by_ids(reader, list({row["post_id"] for row in rows if row["post_id"]}))
    # Who the notifications come from and who wrote the posts, in one read.
    actors = await timeline_store.actors_by_ids(reader, list({row["from_actor_id"] for row in rows}
                                                             | {post.actor_id for post in posts.values()}))
    visible = await audience.may_see_all(ctx, list(posts.values()), viewer)
    all_cards = await cards_for(ctx, viewer, [(p.id, p, None) for p in visible], actors=actors, choices=choices)
    cards = {card.post.id: card for card in await apply_filters(ctx, viewer, all_cards, "notifications")}
    # A notification about a post the viewer's keyword filters hide goes with it (Mastodon too).
    filtered_out = {card.post.id for card in all_cards} - set(cards)
    # Nothing from suspended accounts, nor from silenced ones the viewer does not follow.
    silenced = {a.id for a in actors.values() if a.silenced_at and a.id != viewer.id}
    followed = await note_batches.followed_among(reader, viewer.id, list(silenced)) if silenced else set()
    items = []
    for row in rows:
        actor = actors.get(row["from_actor_id"])
        if actor is None or actor.is_gone or (actor.id in silenced and actor.id not in followed):
            continue
        if row["post_id"] in filtered_out:
            continue
        items.append(Notification(id=row["id"], kind=row["kind"], created_at=row["created_at"], from_actor=actor,
                                  card=cards.get(row["post_id"]) if row["post_id"] else None,
                                  group_key=row.get("group_key")))
    return items


async def local_actor(ctx: Context, username: str) -> Actor | None:
    """A live local account's actor by username (None for unknown, deleted, suspended or the
    instance actor)."""
    actor = await actor_store.get_local_actor(ctx.db.reader, username)
    return actor if actor is not None and not actor.is_gone else None


async def actor_by_id(ctx: Context, actor_id: int) -> Actor | None:
    """A known account that is neither deleted nor suspended here."""
    actor = await actor_store.get_actor(ctx.db.reader, actor_id)
    return actor if actor is not None and not actor.is_gone else None


async def actor_by_uri(ctx: Context, uri: str) -> Actor | None:
    actor = await actor_store.get_actor_by_uri(ctx.db.reader, uri)
    return actor if actor is not None and not actor.deleted_at else None


async def post_by_id(ctx: Context, post_id: int) -> Post | None:
    return await post_store.get_post(ctx.db.reader, post_id)


async def unread_notifications(ctx: Context, actor: Actor | None) -> int:
    """Notifications the person has not seen yet (none when nobody is signed in)."""
    return await interaction_store.count_unread_notifications(ctx.db.reader, actor.id) if actor else 0


async def mark_notifications_read(ctx: Context, actor: Actor) -> None:
    async with ctx.db.transaction() as tx:
        await interaction_store.mark_notifications_read(tx, actor.id, ctx.clock.now_iso())


async def public(ctx: Context, viewer: Actor | None, *, local: bool = True, remote: bool = True,
                 max_id: int | None = None, limit: int = PAGE_SIZE, choices: TrainingChoices | None = None) -> Page:
    """Public posts of this server and (for signed-in people only, as on the hashtag pages: we do
    not republish other servers' posts to the open web) of the others we hold."""
    remote = remote and viewer is not None
    posts = await timeline_store.public_posts(ctx.db.reader, local=local, remote=remote, max_id=max_id, limit=limit)
    return await _page_of_posts(ctx, viewer, posts, limit, choices, "public")


async def dismiss_notification(ctx: Context, actor: Actor, notification_id: int) -> bool:
    """Remove one of the person's notifications; False when they have no such notification."""
    async with ctx.db.transaction() as tx:
        return await interaction_store.delete_notification(tx, actor.id, notification_id)


async def clear_notifications(ctx: Context, actor: Actor) -> None:
    async with ctx.db.transaction() as tx:
        await interaction_store.delete_notifications_of(tx, actor.id)
