"""Polls (ActivityPub Question). Voting in polls on other servers, as Mastodon votes: each chosen
option goes to the poll's author as a Note named after it, in reply to the Question. Polls in local
posts: votes of local people and of other servers (those same Notes) counted once per voter and
option, and closing at the end time (a durable job in poll_closings) with an Update carrying the
final counts to followers and the voters' servers."""
from __future__ import annotations

import asyncio
import logging
import sqlite3
from typing import Any
from urllib.parse import urlsplit

import aiosqlite

from fedserver.cancellation import raise_if_cancelled
from fedserver.clock import iso_from_epoch, parse_time
from fedserver.context import Context
from fedserver.activitypub.normalize import first_type
from fedserver.services import as2, audience, outbox
from fedserver.services.accounts import require_local_actor
from fedserver.store import actors as actor_store
from fedserver.store import interactions as interaction_store
from fedserver.store import polls as poll_store
from fedserver.store.polls import Poll
from fedserver.store import posts as post_store
from fedserver.store.actors import Actor
from fedserver.store.posts import Post

log = logging.getLogger(__name__)


class VoteError(Exception):
    """The vote cannot be cast (clear message for the person)."""


def is_open(poll: Poll, now: float) -> bool:
    """Votes are taken: the poll is not closed and its end time, if any, has not passed."""
    if poll.closed_at is not None:
        return False
    ends = parse_time(poll.ends_at)
    return ends is None or ends > now


async def vote(ctx: Context, username: str, post: Post, positions: list[int]) -> None:
    """Cast username's vote (option positions) in the poll of post, which they can see."""
    voter = await require_local_actor(ctx, username)
    poll = (await poll_store.polls_for(ctx.db.reader, [post.id])).get(post.id)
    if poll is None or post.is_deleted:
        raise VoteError("this post has no poll to vote in")
    if not is_open(poll, ctx.clock.now()):
        raise VoteError("this poll has ended")
    chosen = sorted(set(positions))
    if not chosen or any(not 0 <= position < len(poll.choices) for position in chosen):
        raise VoteError("pick a choice first")
    if not poll.multiple and len(chosen) > 1:
        raise VoteError("this poll takes one choice")
    if post.is_local:
        await _vote_here(ctx, voter.id, post, chosen)
        log.info("%s voted in %s", username, post.uri)
        return
    author = await actor_store.get_actor(ctx.db.reader, post.actor_id)
    if author is None or author.is_gone or not author.inbox_url:
        raise VoteError("the poll's author cannot be reached")
    async with ctx.db.transaction() as tx:
        await poll_store.lock_poll(tx, post.id)
        if await poll_store.has_voted(tx, post.id, voter.id):
            raise VoteError("you have already voted in this poll")
        uris = []
        for position in chosen:
            note_uri = ctx.urls.new_activity()
            activity = as2.vote_activity(note_uri, voter.uri, post.uri, author.uri, poll.choices[position].name)
            await outbox.publish(ctx, tx, actor=voter, activity=activity, inboxes=[author.inbox_url], is_public=False)
            uris.append(note_uri)
        await poll_store.add_vote(tx, post_id=post.id, actor_id=voter.id, positions=chosen, uris=uris,
                                  now=ctx.clock.now_iso())
        ends = parse_time(poll.ends_at)
        if ends is not None:
            # At its end time the voters here hear that it ended, even if its server never sends
            # the final Update (Mastodon's PollExpirationNotifyWorker does the same). Stored in our
            # own time format: the job queue compares times as text.
            await poll_store.add_closing(tx, post.id, iso_from_epoch(ends))
    ctx.poll_closing_wakeup.set()
    log.info("%s voted in %s", username, post.uri)


async def _vote_here(ctx: Context, voter_id: int, post: Post, chosen: list[int]) -> None:
    """A local person's vote in a local poll: counted here, federated with the final counts."""
    if post.actor_id == voter_id:
        raise VoteError("you cannot vote in your own poll")
    async with ctx.db.transaction() as tx:
        await poll_store.lock_poll(tx, post.id)
        if await poll_store.has_voted(tx, post.id, voter_id):
            raise VoteError("you have already voted in this poll")
        await poll_store.count_vote(tx, post_id=post.id, actor_id=voter_id, positions=chosen,
                                    uris=[ctx.urls.new_activity() for _ in chosen], now=ctx.clock.now_iso())


async def poll_of_local_post(ctx: Context, uri: Any) -> tuple[Post, Poll] | None:
    """The local post with a poll that this in-reply-to address names, if any."""
    if not isinstance(uri, str) or not ctx.urls.is_local(uri):
        return None
    post = await post_store.get_post_by_uri(ctx.db.reader, uri)
    if post is None or not post.is_local or post.is_deleted:
        return None
    poll = (await poll_store.polls_for(ctx.db.reader, [post.id])).get(post.id)
    return (post, poll) if poll is not None else None


def is_vote(obj: Any) -> bool:
    """A Note named after a choice and in reply to something: what Mastodon sends as a vote. Only
    counted as one when the post replied to is one of our polls (poll_of_local_post)."""
    return (isinstance(obj, dict) and first_type(obj) == "Note" and isinstance(obj.get("name"), str)
            and isinstance(obj.get("inReplyTo"), str) and isinstance(obj.get("id"), str))


async def count_remote_vote(ctx: Context, obj: dict[str, Any], signer: Actor, post: Post, poll: Poll) -> bool:
    """Count one delivered vote (one choice) in a local poll; False (logged) when it is refused:
    another author than the signer, an id on another host, the poll ended, no such choice, a second
    choice in a one-choice poll, the author's own vote. A replayed vote is counted once."""
    vote_id = obj["id"]
    if signer.suspended_at or obj.get("attributedTo") != signer.uri:
        log.info("vote %s ignored: not attributed to its signer %s", vote_id, signer.uri)
        return False
    if urlsplit(vote_id).netloc != urlsplit(signer.uri).netloc:
        log.info("vote %s ignored: its id is not on %s's host", vote_id, signer.uri)
        return False
    if not is_open(poll, ctx.clock.now()):
        log.info("vote %s by %s ignored: %s has ended", vote_id, signer.uri, post.uri)
        return False
    if not await audience.may_see(ctx, post, signer):
        log.info("vote %s ignored: %s may not see %s", vote_id, signer.uri, post.uri)
        return False
    names = [choice.name for choice in poll.choices]
    if obj["name"] not in names or post.actor_id == signer.id:
        log.info("vote %s by %s ignored: no choice %r in %s", vote_id, signer.uri, obj["name"][:60], post.uri)
        return False
    position = names.index(obj["name"])
    async with ctx.db.transaction() as tx:
        await poll_store.lock_poll(tx, post.id)
        earlier = (await poll_store.votes_of(tx, signer.id, [post.id])).get(post.id, ())
        if earlier and not poll.multiple and position not in earlier:
            log.info("vote %s by %s ignored: one choice only in %s", vote_id, signer.uri, post.uri)
            return False
        counted = await poll_store.count_vote(tx, post_id=post.id, actor_id=signer.id, positions=[position],
                                              uris=[vote_id], now=ctx.clock.now_iso())
    log.info("vote %s by %s in %s %s", vote_id, signer.uri, post.uri, "counted" if counted else "already counted")
    return bool(counted)


def _ended_poll_recipients(post: Post, voter_ids: list[int]) -> list[int]:
    """Mastodon's rule for `poll` notifications: everyone here who voted, and the author when the
    poll is theirs here (voters never include the author: nobody votes in their own poll)."""
    return [i for i in voter_ids if i != post.actor_id] + ([post.actor_id] if post.is_local else [])


async def notify_poll_ended(conn: aiosqlite.Connection, post: Post, now: str) -> None:
    """Tell the voters and the author that the poll of post has ended, once per poll (in the
    transaction that closes it)."""
    if not await poll_store.claim_end_notice(conn, post.id, now):
        return
    for recipient in _ended_poll_recipients(post, await poll_store.local_voter_ids(conn, post.id)):
        await interaction_store.add_notification(conn, recipient_id=recipient, kind="poll",
                                                 from_actor_id=post.actor_id, post_id=post.id, now=now)


def notify_poll_ended_sync(conn: sqlite3.Connection, post: Post, now: str) -> None:
    """notify_poll_ended for Database.write_batch (a remote poll closed by its server's Update)."""
    if not poll_store.claim_end_notice_sync(conn, post.id, now):
        return
    for recipient in _ended_poll_recipients(post, poll_store.local_voter_ids_sync(conn, post.id)):
        interaction_store.add_notification_sync(conn, recipient_id=recipient, kind="poll",
                                                from_actor_id=post.actor_id, post_id=post.id, now=now)


async def close_due_polls(ctx: Context) -> int:
    """Close the local polls whose end time has come, each in its own transaction with the Update
    of its Question (final counts, `closed`) queued to the author's followers and the voters'
    servers, and tell the voters and the author that it ended. Remote polls voted in here are
    closed too at their end time, to tell the voters here. Returns how many were closed."""
    closed = 0
    for post_id in await poll_store.due_closings(ctx.db.reader, ctx.clock.now_iso()):
        async with ctx.db.transaction() as tx:
            post = await post_store.get_post(tx, post_id)
            if post is not None and not post.is_local:
                # A remote poll voted in here: only its voters here are told. Its own server closes
                # it, and sends the final counts with `closed`.
                if await poll_store.drop_closing(tx, post_id) and not post.is_deleted:
                    await notify_poll_ended(tx, post, ctx.clock.now_iso())
                continue
            if not await poll_store.close_poll(tx, post_id, ctx.clock.now_iso()):
                continue
            author = await actor_store.get_actor(tx, post.actor_id) if post is not None else None
            if post is None or post.is_deleted or author is None:
                continue
            await notify_poll_ended(tx, post, ctx.clock.now_iso())
            note = await audience.local_note_document(ctx, post, author, conn=tx)
            activity = as2.wrap_update_note(note, ctx.urls.new_activity())
            activity["published"] = note["closed"]
            voters = [a for a in [await actor_store.get_actor(tx, i) for i in await poll_store.voter_ids(tx, post_id)]
                      if a is not None and not a.is_local and not a.is_gone]
            followers = [] if post.visibility == "direct" else await outbox.follower_inboxes(tx, author)
            await outbox.publish(ctx, tx, actor=author, activity=activity,
                                 inboxes=[*followers, *(a.preferred_inbox for a in voters)],
                                 is_public=post.visibility in ("public", "unlisted"))
        closed += 1
        log.info("poll of %s closed", post.uri)
    return closed


# How long the closing worker sleeps at most between looks: a poll posted by another serving
# process (which runs no workers, and cannot wake this one) is noticed within this time.
CLOSING_LOOK_SECONDS = 5.0


async def run_closer(ctx: Context) -> None:
    """Background worker: close polls as they fall due. Its jobs are rows in the database, so a
    restart (or a crash) delays a closing but never loses it."""
    while True:
        raise_if_cancelled()
        ctx.poll_closing_wakeup.clear()  # before reading: a poll posted from here on wakes the wait
        try:
            await close_due_polls(ctx)
            due = parse_time(await poll_store.next_closing(ctx.db.reader))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("closing polls failed; trying again shortly")
            due = None
        wait = CLOSING_LOOK_SECONDS if due is None else min(CLOSING_LOOK_SECONDS, max(0.05, due - ctx.clock.now()))
        try:
            await asyncio.wait_for(ctx.poll_closing_wakeup.wait(), timeout=wait)
        except asyncio.TimeoutError:
            pass
