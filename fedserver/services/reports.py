"""Reports: from other servers (ActivityPub Flag) about local accounts, from local people about a
post, and the admin resolving them. Mastodon sends a report as its instance actor, naming the
reported account and any of its posts; one report is kept per reported account, as Mastodon keeps
them. A report made here may be forwarded the same way, so the reporter's name stays here."""
from __future__ import annotations

import logging

from fedserver.context import Context
from fedserver.services import as2, outbox
from fedserver.services.accounts import require_local_actor
from fedserver.store import actors as actor_store
from fedserver.store import posts as post_store
from fedserver.store import reports as report_store
from fedserver.store.actors import Actor
from fedserver.store.posts import Post
from fedserver.store.reports import OpenReport

log = logging.getLogger(__name__)

# Mastodon truncates a report's comment to this many characters and we bound the objects looked at.
MAX_COMMENT = 5000
MAX_OBJECTS = 100


async def receive_flag(ctx: Context, flag_uri: str, reporter: Actor, object_uris: list[str], comment: str) -> int:
    """Store reports about the local accounts a Flag names, directly or as authors of the local
    posts it names; anything else it names is not ours to judge. Returns how many reports are new
    (0 for a repeated delivery)."""
    targets: dict[int, list[int]] = {}
    for uri in object_uris[:MAX_OBJECTS]:
        actor = await actor_store.get_actor_by_uri(ctx.db.reader, uri)
        if actor is not None:
            if actor.is_local and not actor.deleted_at and actor.actor_type != "Application":
                targets.setdefault(actor.id, [])
            continue
        post = await post_store.get_post_by_uri(ctx.db.reader, uri)
        if post is not None and post.is_local and not post.is_deleted:
            targets.setdefault(post.actor_id, []).append(post.id)
    created = 0
    now = ctx.clock.now_iso()
    async with ctx.db.transaction() as tx:
        for target_id, post_ids in targets.items():
            # One Flag may name several accounts: a report each, with ids derived from the Flag's.
            uri = flag_uri if len(targets) == 1 else f"{flag_uri}#report-{target_id}"
            if await report_store.insert_report(tx, uri=uri, reporter_id=reporter.id, target_id=target_id,
                                                comment=comment[:MAX_COMMENT], post_ids=post_ids, now=now):
                created += 1
    if created:
        log.info("report from %s about %d local account(s) (%s)", reporter.uri, created, flag_uri)
    return created


class ReportError(Exception):
    """The report cannot be made (clear message for the person)."""


async def report_post(ctx: Context, username: str, post: Post, comment: str, *, forward: bool) -> bool:
    """username reports post (which they can see) to this server's admins; with forward, and the
    author on another server, a Flag from this server's instance actor also goes to the author's
    server. Returns whether it was forwarded."""
    reporter = await require_local_actor(ctx, username)
    if post.actor_id == reporter.id:
        raise ReportError("you cannot report your own post")
    author = await actor_store.get_actor(ctx.db.reader, post.actor_id)
    if author is None:
        raise ReportError("the post's author is unknown")
    comment = comment.strip()[:MAX_COMMENT]
    forward = forward and not author.is_local and bool(author.preferred_inbox)
    uri = ctx.urls.new_activity()
    async with ctx.db.transaction() as tx:
        await report_store.insert_report(tx, uri=uri, reporter_id=reporter.id, target_id=author.id, comment=comment,
                                         post_ids=[post.id], now=ctx.clock.now_iso(), forwarded=forward)
        if forward:
            found = await actor_store.get_instance_actor(tx)
            assert found is not None, "the instance actor exists from the first start"
            instance_actor = found[0]
            await outbox.publish(ctx, tx, actor=instance_actor,
                                 activity=as2.flag_activity(uri, instance_actor.uri, [author.uri, post.uri], comment),
                                 inboxes=[author.preferred_inbox], is_public=False)
    log.info("%s reported %s%s", username, post.uri, f" (forwarded to {author.domain})" if forward else "")
    return forward


async def open_reports(ctx: Context) -> list[OpenReport]:
    return await report_store.list_open_reports(ctx.db.reader)


async def resolve(ctx: Context, report_id: int, admin: Actor) -> bool:
    """Mark a report handled; False when it was already (or does not exist)."""
    async with ctx.db.transaction() as tx:
        return await report_store.resolve_report(tx, report_id, admin_id=admin.id, now=ctx.clock.now_iso())
