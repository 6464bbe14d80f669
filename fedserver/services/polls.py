"""Voting in polls on other servers (ActivityPub Question), as Mastodon votes: each chosen option
goes to the poll's author as a Note named after it, in reply to the Question."""
from __future__ import annotations

import logging

from fedserver.clock import parse_time
from fedserver.context import Context
from fedserver.services import as2, outbox
from fedserver.services.accounts import require_local_actor
from fedserver.store import actors as actor_store
from fedserver.store import polls as poll_store
from fedserver.store.polls import Poll
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
    if poll is None or post.is_local or post.is_deleted:
        raise VoteError("this post has no poll to vote in")
    if not is_open(poll, ctx.clock.now()):
        raise VoteError("this poll has ended")
    chosen = sorted(set(positions))
    if not chosen or any(not 0 <= position < len(poll.choices) for position in chosen):
        raise VoteError("pick a choice first")
    if not poll.multiple and len(chosen) > 1:
        raise VoteError("this poll takes one choice")
    author = await actor_store.get_actor(ctx.db.reader, post.actor_id)
    if author is None or author.is_gone or not author.inbox_url:
        raise VoteError("the poll's author cannot be reached")
    async with ctx.db.transaction() as tx:
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
    log.info("%s voted in %s", username, post.uri)
