"""Pictures uploaded through the client API before the post that carries them (Mastodon's
POST /api/v2/media): checked and cleaned exactly as the web compose form's pictures are (the image
worker's bounds, posting.MAX_PICTURE_BYTES), stored at once, owned by the uploader, attached to at
most one post (services/posting.py, Draft.upload_ids) and pruned when left unattached for a day."""
from __future__ import annotations

import asyncio
import hashlib
import logging

from fedserver.clock import iso_from_epoch, time_ordered_id
from fedserver.context import Context
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


async def own_upload(ctx: Context, actor: Actor, upload_id: int) -> Upload | None:
    """The upload if it is the actor's (someone else's is as unknown as a missing one)."""
    found = await upload_store.get_upload(ctx.db.reader, upload_id)
    return found if found is not None and found.actor_id == actor.id else None


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
        try:
            await prune(ctx)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the next round tries again
            log.exception("uploads: pruning failed")
        await asyncio.sleep(PRUNE_INTERVAL_SECONDS)
