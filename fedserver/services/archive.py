"""A person's archive, as Mastodon exports it: a zip of outbox.json (an OrderedCollection of the
Create activities of their posts, attachments pointing into the zip), actor.json, likes.json and the
media files of their posts and avatar; and the accounts they block or mute and the posts they
bookmarked as Mastodon's CSV files.

The zip is written while it is sent: a thread of its own deflates it into the response a chunk at a
time, asking the event loop for one page of posts at a time, so memory stays flat however many posts
there are, the loop never compresses, and a slow reader slows the thread down (each chunk waits for
the response to take it). Downloads are limited per account ([server] archive_downloads_per_day).
"""
from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import re
import threading
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Awaitable, Callable, Coroutine, TypeVar

from fedserver.activitypub.vocab import AS_CONTEXT, note_context
from fedserver.context import Context
from fedserver.corpus import signals
from fedserver.services import as2, audience
from fedserver.services.accounts import require_local_actor
from fedserver.store import archive as archive_store
from fedserver.store import locks
from fedserver.store.actors import Actor

log = logging.getLogger(__name__)

T = TypeVar("T")

# Mastodon's headers (app/models/export.rb): blocked_accounts.csv has none, one address a line.
MUTED_CSV_HEADER = ["Account address", "Hide notifications"]
POSTS_PER_PAGE = 200
LIKES_PER_PAGE = 1000
CHUNK_BYTES = 64 * 1024
# A reader that takes no chunk for this long is let go: it would hold an archive thread forever.
SEND_TIMEOUT_SECONDS = 60.0
DAY_MS = 86_400_000
# Where Mastodon's archive keeps media, relative to the zip's root (attachment urls say the same).
MEDIA_FOLDER = "media_attachments/files/"
_MEDIA_NAME = re.compile(r"^[0-9a-f]{32}\.[a-z0-9]{2,5}$")
# Archives are deflated on these threads, not the default pool that sign-in's password hashing uses:
# a few people downloading at once wait for each other, nobody else waits for them.
_ARCHIVE_THREADS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="archive")


class ArchiveReaderStalled(Exception):
    """The downloader stopped reading; the archive was abandoned."""


class ArchiveLimited(Exception):
    """This account downloaded its archive as often as a day allows (clear message for the person)."""


async def start_download(ctx: Context, username: str) -> Actor:
    """Count a download against the account's daily limit, or refuse it."""
    me = await require_local_actor(ctx, username)
    limit = ctx.settings.server.archive_downloads_per_day
    now_ms = ctx.clock.now_ms()
    async with ctx.db.transaction() as tx:
        # Downloads started through several processes at once each see the others' (store/locks.py).
        await locks.lock_name(tx, f"archive-downloads:{me.id}")
        if await archive_store.count_downloads_since(tx, me.id, now_ms - DAY_MS) >= limit:
            raise ArchiveLimited(f"You downloaded your archive {limit} times in the last 24 hours, as many as "
                                 "this server allows. Try again tomorrow.")
        await archive_store.record_download(tx, me.id, now_ms)
    return me


def archive_filename(ctx: Context, actor: Actor) -> str:
    stamp = re.sub(r"[^0-9]", "", ctx.clock.now_iso()[:19])
    return f"archive-{stamp}-{actor.username}.zip"


async def write_archive(ctx: Context, actor: Actor, send: Callable[[bytes], Awaitable[None]]) -> None:
    """Write the actor's archive, as zip bytes, through send (a response's write)."""
    loop = asyncio.get_running_loop()
    builder = _ArchiveBuilder(ctx, actor, loop, send)
    done = loop.run_in_executor(_ARCHIVE_THREADS, builder.build)
    try:
        await asyncio.shield(done)
    except asyncio.CancelledError:
        builder.stop.set()  # the thread stops at its next chunk or page
        raise


class _Stopped(Exception):
    pass


class _ChunkSink:
    """The zip's output: gathers zipfile's many small writes into chunks and hands each to the loop.
    Not seekable, so zipfile writes data descriptors after each entry (as any streamed zip does)."""

    def __init__(self, send: Callable[[bytes], None]) -> None:
        self._send = send
        self._buffer = bytearray()

    def write(self, data: bytes) -> int:
        self._buffer += data
        if len(self._buffer) >= CHUNK_BYTES:
            self.drain()
        return len(data)

    def flush(self) -> None:
        pass  # chunks leave when full, and at the end (drain)

    def drain(self) -> None:
        if self._buffer:
            chunk, self._buffer = bytes(self._buffer), bytearray()
            self._send(chunk)


class _ArchiveBuilder:
    """Runs on an archive thread; reads from the database and writes to the response through the loop."""

    def __init__(self, ctx: Context, actor: Actor, loop: asyncio.AbstractEventLoop,
                 send: Callable[[bytes], Awaitable[None]]) -> None:
        self.ctx = ctx
        self.actor = actor
        self.loop = loop
        self.send = send
        self.stop = threading.Event()
        self.media: dict[str, None] = {}  # names of the media files the posts use, in order of first use

    def _on_loop(self, coro: Coroutine[Any, Any, T]) -> T:
        if self.stop.is_set():
            coro.close()
            raise _Stopped()
        # (A backstop: every call is a page read or a chunk written, which _send bounds.)
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=SEND_TIMEOUT_SECONDS + 30)

    async def _send(self, chunk: bytes) -> None:
        try:
            await asyncio.wait_for(self.send(chunk), SEND_TIMEOUT_SECONDS)
        except TimeoutError:
            raise ArchiveReaderStalled(f"no chunk taken for {SEND_TIMEOUT_SECONDS:.0f} s") from None

    def build(self) -> None:
        sink = _ChunkSink(lambda chunk: self._on_loop(self._send(chunk)))
        try:
            with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:  # type: ignore[arg-type]
                self._outbox(archive)
                self._likes(archive)
                self._actor(archive)
                self._media(archive)
            sink.drain()
        except _Stopped:
            log.info("archive of %s: the download was abandoned", self.actor.username)

    def _outbox(self, archive: zipfile.ZipFile) -> None:
        head = {"@context": note_context(signals.actor_context_extension()), "id": "outbox.json",
                "type": "OrderedCollection"}
        total = 0
        # force_zip64: the size is not known in advance and may pass 2 GiB.
        with archive.open("outbox.json", "w", force_zip64=True) as out:
            out.write(json.dumps(head, ensure_ascii=False)[:-1].encode() + b', "orderedItems": [')
            after = 0
            while items := self._on_loop(self._create_activities(after)):
                after, activities = items
                for activity in activities:
                    self._point_media_into_archive(activity["object"])
                    out.write((b",\n" if total else b"\n") + json.dumps(activity, ensure_ascii=False).encode())
                    total += 1
            # Keys have no order in JSON: the count goes last, once known.
            out.write(f'\n], "totalItems": {total}}}\n'.encode())

    async def _create_activities(self, after: int) -> tuple[int, list[dict[str, Any]]] | None:
        posts = await archive_store.own_posts_page(self.ctx.db.reader, self.actor.id, after_id=after,
                                                   limit=POSTS_PER_PAGE)
        if not posts:
            return None
        notes = await audience.local_note_documents(self.ctx, posts, self.actor, with_context=False)
        activities = []
        for post, note in zip(posts, notes):
            activity = as2.wrap_create(note, f"{post.uri}/activity")
            activity.pop("@context", None)
            activities.append(activity)
        return posts[-1].id, activities

    def _point_media_into_archive(self, note: dict[str, Any]) -> None:
        """As Mastodon's archive does: an attachment's url is the path of its file inside the zip."""
        for attachment in note.get("attachment") or []:
            name = self._local_media_name(attachment.get("url"))
            if name is not None:
                attachment["url"] = MEDIA_FOLDER + name
                self.media[name] = None

    def _local_media_name(self, url: object) -> str | None:
        prefix = f"{self.ctx.urls.base}/media/"
        if isinstance(url, str) and url.startswith(prefix) and _MEDIA_NAME.match(url[len(prefix):]):
            return url[len(prefix):]
        return None

    def _likes(self, archive: zipfile.ZipFile) -> None:
        head = {"@context": AS_CONTEXT, "id": "likes.json", "type": "OrderedCollection"}
        total = 0
        with archive.open("likes.json", "w", force_zip64=True) as out:
            out.write(json.dumps(head)[:-1].encode() + b', "orderedItems": [')
            after = 0
            while page := self._on_loop(archive_store.liked_uris_page(
                    self.ctx.db.reader, self.actor.id, after_id=after, limit=LIKES_PER_PAGE)):
                for _, uri in page:
                    out.write((b",\n" if total else b"\n") + json.dumps(uri, ensure_ascii=False).encode())
                    total += 1
                after = page[-1][0]
            out.write(f'\n], "totalItems": {total}}}\n'.encode())

    def _actor(self, archive: zipfile.ZipFile) -> None:
        doc = self._on_loop(audience.local_actor_document(self.ctx, self.actor))
        doc["outbox"] = "outbox.json"
        doc["likes"] = "likes.json"
        # As Mastodon's archive: the avatar and the header beside actor.json, which points to them.
        for key, stem in (("icon", "avatar"), ("image", "header")):
            picture = doc.get(key)
            name = self._local_media_name(picture.get("url")) if isinstance(picture, dict) else None
            if picture is None:
                continue
            if name is not None and self._media_path(name).is_file():
                picture["url"] = stem + Path(name).suffix
                archive.write(self._media_path(name), picture["url"], compress_type=zipfile.ZIP_STORED)
            else:
                doc.pop(key)
        archive.writestr("actor.json", json.dumps(doc, ensure_ascii=False, indent=2))

    def _media_path(self, name: str) -> Path:
        return self.ctx.settings.media_dir / name

    def _media(self, archive: zipfile.ZipFile) -> None:
        for name in self.media:
            if self.stop.is_set():
                raise _Stopped()
            path = self._media_path(name)
            if not path.is_file():
                log.warning("archive of %s: media file %s is missing", self.actor.username, name)
                continue
            # Pictures are compressed already: stored, not deflated again.
            archive.write(path, MEDIA_FOLDER + name, compress_type=zipfile.ZIP_STORED)


async def blocked_accounts_csv(ctx: Context, username: str) -> str:
    """The accounts username blocks, as Mastodon's blocked_accounts.csv: one address a line, no header."""
    me = await require_local_actor(ctx, username)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    after = 0
    while page := await archive_store.blocked_accounts_page(ctx.db.reader, me.id, after_id=after, limit=500):
        for _, account in page:
            writer.writerow([f"{account.username}@{account.domain}"])
        after = page[-1][0]
    return out.getvalue()


async def muted_accounts_csv(ctx: Context, username: str) -> str:
    """The accounts username mutes, as Mastodon's muted_accounts.csv. A mute here always hides the
    account's notifications too."""
    me = await require_local_actor(ctx, username)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(MUTED_CSV_HEADER)
    after = 0
    while page := await archive_store.muted_accounts_page(ctx.db.reader, me.id, after_target_id=after, limit=500):
        for account in page:
            writer.writerow([f"{account.username}@{account.domain}", "true"])
        after = page[-1].id
    return out.getvalue()


async def bookmarks_csv(ctx: Context, username: str) -> str:
    """The posts username bookmarked, as Mastodon's bookmarks.csv: one post id (its URL) a line, no
    header, oldest bookmark first."""
    me = await require_local_actor(ctx, username)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    after = 0
    while page := await archive_store.bookmarked_uris_page(ctx.db.reader, me.id, after_id=after, limit=500):
        for _, uri in page:
            writer.writerow([uri])
        after = page[-1][0]
    return out.getvalue()
