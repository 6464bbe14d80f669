"""The media cache: remote pictures (attachments, avatars) fetched by this server through the one
remote fetcher (activitypub/fetch.py: network policy, deadline, size cap, per-host slots, remembered
failures), decoded and written again without metadata in the media image worker (a child process
with CPU and memory limits, fedserver/image_worker.py) together with a thumbnail and a blurhash, and
stored under the media directory by content (cache/<sha256>.<ext>). Pages then show them from this
server only, so other servers never see who reads.

A picture is fetched by the worker when a post arrives for people here (a queue in the database,
claimed with leases), or on first view (a URL a stored post or actor names, never one a request
brings). Retention removes copies older than [media] remote_retention_days; they come back when
next asked for. Local uploads live beside them and are never pruned."""
from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fedserver.cancellation import raise_if_cancelled
from fedserver.context import Context
from fedserver.queue_wakeups import MEDIA
from fedserver.store import claims
from fedserver.store import remote_media as media_store
from fedserver.store.remote_media import CachedCopy, MediaUsage, RemoteMedia

if TYPE_CHECKING:
    from fedserver.av_media import CleanAV
    from fedserver.image_previews import Preview
    from fedserver.image_worker import ImageWorker
    from fedserver.images import CleanImage
    from fedserver.media_storage import MediaStorage

# The fetcher (aiohttp) and the image worker (Pillow) are imported where used: `fedserver status`
# and `media prune` use this module and need neither.

log = logging.getLogger(__name__)

CACHE_FOLDER = "cache"
# Queue leases: a worker that dies leaves its rows to another after this long.
LEASE_MS = 5 * 60 * 1000
IDLE_POLL_SECONDS = 1.0
# A picture that could not be cached is not asked for again before this (doubling per attempt).
RETRY_FIRST_SECONDS = 600
RETRY_MAX_SECONDS = 86_400
PRUNE_BATCH = 200
PRUNE_INTERVAL_SECONDS = 6 * 3600


def cached_file_path(ctx: Context, name: str) -> Path:
    """Where a cached file is read from (web/media.py serves it); raises ValueError for a name that
    is not a media file's."""
    return ctx.media.path(name, CACHE_FOLDER)


def _worker(ctx: Context) -> ImageWorker:
    """The cache's own image worker: remote pictures never make uploads wait behind them."""
    worker = ctx.__dict__.get("_media_worker")
    if worker is None:
        from fedserver.image_worker import ImageWorker, WorkerLimits

        up, media = ctx.settings.uploads, ctx.settings.media
        worker = ctx.__dict__["_media_worker"] = ImageWorker(WorkerLimits(
            max_pixels=up.upload_max_pixels, cpu_seconds=up.upload_cpu_seconds, memory_mb=up.upload_memory_mb,
            timeout_seconds=up.upload_timeout_seconds, preview_side=media.media_thumbnail_side))
    return worker


def _flights(ctx: Context) -> dict[int, asyncio.Future]:
    return ctx.__dict__.setdefault("_media_flights", {})


def _fetch_slots(ctx: Context) -> asyncio.Semaphore:
    """Pictures fetched at once by this process, by the worker and first views together: a page of
    uncached pictures (or many visitors) waits its turn rather than open a fetch each."""
    slots = ctx.__dict__.get("_media_slots")
    if slots is None:
        slots = ctx.__dict__["_media_slots"] = asyncio.Semaphore(ctx.settings.media.media_fetch_concurrency)
    return slots


async def ensure_cached(ctx: Context, row: RemoteMedia) -> RemoteMedia | None:
    """The row with its files on disk, fetching them now when needed; None when the picture cannot
    be had (refused, unreachable, or failed recently)."""
    if row.state == media_store.CACHED and row.file_name and ctx.media.exists(row.file_name, CACHE_FOLDER):
        return row
    if row.state == media_store.FAILED and (row.retry_at or 0) > ctx.clock.now_ms():
        return None
    return await cache(ctx, row)


async def cache(ctx: Context, row: RemoteMedia) -> RemoteMedia | None:
    """Fetch, clean and store one picture; concurrent requests for the same row share one fetch."""
    flights = _flights(ctx)
    flight = flights.get(row.id)
    if flight is None:
        flight = flights[row.id] = asyncio.ensure_future(_cache_now(ctx, row))
        flight.add_done_callback(lambda _: flights.pop(row.id, None))
    return await asyncio.shield(flight)


# Purposes of remote video and audio attachments (services/remote_posts.py): checked and cleaned by
# ffprobe/ffmpeg (services/av_uploads.py) instead of the image worker; the poster of a video is
# the thumbnail and blurhash picture.
AV_PURPOSES = ("video", "audio")


async def _cache_now(ctx: Context, row: RemoteMedia) -> RemoteMedia | None:
    from fedserver.activitypub.fetch import FetchError
    from fedserver.av_media import InvalidMedia
    from fedserver.images import InvalidImage
    from fedserver.services import av_uploads

    media = ctx.settings.media
    is_av = row.purpose in AV_PURPOSES
    try:
        async with _fetch_slots(ctx):
            data = await ctx.fetcher.fetch_media(
                row.url, max_bytes=av_uploads.max_bytes(ctx) if is_av else media.media_max_remote_bytes,
                timeout=media.media_fetch_timeout_seconds)
        if is_av:
            av, av_preview = await av_uploads.clean_media(ctx, data, _worker(ctx))
            copy = await asyncio.to_thread(_write_av_files, ctx.media, av, av_preview)
        else:
            # Cleaning, hashing and writing the files in one hand-off to the image worker's thread:
            # the clean picture's bytes never come back to the event loop (bench/media_cache_loop.py).
            copy = await _worker(ctx).clean_and_store(data, functools.partial(_write_files, ctx.media))
    except (FetchError, InvalidImage, InvalidMedia) as exc:
        delay = min(RETRY_MAX_SECONDS, RETRY_FIRST_SECONDS * 2 ** min(row.attempts, 10))
        log.info("media cache: %s (%s) not cached: %s; not asked again for %d s", row.url, row.purpose, exc, delay)
        error, retry_at_ms = str(exc), ctx.clock.now_ms() + delay * 1000
        await ctx.db.run_transaction(lambda tx: media_store.mark_failed(tx, row.id, error, retry_at_ms=retry_at_ms),
                                     what=f"media cache: failure of {row.url}")
        return None
    except OSError:  # our disk, not the remote's fault: asked again on the next view or round
        log.exception("media cache: could not write the files of %s", row.url)
        return None
    fetched_at = int(ctx.clock.now())
    # One short statement that also returns the row: no transaction of three round trips to the
    # database thread and no second read.
    cached = await ctx.db.write_now(
        lambda conn: media_store.mark_cached_sync(conn, row.id, copy, fetched_at=fetched_at))
    log.info("media cache: cached %s (%s) as %s, %d bytes", row.url, row.purpose, copy.file_name, copy.stored_bytes)
    return cached


def _write_files(storage: MediaStorage, image: CleanImage, preview: Preview) -> CachedCopy:
    """Write the three files under names made of their content's hash (off the event loop: hashing
    and writing a large picture takes milliseconds). A file already there is the same content."""
    names = []
    for data, extension in ((image.data, image.extension), (preview.data, "webp"), (preview.blur_png, "png")):
        name = f"{hashlib.sha256(data).hexdigest()}.{extension}"
        if not storage.exists(name, CACHE_FOLDER):
            storage.write(name, data, CACHE_FOLDER)
        names.append(name)
    return CachedCopy(file_name=names[0], thumb_name=names[1], blur_name=names[2], width=image.width,
                      height=image.height, thumb_width=preview.width, thumb_height=preview.height,
                      blurhash=preview.blurhash,
                      stored_bytes=len(image.data) + len(preview.data) + len(preview.blur_png))


def _write_av_files(storage: MediaStorage, av: CleanAV, preview: Preview | None) -> CachedCopy:
    """_write_files for a video or audio file and, for a video, its poster's thumbnail and blurhash."""
    files = [(av.data, av.extension)]
    if preview is not None:
        files += [(preview.data, "webp"), (preview.blur_png, "png")]
    names = []
    for data, extension in files:
        name = f"{hashlib.sha256(data).hexdigest()}.{extension}"
        if not storage.exists(name, CACHE_FOLDER):
            storage.write(name, data, CACHE_FOLDER)
        names.append(name)
    return CachedCopy(file_name=names[0], thumb_name=names[1] if preview else None,
                      blur_name=names[2] if preview else None, width=av.width, height=av.height,
                      thumb_width=preview.width if preview else None, thumb_height=preview.height if preview else None,
                      blurhash=preview.blurhash if preview else None,
                      stored_bytes=sum(len(data) for data, _ in files))


async def run_worker(ctx: Context) -> None:
    """Cache queued pictures until cancelled (in the process that runs the background workers)."""
    limit = ctx.settings.media.media_fetch_concurrency
    while True:
        raise_if_cancelled()
        try:
            now_ms = ctx.clock.now_ms()
            rows = await ctx.db.run_transaction(
                lambda tx: claims.claim_media_fetches(tx, now_ms=now_ms, lease_ms=LEASE_MS, limit=limit),
                what="media cache: claim")
            if not rows:
                # Woken at once on PostgreSQL (NOTIFY when a row is queued anywhere), else a poll.
                await ctx.wakeups.wait(MEDIA, timeout=ctx.wakeups.idle_seconds(IDLE_POLL_SECONDS))
                continue
            await asyncio.gather(*(cache(ctx, row) for row in rows))
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the next round tries again; leased rows come back
            log.exception("media cache: worker round failed")
            await asyncio.sleep(IDLE_POLL_SECONDS)


@dataclass(frozen=True)
class Pruned:
    pictures: int
    files_removed: int


async def prune(ctx: Context, *, older_than_days: float | None = None) -> Pruned:
    """Remove cached copies fetched longer ago than the retention (a picture shared by several URLs
    keeps its file while one of them is still cached). Local media is never touched: it is not in
    the cache's rows or folder."""
    days = ctx.settings.media.remote_retention_days if older_than_days is None else older_than_days
    cutoff = int(ctx.clock.now() - days * 86_400)
    # The comparison is strict: with 0 days, what was cached in this very second goes too.
    if older_than_days == 0:
        cutoff += 1
    pictures = removed = 0
    while True:
        async def take_batch(tx) -> tuple[list, list[str], set[str]]:
            rows = await media_store.cached_before(tx, cutoff, PRUNE_BATCH)
            await media_store.mark_absent(tx, [row.id for row in rows])
            names = [n for row in rows for n in (row.file_name, row.thumb_name, row.blur_name) if n]
            return rows, names, set(await media_store.names_still_cached(tx, names))
        rows, names, keep = await ctx.db.run_transaction(take_batch, what="media cache: prune")
        gone = [name for name in dict.fromkeys(names) if name not in keep]
        removed += await asyncio.to_thread(_delete_all, ctx.media, gone)
        pictures += len(rows)
        if len(rows) < PRUNE_BATCH:
            break
    if pictures:
        log.info("media cache: pruned %d pictures cached more than %s days ago (%d files)", pictures, days, removed)
    return Pruned(pictures, removed)


def _delete_all(storage: MediaStorage, names: list[str]) -> int:
    return sum(storage.delete(name, CACHE_FOLDER) for name in names)


async def prune_periodically(ctx: Context) -> None:
    while True:
        raise_if_cancelled()
        try:
            await prune(ctx)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the next round tries again
            log.exception("media cache: pruning failed")
        await asyncio.sleep(PRUNE_INTERVAL_SECONDS)


async def usage(ctx: Context) -> MediaUsage:
    return await media_store.usage(ctx.db.reader)


def remote_picture_path(url: str, size: str = "") -> str:
    """This server's address for a remote picture named by a stored post or actor: /media/remote/
    answers from the cache, fetching the picture on first view (web/media.py)."""
    suffix = f"?size={size}" if size else ""
    return f"/media/remote/{media_store.url_hash(url)}{suffix}"


def cached_path(name: str) -> str:
    return f"/media/{CACHE_FOLDER}/{name}"


async def emoji_sources(ctx: Context, post_ids: list[int]) -> dict[int, dict[str, str]]:
    """Each remote post's custom emoji: shortcode -> the picture's address on this server (its
    cached thumbnail, or the address that fetches it on first view)."""
    from fedserver.store import emojis as emoji_store

    found = await emoji_store.emojis_for(ctx.db.reader, post_ids) if post_ids else {}
    sources: dict[int, dict[str, str]] = {}
    for post_id, emojis in found.items():
        for shortcode, (url, cached) in emojis.items():
            if cached is None:
                continue  # not known to the cache: the :shortcode: stays text
            sources.setdefault(post_id, {})[shortcode] = (
                cached_path(cached.thumb_name) if cached.thumb_name else remote_picture_path(url, "small"))
    return sources
