"""What every service call needs: settings, the database, the remote fetcher, the clock, URLs, and the
wake-ups of the queue workers (fedserver/queue_wakeups.py; lost with the process, which is fine:
workers also poll);
open_context and close_context make and release one, for the server and for CLI commands alike."""
from __future__ import annotations

import asyncio
import os
import secrets
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fedserver import __version__
from fedserver.clock import SYSTEM_CLOCK, Clock
from fedserver.config import Settings
from fedserver.db import Database, database_from_settings, prepare_schema
from fedserver.queue_wakeups import DELIVERY, INBOX, POLLS, STREAM, ListenWakeups, LocalWakeups
from fedserver.urls import Urls

if TYPE_CHECKING:
    from aiohttp import web

    from fedserver.activitypub.fetch import RemoteFetcher
    from fedserver.image_worker import ImageWorker
    from fedserver.media_storage import MediaStorage

    CTX_KEY: web.AppKey[Context]


@dataclass
class Context:
    settings: Settings
    db: Database
    clock: Clock = SYSTEM_CLOCK
    # Enqueuers notify, idle workers wait (fedserver/queue_wakeups.py; ListenWakeups on PostgreSQL).
    wakeups: LocalWakeups = field(default_factory=LocalWakeups)
    # Who holds this process's queue leases (store/claims.py): unique per process and start.
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}")
    # Other processes enqueue work for this process's workers (a `fedserver worker`, or a server with
    # acceptors or whose web processes run apart): idle workers then look for their commits often.
    others_enqueue: bool = False
    # The key the fetcher signs with (the instance actor's): key id and private key PEM.
    signing_key: tuple[str, str] | None = None

    @property
    def stream_wakeup(self) -> asyncio.Event:
        # Stream events were written (in this process, or on PostgreSQL in any): the hub reads them
        # at once (services/events.py).
        return self.wakeups.event(STREAM)

    @property
    def delivery_wakeup(self) -> asyncio.Event:
        return self.wakeups.event(DELIVERY)

    @property
    def inbox_wakeup(self) -> asyncio.Event:
        return self.wakeups.event(INBOX)

    @property
    def poll_closing_wakeup(self) -> asyncio.Event:
        # A new poll may end before the closing worker's next look (services.polls.run_closer).
        return self.wakeups.event(POLLS)

    @property
    def urls(self) -> Urls:
        # Built once per base URL rather than on every access (it is used on every request).
        cached = self.__dict__.get("_urls")
        if cached is None or cached.base != self.settings.base_url.rstrip("/"):
            cached = self.__dict__["_urls"] = Urls(self.settings.base_url)
        return cached

    @property
    def fetcher(self) -> RemoteFetcher:
        # Built on first use: most CLI commands never fetch, and a fetcher needs aiohttp, whose import
        # is a large share of a command's start-up.
        fetcher = self.__dict__.get("_fetcher")
        if fetcher is None:
            key_id, private_key_pem = self.signing_key or (None, None)
            fetcher = self.__dict__["_fetcher"] = make_fetcher(self.settings, key_id, private_key_pem)
        return fetcher

    async def close_fetcher(self) -> None:
        fetcher = self.__dict__.pop("_fetcher", None)
        if fetcher is not None:
            await fetcher.close()

    @property
    def media(self) -> MediaStorage:
        """Where media files are written and read (fedserver/media_storage.py)."""
        storage = self.__dict__.get("_media")
        if storage is None:
            from fedserver.media_storage import DirectoryStorage

            storage = self.__dict__["_media"] = DirectoryStorage(self.settings.media_dir)
        return storage

    @property
    def image_worker(self) -> ImageWorker:
        # The process that decodes uploaded pictures, with the [uploads] limits; its child process
        # starts with the first picture.
        worker = self.__dict__.get("_image_worker")
        if worker is None:
            from fedserver.image_worker import ImageWorker, WorkerLimits

            up = self.settings.uploads
            worker = self.__dict__["_image_worker"] = ImageWorker(WorkerLimits(
                max_pixels=up.upload_max_pixels, cpu_seconds=up.upload_cpu_seconds, memory_mb=up.upload_memory_mb,
                timeout_seconds=up.upload_timeout_seconds, preview_side=self.settings.media.media_thumbnail_side))
        return worker


def __getattr__(name: str) -> Any:
    # How aiohttp handlers find the Context: request.app[CTX_KEY]. Made on first use, for the same
    # reason as the fetcher: commands that never serve HTTP do not import aiohttp.
    if name == "CTX_KEY":
        from aiohttp import web

        key = globals()["CTX_KEY"] = web.AppKey("ctx", Context)
        return key
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def user_agent(settings: Settings) -> str:
    return f"fedserver/{__version__} (+{settings.base_url}/)"


def make_fetcher(settings: Settings, key_id: str | None = None, private_key_pem: str | None = None,
                 timeout: float | None = None) -> RemoteFetcher:
    from fedserver.activitypub.fetch import RemoteFetcher, httpsig_signer

    fed = settings.federation
    return RemoteFetcher(
        allow_private=fed.allow_private_addresses, allow_http=settings.instance.scheme == "http",
        timeout=timeout or fed.fetch_timeout_seconds, max_body=fed.max_fetch_body_bytes,
        user_agent=user_agent(settings),
        signer=httpsig_signer(key_id, private_key_pem) if key_id and private_key_pem else None,
        limit=max(100, fed.delivery_concurrency * 2), limit_per_host=fed.delivery_per_host_concurrency * 2,
        fetches_per_origin=fed.fetch_per_host_concurrency, failure_ttl=fed.fetch_failure_cache_seconds)


async def open_context(settings: Settings, clock: Clock = SYSTEM_CLOCK, *, migrate: bool = False) -> Context:
    """Open the database (SQLite or PostgreSQL; set up when new, migrated when migrate is true,
    else refused with db.SchemaMismatch when its schema is not this code's) and make sure the
    instance actor exists; the fetcher signs as it."""
    from fedserver.services.accounts import ensure_instance_actor  # services import this module
    from fedserver.services.status import canonicalize_domain_blocks

    db = database_from_settings(settings)
    await db.open()
    try:
        await prepare_schema(db, apply=migrate)
    except BaseException:
        await db.close()
        raise
    ctx = Context(settings=settings, db=db, clock=clock)
    if db.engine == "postgresql":
        ctx.wakeups = ListenWakeups(db.url, connect_kwargs=db.connect_kwargs(),
                                    idle_poll_seconds=settings.database.listen_poll_seconds)
    instance_actor, account = await ensure_instance_actor(ctx)
    await canonicalize_domain_blocks(ctx)  # blocks stored before domains were stored canonically
    if instance_actor.key_id and account.private_key_pem:
        ctx.signing_key = (instance_actor.key_id, account.private_key_pem)
    return ctx


async def close_context(ctx: Context) -> None:
    await ctx.close_fetcher()
    image_worker = ctx.__dict__.pop("_image_worker", None)
    if image_worker is not None:
        await image_worker.close()
    media_worker = ctx.__dict__.pop("_media_worker", None)  # the media cache's (services/media_cache.py)
    if media_worker is not None:
        await media_worker.close()
    await ctx.wakeups.close()
    await ctx.db.close()
