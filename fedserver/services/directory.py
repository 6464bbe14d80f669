"""Accounts as an app asks for them: by id, by handle, with their counts, and how the viewer
relates to each (the client API's Account and Relationship entities). The same visibility rules
as the profile pages: gone accounts are not found, counts cover what the viewer may see."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from fedserver.context import Context
from fedserver.services import remote_actors, social_lists, timelines
from fedserver.store import actors as actor_store
from fedserver.store import follows as follow_store
from fedserver.store import interactions as interaction_store
from fedserver.store import timelines as timeline_store
from fedserver.store.actors import Actor
from fedserver.store.posts import Post


@dataclass(frozen=True)
class AccountView:
    actor: Actor
    statuses_count: int
    followers_count: int
    following_count: int
    last_status_at: str | None
    # A local account that hides whom it follows and who follows it (Mastodon's hide_collections).
    hide_collections: bool = False


@dataclass(frozen=True)
class RelationshipView:
    target_id: int
    following: bool
    requested: bool
    followed_by: bool
    requested_by: bool
    blocking: bool
    blocked_by: bool
    muting: bool


async def account_view(ctx: Context, actor: Actor, viewer: Actor | None) -> AccountView:
    return (await account_views(ctx, [actor], viewer))[actor.id]


async def account_views(ctx: Context, actors: Sequence[Actor], viewer: Actor | None) -> dict[int, AccountView]:
    """Each account's view by id, read for all of them at once (a page of statuses shows up to
    80 accounts: one read each for the viewer's follows, the counts and the newest posts' times,
    not three per account). Posts are counted as the profile page counts them for this viewer:
    followers-only ones too when the viewer follows the account or is it."""
    unique = {actor.id: actor for actor in actors}
    if not unique:
        return {}
    states = (await follow_store.follow_states(ctx.db.reader, viewer.id, [i for i in unique if i != viewer.id])
              if viewer is not None else {})

    def relation(actor_id: int) -> str:  # as timelines.relationship decides it
        if viewer is None:
            return "none"
        if actor_id == viewer.id:
            return "self"
        state = states.get(actor_id)
        return "none" if state is None else "following" if state == "accepted" else "requested"

    counts = await timeline_store.account_counts(
        ctx.db.reader, {actor_id: timelines.profile_visibilities(relation(actor_id)) for actor_id in unique})
    # Only local accounts can hide their lists (one read each; remote ones need none).
    hidden = {actor_id for actor_id, actor in unique.items() if await social_lists.hides_collections(ctx, actor)}
    return {actor_id: AccountView(actor=actor, statuses_count=counts[actor_id].posts,
                                  followers_count=counts[actor_id].followers,
                                  following_count=counts[actor_id].following,
                                  last_status_at=counts[actor_id].last_status_at,
                                  hide_collections=actor_id in hidden)
            for actor_id, actor in unique.items()}


async def account_by_id(ctx: Context, actor_id: int) -> Actor | None:
    """A live account (local or remote); None for unknown, deleted or suspended ones."""
    actor = await actor_store.get_actor(ctx.db.reader, actor_id)
    return actor if actor is not None and not actor.is_gone else None


async def account_by_acct(ctx: Context, acct: str) -> Actor | None:
    """`alice`, `@alice`, `alice@our.domain` or `bob@other.host` among the accounts we know
    (nothing is fetched: Mastodon's lookup does not resolve either)."""
    username, _, domain = acct.strip().lstrip("@").partition("@")
    if not username:
        return None
    if not domain or domain.lower() == ctx.urls.domain.lower():
        return await timelines.local_actor(ctx, username)
    actor = await actor_store.get_actor_by_handle(ctx.db.reader, username, domain.lower())
    return actor if actor is not None and not actor.is_gone else None


async def relationship(ctx: Context, viewer: Actor, target_id: int) -> RelationshipView:
    reader = ctx.db.reader
    mine = await follow_store.get_follow(reader, viewer.id, target_id)
    theirs = await follow_store.get_follow(reader, target_id, viewer.id)
    return RelationshipView(
        target_id=target_id,
        following=mine is not None and mine.state == "accepted",
        requested=mine is not None and mine.state != "accepted",
        followed_by=theirs is not None and theirs.state == "accepted",
        requested_by=theirs is not None and theirs.state != "accepted",
        blocking=await follow_store.is_blocked_by(reader, target_id, viewer.id),
        blocked_by=await follow_store.is_blocked_by(reader, viewer.id, target_id),
        muting=await follow_store.is_muted_by(reader, target_id, viewer.id))


async def bio_source(ctx: Context, actor: Actor) -> str:
    return await actor_store.get_local_bio_source(ctx.db.reader, actor.id)


async def follow_request_count(ctx: Context, actor: Actor) -> int:
    return len(await follow_store.list_follow_requests(ctx.db.reader, actor.id))


async def contact_account(ctx: Context) -> Actor | None:
    """The instance's contact: its first administrator."""
    for actor, account in await actor_store.list_local_actors(ctx.db.reader):
        if account.is_admin and not account.is_instance_actor and not actor.is_gone:
            return actor
    return None


async def known_domains(ctx: Context) -> int:
    return await actor_store.count_known_domains(ctx.db.reader)


async def find_account(ctx: Context, query: str, *, resolve: bool) -> Actor | None:
    """An account by its address (@user@host, user@host, acct:..., a bare name for this server),
    as the web search finds it; with resolve, one we do not know yet is looked up by WebFinger."""
    handle = query.strip().removeprefix("acct:").lstrip("@")
    if not handle or any(c.isspace() for c in handle) or handle.count("@") > 1:
        return None
    if not resolve:
        return await account_by_acct(ctx, handle)
    try:
        actor = await remote_actors.resolve_handle(ctx, handle if "@" in handle else f"{handle}@{ctx.urls.domain}")
    except remote_actors.ActorNotFound:
        return None
    return actor if not actor.is_gone else None


async def follow_list(ctx: Context, actor: Actor, *, followers: bool, max_id: int | None,
                      limit: int) -> tuple[list[tuple[int, Actor]], int | None]:
    """A page of the account's followers (or followed accounts), newest follow first, as (follow
    id, account), leaving out accounts that are gone; and the follow id the read stopped at (None
    at the end)."""
    rows = await follow_store.list_side_before(ctx.db.reader, actor.id, followers=followers, max_id=max_id,
                                               limit=limit)
    return [(fid, other) for fid, other in rows if not other.is_gone], (rows[-1][0] if len(rows) == limit else None)


async def interactors(ctx: Context, post: Post, *, boosts: bool, max_id: int | None,
                      limit: int) -> tuple[list[tuple[int, Actor]], int | None]:
    """A page of the accounts that liked (or boosted) the post, newest first, as (like or boost
    id, account), leaving out accounts that are gone; and where the read stopped."""
    rows = await interaction_store.interactors_before(ctx.db.reader, post.id, boosts=boosts, max_id=max_id,
                                                      limit=limit)
    return [(row_id, actor) for row_id, actor in rows if not actor.is_gone], (rows[-1][0] if len(rows) == limit
                                                                            else None)
