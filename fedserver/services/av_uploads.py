"""Video and audio attached to posts: an upload checked and cleaned by fedserver/av_media.py (ffprobe
and ffmpeg in bounded processes), its poster frame cleaned by the image worker (thumbnail and
blurhash, like a picture's), and the files written under the media directory. The media cache uses
the same checks for remote video and audio (services/media_cache.py)."""
from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass

from fedserver.av_media import AVLimits, CleanAV, InvalidMedia, available, clean
from fedserver.context import Context
from fedserver.image_previews import Preview
from fedserver.images import InvalidImage
from fedserver.store.attachments import Attachment

MAX_DESCRIPTION = 1500
# ffmpeg runs at once in this process (uploads and the media cache together): each may take a core
# for seconds, and the server's own threads must keep one.
AV_CONCURRENCY = 2
UNAVAILABLE = "video and audio are not taken on this server (ffmpeg or prlimit is not installed)"


def limits(ctx: Context, max_bytes: int) -> AVLimits:
    media = ctx.settings.media
    return AVLimits(cpu_seconds=media.media_av_cpu_seconds, memory_mb=media.media_av_memory_mb,
                    timeout_seconds=media.media_av_timeout_seconds, max_output_bytes=max_bytes + 1024 * 1024)


def max_bytes(ctx: Context) -> int:
    return max(ctx.settings.media.media_video_max_bytes, ctx.settings.media.media_audio_max_bytes)


def _slots(ctx: Context) -> asyncio.Semaphore:
    slots = ctx.__dict__.get("_av_slots")
    if slots is None:
        slots = ctx.__dict__["_av_slots"] = asyncio.Semaphore(AV_CONCURRENCY)
    return slots


async def clean_media(ctx: Context, data: bytes, image_worker) -> tuple[CleanAV, Preview | None]:
    """The file checked, without metadata, and its poster's thumbnail and blurhash for a video;
    raises InvalidMedia with a message for the person."""
    if not available():
        raise InvalidMedia(UNAVAILABLE)
    media = ctx.settings.media
    if len(data) > max_bytes(ctx):
        raise InvalidMedia(f"the file is larger than {_size(max_bytes(ctx))}")
    async with _slots(ctx):
        av = await clean(data, limits(ctx, max_bytes(ctx)))
    largest = media.media_video_max_bytes if av.kind == "video" else media.media_audio_max_bytes
    if len(data) > largest:
        raise InvalidMedia(f"a{'' if av.kind == 'video' else 'n'} {av.kind} file may be at most {_size(largest)}")
    if av.poster_jpeg is None:
        return av, None
    try:
        _, preview = await image_worker.clean_with_preview(av.poster_jpeg)
    except InvalidImage as exc:
        raise InvalidMedia(f"the video's first frame could not be shown: {exc}") from None
    return av, preview


def _size(count: int) -> str:
    return f"{count / (1024 * 1024):g} MB" if count >= 1024 * 1024 else f"{count / 1024:.0f} KB"


@dataclass(frozen=True)
class StoredMedia:
    """An uploaded video or audio file and its poster's thumbnail and blurhash picture, as files
    under the media directory."""
    media_id: str
    av: CleanAV
    description: str
    preview: Preview | None
    thumb_id: str | None
    blur_id: str | None

    def files(self) -> list[tuple[str, bytes, str]]:
        """(media id, bytes, content type) of each file."""
        found = [(self.media_id, self.av.data, self.av.content_type)]
        if self.preview is not None and self.thumb_id and self.blur_id:
            found += [(self.thumb_id, self.preview.data, "image/webp"), (self.blur_id, self.preview.blur_png, "image/png")]
        return found

    def attachment(self, position: int, media_base: str) -> Attachment:
        preview = self.preview
        return Attachment(
            position=position, media_type=self.av.content_type, url=media_base + self.media_id,
            description=self.description or None, width=self.av.width, height=self.av.height,
            thumb_url=media_base + self.thumb_id if self.thumb_id else None,
            thumb_width=preview.width if preview else None, thumb_height=preview.height if preview else None,
            blur_url=media_base + self.blur_id if self.blur_id else None,
            blurhash=preview.blurhash if preview else None, duration=self.av.duration,
            looping=self.av.kind == "video" and not self.av.has_audio)


async def store_upload(ctx: Context, data: bytes, description: str) -> StoredMedia:
    """Check, clean and write one uploaded video or audio file (before the post's transaction)."""
    av, preview = await clean_media(ctx, data, ctx.image_worker)
    stored = StoredMedia(f"{secrets.token_hex(16)}.{av.extension}", av, description.strip()[:MAX_DESCRIPTION],
                         preview, f"{secrets.token_hex(16)}.webp" if preview else None,
                         f"{secrets.token_hex(16)}.png" if preview else None)
    for media_id, file_data, _ in stored.files():
        await asyncio.to_thread(ctx.media.write, media_id, file_data)
    return stored
