"""The Web Push worker: sends the queued pushes (store/push.py, one row per notification and
subscription) as Mastodon does: the payload of its Web::NotificationSerializer, encrypted for the
subscriber (fedserver/webpush.py), through the one outbound HTTP client and its rules (no private
addresses in production, a deadline, capped reads). Rows are leased, so several processes can
share the queue and a crashed one's rows come back; a failed push is retried with back-off and
dropped after [federation] push_max_attempts; a 404 or 410 from the push service removes the
subscription (RFC 8030 §7.3). Sends run side by side, each under its own deadline, so one slow or
dead push service holds up nothing but its own pushes."""
from __future__ import annotations

import asyncio
import logging
import random

import orjson

from fedserver.cancellation import raise_if_cancelled
from fedserver.activitypub.fetch import FetchBlocked, FetchError
from fedserver.activitypub.sanitize import html_to_text
from fedserver.api import serializers
from fedserver.api.ids import encode
from fedserver.context import Context
from fedserver.federation.idle import wait_for_work
from fedserver.queue_wakeups import PUSH
from fedserver.services import push
from fedserver.store import actors as actor_store
from fedserver.store import push as push_store
from fedserver.store.actors import Actor
from fedserver.store.push import PushJob
from fedserver.webpush import WebPushKeyError, encrypt_push

log = logging.getLogger(__name__)

CONCURRENCY = 16
IDLE_POLL_SECONDS = 1.0
# How often an idle worker looks whether another connection queued a push (PRAGMA data_version):
# notifications are written by the inbox worker, web requests and CLI commands alike.
WATCH_SECONDS = 0.1
BODY_LENGTH = 140
NAME_LENGTH = 64
# Mastodon's notification_mailer.<type>.subject, which its push titles use.
TITLES = {
    "mention": "You were mentioned by {name}",
    "status": "{name} just posted",
    "reblog": "{name} boosted your post",
    "follow": "{name} is now following you",
    "follow_request": "Pending follower: {name}",
    "favourite": "{name} favorited your post",
    "poll": "A poll by {name} has ended",
    "update": "{name} edited a post",
    "admin.sign_up": "{name} signed up",
    "admin.report": "{name} submitted a report",
}
# Types that are about a post: without it (deleted since) there is nothing to show.
NEEDS_POST = ("mention", "status", "reblog", "favourite", "poll", "update")


def retry_delay_seconds(attempt: int, scale: float) -> float:
    """30 s, 1 min, 2 min ... doubling, with jitter; [federation] delivery_retry_scale scales it (tests)."""
    return (30 * 2 ** attempt + random.uniform(0, 10)) * scale


def _truncate(text: str, length: int = BODY_LENGTH) -> str:
    text = " ".join(text.split())
    return text if len(text) <= length else text[:length - 1].rstrip() + "…"


def _wanted(job: PushJob, kind: str | None) -> bool:
    """The subscription's alerts and policy (Mastodon's Web::PushSubscription#pushable?)."""
    if kind is None or kind not in job.alerts.split() or job.recipient_gone:
        return False
    if kind in NEEDS_POST and job.post_text is None:
        return False
    return {"all": True, "followed": bool(job.recipient_follows), "follower": bool(job.follows_recipient),
            "none": False}.get(job.policy, False)


def payload(job: PushJob, kind: str, sender: Actor, ctx: Context) -> bytes:
    """What the phone decrypts and shows: Mastodon's Web::NotificationSerializer."""
    # Bounded: push services may refuse payloads over 4096 bytes (RFC 8030 §7.2), and a remote
    # display name is whatever its server sent.
    name = _truncate(sender.display_name or sender.username, NAME_LENGTH)
    body = job.post_summary or job.post_text or html_to_text(sender.summary_html or "")
    return orjson.dumps({
        "access_token": job.access_token,
        "preferred_locale": ctx.settings.instance.default_post_language,
        "notification_id": int(encode(job.notification_id)),
        "notification_type": kind,
        "icon": serializers.avatar_url(sender, ctx.urls),
        "title": TITLES[kind].format(name=name),
        "body": _truncate(body),
    })


class PushWorker:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        fed = ctx.settings.federation
        self._timeout = fed.push_timeout_seconds
        self._max_attempts = fed.push_max_attempts
        self._retry_scale = fed.delivery_retry_scale
        # A row is claimed only when a slot is free, so its send starts at once and ends within the
        # timeout: the lease covers that with room to write the outcome.
        self._lease_ms = int((self._timeout + 30) * 1000)
        self._tasks: set[asyncio.Task] = set()

    async def run(self) -> None:
        await push.vapid_key(self.ctx)  # made at start, so the first app already gets it
        while True:
            raise_if_cancelled()
            try:
                claimed = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the worker must outlive any single failure
                log.exception("push worker iteration failed")
                claimed = 0
                await asyncio.sleep(0.5)
            if claimed:
                continue
            await self._idle()

    async def run_once(self) -> int:
        free = CONCURRENCY - len(self._tasks)
        if free <= 0:
            return 0
        ctx = self.ctx
        now_ms = ctx.clock.now_ms()
        due = await push_store.next_due_ms(ctx.db.reader, now_ms)
        if due is None or due > now_ms:
            return 0
        claimed = await ctx.db.run_transaction(
            lambda tx: push_store.claim_due_pushes(tx, now_ms=now_ms, lease_ms=self._lease_ms, limit=free),
            what="push: claim")
        if not claimed:
            return 0
        jobs = await push_store.jobs_for(ctx.db.reader, [p.id for p in claimed])
        for job in jobs:
            task = asyncio.create_task(self._send(job))
            self._tasks.add(task)
            task.add_done_callback(self._done)
        return len(claimed)

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        self.ctx.wakeups.notify(PUSH)  # a slot is free

    async def _idle(self) -> None:
        ctx = self.ctx
        idle = ctx.wakeups.idle_seconds(IDLE_POLL_SECONDS)  # longer while LISTEN/NOTIFY wakes it
        if len(self._tasks) >= CONCURRENCY:
            timeout = idle
        else:
            due = await push_store.next_due_ms(ctx.db.reader, ctx.clock.now_ms())
            timeout = idle if due is None else min(idle, max(0.0, (due - ctx.clock.now_ms()) / 1000))
        await wait_for_work(ctx, PUSH, timeout=max(timeout, 0.01), watch=WATCH_SECONDS,
                            next_due_ms=push_store.next_due_ms)

    async def stop(self) -> None:
        """Cancel sends in flight: their rows keep the lease and are sent again after it."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _send(self, job: PushJob) -> None:
        try:
            await self._attempt(job)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the row keeps its lease and is tried again after it
            log.exception("push %d (notification %d) crashed", job.push_id, job.notification_id)

    async def _attempt(self, job: PushJob) -> None:
        ctx = self.ctx
        kind = serializers.NOTIFICATION_TYPES.get(job.kind)
        sender = await actor_store.get_actor(ctx.db.reader, job.from_actor_id)
        if sender is None or not _wanted(job, kind):
            await self._drop(job)
            return
        assert kind is not None
        key = await push.vapid_key(ctx)
        try:
            message = encrypt_push(payload(job, kind, sender, ctx), endpoint=job.endpoint, p256dh=job.key_p256dh,
                                   auth=job.key_auth, standard=bool(job.standard),
                                   vapid_private_pem=key.private_key_pem, subject=ctx.urls.base)
        except WebPushKeyError as exc:  # checked when subscribing; a stored row changed by hand
            log.info("push subscription %d has unusable keys (%s): removed", job.subscription_id, exc)
            await self._remove_subscription(job)
            return
        status: int | None = None
        try:
            async with asyncio.timeout(self._timeout):
                status = await ctx.fetcher.post(job.endpoint, message.body, headers=message.headers)
        except FetchBlocked as exc:
            log.info("push to subscription %d refused: %s", job.subscription_id, exc)
            await self._drop(job)
            return
        except TimeoutError:
            await self._retry(job, f"timeout: no answer in {self._timeout}s")
            return
        except FetchError as exc:
            await self._retry(job, f"failed: {exc}")
            return
        if 200 <= status < 300:
            await self._drop(job)
            log.debug("pushed notification %d to subscription %d (%d)", job.notification_id,
                      job.subscription_id, status)
        elif status in (404, 410):
            log.info("push service answered %d: subscription %d removed", status, job.subscription_id)
            await self._remove_subscription(job)
        elif status >= 500 or status in (408, 429):
            await self._retry(job, f"HTTP {status}")
        else:
            log.info("push service refused notification %d for subscription %d: HTTP %d", job.notification_id,
                     job.subscription_id, status)
            await self._drop(job)

    # What a push's outcome writes is retried as a whole when PostgreSQL aborts it for a conflict
    # (run_transaction): an outcome left unwritten would send the push again after its lease.
    async def _drop(self, job: PushJob) -> None:
        await self.ctx.db.run_transaction(lambda tx: push_store.delete_pushes(tx, [job.push_id]),
                                          what=f"push {job.push_id}: drop")

    async def _remove_subscription(self, job: PushJob) -> None:
        await self.ctx.db.run_transaction(lambda tx: push_store.delete_subscription(tx, job.subscription_id),
                                          what=f"push {job.push_id}: remove subscription")

    async def _retry(self, job: PushJob, error: str) -> None:
        if job.attempts + 1 >= self._max_attempts:
            log.info("gave up pushing notification %d to subscription %d: %s", job.notification_id,
                     job.subscription_id, error)
            await self._drop(job)
            return
        delay = retry_delay_seconds(job.attempts, self._retry_scale)
        log.info("push of notification %d to subscription %d will be retried in %.1fs: %s", job.notification_id,
                 job.subscription_id, delay, error)
        due_ms = self.ctx.clock.now_ms() + int(delay * 1000)
        await self.ctx.db.run_transaction(
            lambda tx: push_store.retry_push(tx, job.push_id, next_attempt_ms=due_ms, error=error),
            what=f"push {job.push_id}: retry")


async def run(ctx: Context) -> None:
    """The push worker for the server's lifetime (cancel to stop)."""
    worker = PushWorker(ctx)
    try:
        await worker.run()
    finally:
        await worker.stop()
