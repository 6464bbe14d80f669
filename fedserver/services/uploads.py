"""Media uploaded through the client API before the post that carries them (Mastodon's
POST /api/v2/media): pictures checked and cleaned exactly as the web compose form's pictures are
(the image worker's bounds, posting.MAX_PICTURE_BYTES) and stored at once; video and audio checked
and cleaned as the form's are (services/av_uploads.py: ffprobe/ffmpeg), after the answer, since
that takes seconds (Mastodon answers 202 and the app polls GET /api/v1/media/:id). Owned by the
uploader, attached to at most one post (services/posting.py, Draft.upload_ids) and pruned when left
unattached for a day."""
from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from dataclasses import replace

import aiosqlite

from fedserver.cancellation import raise_if_cancelled
from fedserver.av_media import InvalidMedia, available
from fedserver.clock import iso_from_epoch, parse_time, time_ordered_id
from fedserver.context import Context
from fedserver.images import InvalidImage
from fedserver.services import av_uploads
from fedserver.services.posting import MAX_DESCRIPTION, Picture, PostingError, store_picture
from fedserver.store import uploads as upload_store
from fedserver.store import web as web_store
from fedserver.store.actors import Actor
from fedserver.store.uploads import Upload

log = logging.getLogger(__name__)

# Mastodon keeps unattached uploads a day: long enough to write the post, short enough that
# abandoned uploads do not pile up.
UNATTACHED_SECONDS = 24 * 3600
PRUNE_INTERVAL_SECONDS = 3600


class UploadError(Exception):
    """The upload or its change is refused (clear message for the person)."""


def _focus(focus: tuple[float, float] | None) -> tuple[float, float]:
    if focus is None:
        return 0.0, 0.0
    x, y = focus
    if not (-1.0 <= x <= 1.0 and -1.0 <= y <= 1.0):
        raise UploadError("focus must be two numbers between -1.0 and 1.0, such as 0.5,-0.25")
    return x, y


async def upload(ctx: Context, actor: Actor, data: bytes, description: str = "",
                 focus: tuple[float, float] | None = None) -> Upload:
    """Clean and store one picture for a later post (raises UploadError)."""
    point = _focus(focus)
    if len(description.strip()) > MAX_DESCRIPTION:
        raise UploadError(f"a description may have at most {MAX_DESCRIPTION} characters")
    try:
        stored = await store_picture(ctx, Picture(data, description))
    except PostingError as exc:
        raise UploadError(str(exc).replace("picture 1: ", "")) from None
    now_epoch = ctx.clock.now()
    now = ctx.clock.now_iso()
    async with ctx.db.transaction() as tx:
        for media_id, body, content_type in stored.files():
            await web_store.insert_media(tx, media_id=media_id, actor_id=actor.id, content_type=content_type,
                                         size=len(body), sha256=hashlib.sha256(body).hexdigest(), now=now)
        while True:
            row = Upload(id=time_ordered_id(now_epoch), actor_id=actor.id, file_id=stored.media_id,
                         content_type=stored.image.content_type, size=len(stored.image.data),
                         width=stored.image.width, height=stored.image.height, thumb_id=stored.thumb_id,
                         thumb_width=stored.preview.width, thumb_height=stored.preview.height,
                         blur_id=stored.blur_id, blurhash=stored.preview.blurhash,
                         description=stored.description, focus_x=point[0], focus_y=point[1],
                         created_at=now, post_id=None)
            if await upload_store.insert_upload(tx, row):
                break
    log.info("picture uploaded by %s for a later post (upload %d, %d bytes)", actor.username, row.id, row.size)
    return row


# The first bytes of the pictures the image worker takes; anything else is tried as video or audio
# (ffprobe judges it by its bytes, never by a name or a Content-Type).
_PICTURE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a")


def is_picture(data: bytes) -> bool:
    return data.startswith(_PICTURE_MAGIC) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")


async def upload_av(ctx: Context, actor: Actor, data: bytes, description: str = "",
                    focus: tuple[float, float] | None = None, *, thumbnail: bytes | None = None,
                    audio_hint: bool = False) -> tuple[Upload, asyncio.Task]:
    """Take a video or audio file for a later post: the row at once (state processing, with the
    `thumbnail` picture cleaned as its preview when one was sent), the file checked and cleaned by
    the returned task (raises UploadError for what can be told at once)."""
    point = _focus(focus)
    if len(description.strip()) > MAX_DESCRIPTION:
        raise UploadError(f"a description may have at most {MAX_DESCRIPTION} characters")
    if not available():
        raise UploadError(av_uploads.UNAVAILABLE)
    if len(data) > av_uploads.max_bytes(ctx):
        raise UploadError(f"the file is larger than {av_uploads.max_bytes(ctx) // (1024 * 1024)} MB")
    now_epoch, now = ctx.clock.now(), ctx.clock.now_iso()
    row = Upload(id=0, actor_id=actor.id, file_id="", content_type="", size=len(data), width=0, height=0,
                 thumb_id="", thumb_width=0, thumb_height=0, blur_id="", blurhash=None,
                 description=description.strip(), focus_x=point[0], focus_y=point[1], created_at=now, post_id=None,
                 kind="audio" if audio_hint else "video", state="processing")
    files: list[tuple[str, bytes, str]] = []
    if thumbnail is not None:
        try:
            _, preview = await ctx.image_worker.clean_with_preview(thumbnail)
        except InvalidImage as exc:
            raise UploadError(f"thumbnail: {exc}") from None
        row = replace(row, thumb_id=f"{secrets.token_hex(16)}.webp", thumb_width=preview.width,
                      thumb_height=preview.height, blur_id=f"{secrets.token_hex(16)}.png", blurhash=preview.blurhash)
        files = [(row.thumb_id, preview.data, "image/webp"), (row.blur_id, preview.blur_png, "image/png")]
    await _write(ctx, files)
    async with ctx.db.transaction() as tx:
        await _register(tx, actor, files, now)
        while True:
            row = replace(row, id=time_ordered_id(now_epoch))
            if await upload_store.insert_upload(tx, row):
                break
    task = asyncio.create_task(_clean_av(ctx, actor, row, data))
    # Held until done: the loop keeps only weak references to tasks.
    running = ctx.__dict__.setdefault("_av_upload_tasks", set())
    running.add(task)
    task.add_done_callback(running.discard)
    log.info("%s uploaded by %s for a later post (upload %d, %d bytes): processing", row.kind, actor.username,
             row.id, len(data))
    return row, task


async def _write(ctx: Context, files: list[tuple[str, bytes, str]]) -> None:
    for media_id, body, _ in files:
        await asyncio.to_thread(ctx.media.write, media_id, body)


async def _register(tx: aiosqlite.Connection, actor: Actor, files: list[tuple[str, bytes, str]], now: str) -> None:
    for media_id, body, content_type in files:
        await web_store.insert_media(tx, media_id=media_id, actor_id=actor.id, content_type=content_type,
                                     size=len(body), sha256=hashlib.sha256(body).hexdigest(), now=now)


async def _clean_av(ctx: Context, actor: Actor, row: Upload, data: bytes) -> None:
    """Check and clean the file (ffprobe/ffmpeg in bounded processes), write it and its poster
    frame's preview (unless a thumbnail was sent), and mark the upload ready, or failed with why."""
    files: list[tuple[str, bytes, str]] = []
    try:
        av, poster = await av_uploads.clean_media(ctx, data, ctx.image_worker)
        done = replace(row, file_id=f"{secrets.token_hex(16)}.{av.extension}", content_type=av.content_type,
                       size=len(av.data), width=av.width or 0, height=av.height or 0, state="ready",
                       kind="gifv" if av.kind == "video" and not av.has_audio else av.kind,
                       duration=av.duration, frame_rate=av.frame_rate)
        files.append((done.file_id, av.data, av.content_type))
        if poster is not None and not row.thumb_id:
            done = replace(done, thumb_id=f"{secrets.token_hex(16)}.webp", thumb_width=poster.width,
                           thumb_height=poster.height, blur_id=f"{secrets.token_hex(16)}.png",
                           blurhash=poster.blurhash)
            files += [(done.thumb_id, poster.data, "image/webp"), (done.blur_id, poster.blur_png, "image/png")]
        await _write(ctx, files)
    except InvalidMedia as exc:
        log.info("upload %d by %s refused: %s", row.id, actor.username, exc)
        done, files = replace(row, state="failed", error=str(exc)), []
    except Exception:  # noqa: BLE001 - the person learns it failed; the log says why
        log.exception("upload %d by %s: processing failed", row.id, actor.username)
        done, files = replace(row, state="failed", error="the file could not be processed"), []
    async with ctx.db.transaction() as tx:
        await _register(tx, actor, files, ctx.clock.now_iso())
        await upload_store.finish_processing(tx, done)
    log.info("upload %d by %s: %s", row.id, actor.username, done.state)


def _settled(ctx: Context, found: Upload) -> Upload:
    """An upload still 'processing' long after any processing could have ended was interrupted (the
    server stopped meanwhile): it is shown as failed, so that the app stops waiting."""
    if found.state != "processing":
        return found
    started = parse_time(found.created_at) or 0
    if ctx.clock.now() - started > 3 * ctx.settings.media.media_av_timeout_seconds + 60:
        return replace(found, state="failed", error="processing was interrupted: upload the file again")
    return found


async def own_upload(ctx: Context, actor: Actor, upload_id: int) -> Upload | None:
    """The upload if it is the actor's (someone else's is as unknown as a missing one)."""
    found = await upload_store.get_upload(ctx.db.reader, upload_id)
    return _settled(ctx, found) if found is not None and found.actor_id == actor.id else None


async def describe(ctx: Context, actor: Actor, upload_id: int, description: str | None,
                   focus: tuple[float, float] | None) -> Upload | None:
    """Change the description or focal point of one's upload (None: not the actor's). Once attached,
    the post shows what the upload said when it was posted, as Mastodon does."""
    found = await own_upload(ctx, actor, upload_id)
    if found is None:
        return None
    text = found.description if description is None else description.strip()
    if len(text) > MAX_DESCRIPTION:
        raise UploadError(f"a description may have at most {MAX_DESCRIPTION} characters")
    point = (found.focus_x, found.focus_y) if focus is None else _focus(focus)
    async with ctx.db.transaction() as tx:
        await upload_store.set_description(tx, upload_id, text, point)
    return await upload_store.get_upload(ctx.db.reader, upload_id)


async def prune(ctx: Context) -> int:
    """Remove uploads left unattached for more than a day, rows and files."""
    cutoff = iso_from_epoch(ctx.clock.now() - UNATTACHED_SECONDS)
    removed = 0
    while True:
        async with ctx.db.transaction() as tx:
            stale = await upload_store.unattached_before(tx, cutoff)
            files = [name for u in stale for name in u.file_ids]
            await upload_store.delete_uploads(tx, [u.id for u in stale])
            await web_store.delete_media(tx, files)
        for name in files:
            await asyncio.to_thread(ctx.media.delete, name)
        removed += len(stale)
        if len(stale) < 500:
            break
    if removed:
        log.info("removed %d uploads never attached to a post", removed)
    return removed


async def prune_periodically(ctx: Context) -> None:
    while True:
        raise_if_cancelled()
        try:
            await prune(ctx)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the next round tries again
            log.exception("uploads: pruning failed")
        await asyncio.sleep(PRUNE_INTERVAL_SECONDS)
