"""Writing, editing and deleting local posts, and federating each change to its audience."""
from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from dataclasses import dataclass, replace

import aiosqlite

from fedserver.activitypub.notes import addressing
from fedserver.activitypub.sanitize import html_to_text
from fedserver.clock import iso_from_epoch, time_ordered_id
from fedserver.context import Context
from fedserver.image_previews import Preview
from fedserver.av_media import InvalidMedia
from fedserver.images import CleanImage, InvalidImage
from fedserver.services import (as2, audience, av_uploads, events, idempotency, languages, outbox, remote_actors,
                                remote_posts)
from fedserver.services.accounts import require_local_actor
from fedserver.store import actors as actor_store
from fedserver.store import attachments as attachment_store
from fedserver.store import interactions as interaction_store
from fedserver.store import polls as poll_store
from fedserver.store import posts as post_store
from fedserver.store import uploads as upload_store
from fedserver.store import web as web_store
from fedserver.store.actors import Actor
from fedserver.store.attachments import Attachment
from fedserver.store.polls import Poll, PollChoice
from fedserver.store.posts import NewPost, Post
from fedserver.text import MentionTarget, find_hashtags, find_mentions, render_html
from fedserver.queue_wakeups import POLLS

log = logging.getLogger(__name__)

VISIBILITIES = ("public", "unlisted", "followers", "direct")
MAX_POST_CHARS = 5000


class PostingError(Exception):
    """The post cannot be written as asked (clear message for the person)."""


@dataclass(frozen=True)
class Picture:
    """A picture attached to a new post: the uploaded bytes and the author's description of it."""
    data: bytes
    description: str = ""


# Pictures per post (Mastodon's limit) and the largest one taken.
MAX_PICTURES = 4
MAX_PICTURE_BYTES = 8 * 1024 * 1024
MAX_DESCRIPTION = 1500


@dataclass(frozen=True)
class PollDraft:
    """A poll for a new post: its options, seconds until it ends, one or several choices."""
    options: tuple[str, ...]
    expires_in: int
    multiple: bool = False
    hide_totals: bool = False


# As Mastodon: at most 50 characters an option, polls end within seven days.
MAX_POLL_OPTION_CHARS = 50
MAX_POLL_EXPIRY_SECONDS = 7 * 86400


def _checked_poll(ctx: Context, draft: PollDraft, now_epoch: float) -> Poll:
    limits = ctx.settings.instance
    options = tuple(option.strip() for option in draft.options)
    if not 2 <= len(options) <= limits.poll_max_options:
        raise PostingError(f"a poll needs 2 to {limits.poll_max_options} options")
    if any(not option for option in options):
        raise PostingError("poll options cannot be empty")
    if any(len(option) > MAX_POLL_OPTION_CHARS for option in options):
        raise PostingError(f"poll options may have at most {MAX_POLL_OPTION_CHARS} characters")
    if len(set(options)) != len(options):
        raise PostingError("poll options must differ from each other")
    if not limits.poll_min_expiry_seconds <= draft.expires_in <= MAX_POLL_EXPIRY_SECONDS:
        raise PostingError(f"a poll must last between {limits.poll_min_expiry_seconds} seconds and seven days")
    return Poll(multiple=draft.multiple, ends_at=iso_from_epoch(now_epoch + draft.expires_in), closed_at=None,
                voters=0, choices=tuple(PollChoice(option, 0) for option in options), hide_totals=draft.hide_totals)


@dataclass
class Draft:
    text: str
    visibility: str = "public"
    content_warning: str | None = None
    reply_to: str | None = None
    language: str | None = None
    # The author's "keep this post out of the training corpus" (meaningful once they consented).
    exclude_from_corpus: bool = False
    pictures: tuple[Picture, ...] = ()
    # Pictures uploaded beforehand through the client API (services/uploads.py), by upload id:
    # each must be the author's and not yet attached; attached after `pictures`.
    upload_ids: tuple[int, ...] = ()
    # On edit only: the post's media afterwards, in order: ("kept", position of a current
    # attachment) or ("upload", upload id). None leaves the media as they are.
    edit_media: tuple[tuple[str, int], ...] | None = None
    poll: PollDraft | None = None
    # Media marked sensitive (shown blurred) without a content warning, Mastodon's `sensitive`; a
    # content warning always makes the post sensitive. On edit, None keeps what the post had.
    sensitive: bool | None = None
    # One video or audio file (checked and cleaned in services/av_uploads.py), not with pictures.
    video_or_audio: Picture | None = None


# One post resolves at most this many mentions; the rest stay plain text, as unresolvable handles
# do. Each unknown handle costs a WebFinger and an actor fetch: one post must not make us fetch
# without end, nor keep its author waiting while a slow server answers one handle after another.
MAX_MENTIONS = 50
# Handles resolved at once (the fetcher allows 8 connections per host), and how long the mentions
# of one post may take together; whatever has not resolved by then stays plain text.
MENTION_CONCURRENCY = 16
MENTION_BUDGET_SECONDS = 10.0


async def _resolve_mentions(ctx: Context, text: str) -> list[Actor]:
    """The accounts the text mentions, in order of first mention: at most MAX_MENTIONS handles,
    resolved side by side within MENTION_BUDGET_SECONDS."""
    handles = find_mentions(text, ctx.urls.domain)
    if len(handles) > MAX_MENTIONS:
        log.info("post mentions %d accounts: only the first %d are resolved", len(handles), MAX_MENTIONS)
        handles = handles[:MAX_MENTIONS]
    if not handles:
        return []
    lanes = asyncio.Semaphore(MENTION_CONCURRENCY)

    async def resolve(handle: str) -> Actor | None:
        async with lanes:
            try:
                actor = await remote_actors.resolve_handle(ctx, handle)
            except remote_actors.ActorNotFound as exc:
                # Like Mastodon: an unresolvable handle stays plain text rather than failing the post.
                log.info("mention %s not resolved: %s", handle, exc)
                return None
            # A suspended account is not mentioned (nor delivered to): it stays plain text too.
            return None if actor.is_gone else actor

    tasks = [asyncio.create_task(resolve(handle)) for handle in handles]
    _, late = await asyncio.wait(tasks, timeout=MENTION_BUDGET_SECONDS)
    for task in late:
        task.cancel()
    if late:
        await asyncio.wait(late)
        log.info("%d mentions not resolved within %.0f s: left as plain text", len(late), MENTION_BUDGET_SECONDS)
    actors: list[Actor] = []
    for task in tasks:
        actor = None if task in late or task.cancelled() else task.result()
        if actor is not None and actor.id not in (a.id for a in actors):
            actors.append(actor)
    return actors


async def _prepare(ctx: Context, author: Actor, draft: Draft) -> tuple[str, list[Actor], list[str], Post | None]:
    text = draft.text.strip()
    if (not text and not draft.pictures and not draft.upload_ids and not draft.edit_media
            and draft.video_or_audio is None):
        raise PostingError("a post needs some text")
    if len(text) > MAX_POST_CHARS:
        raise PostingError(f"a post may have at most {MAX_POST_CHARS} characters")
    if draft.visibility not in VISIBILITIES:
        raise PostingError(f"visibility must be one of {', '.join(VISIBILITIES)}")
    try:
        draft.language = languages.checked(draft.language)
    except languages.LanguageError as exc:
        raise PostingError(str(exc)) from None
    parent = None
    if draft.reply_to:
        try:
            parent = await remote_posts.get_or_fetch_post(ctx, draft.reply_to)
        except remote_posts.PostNotFound as exc:
            raise PostingError(f"cannot reply: {exc}") from exc
        if parent.is_deleted:
            raise PostingError("cannot reply to a deleted post")
    mentions = await _resolve_mentions(ctx, text)
    if parent is not None and parent.actor_id != author.id and parent.actor_id not in (m.id for m in mentions):
        parent_author = await actor_store.get_actor(ctx.db.reader, parent.actor_id)
        if parent_author is not None:
            mentions.append(parent_author)
    targets = {f"{m.username}@{m.domain}".lower(): MentionTarget(m.uri, m.url or m.uri, m.handle) for m in mentions}
    html = render_html(text, mentions=targets, tag_url=ctx.urls.tag, local_domain=ctx.urls.domain)
    return html, mentions, find_hashtags(text), parent


def _delivery_inboxes(visibility: str, mentions: list[Actor], follower_inboxes: list[str]) -> list[str | None]:
    if visibility == "direct":
        return [m.inbox_url for m in mentions if not m.is_local]
    return [*follower_inboxes, *(m.preferred_inbox for m in mentions if not m.is_local)]


async def _federate_post(ctx: Context, tx: aiosqlite.Connection, author: Actor, post: Post, mentions: list[Actor],
                         kind: str, extra_recipients: list[Actor] | None = None) -> None:
    """Deliver a Create or Update of the post to its audience (extra_recipients: people who saw an
    earlier version and must see the change)."""
    note = await audience.local_note_document(ctx, post, author, conn=tx)
    activity_id = f"{post.uri}/activity" if kind == "Create" else ctx.urls.new_activity()
    activity = as2.wrap_create(note, activity_id) if kind == "Create" else as2.wrap_update_note(note, activity_id)
    recipients = mentions + (extra_recipients or [])
    inboxes = _delivery_inboxes(post.visibility, recipients, await outbox.follower_inboxes(tx, author))
    await outbox.publish(ctx, tx, actor=author, activity=activity, inboxes=inboxes,
                         is_public=post.visibility in ("public", "unlisted"))


async def _notify_local_mentions(ctx: Context, tx: aiosqlite.Connection, author: Actor, post: Post,
                                 mentions: list[Actor], parent: Post | None) -> None:
    now = ctx.clock.now_iso()
    notified = set()
    if parent is not None and parent.is_local and parent.actor_id != author.id:
        await interaction_store.add_notification(tx, recipient_id=parent.actor_id, kind="reply",
                                                 from_actor_id=author.id, post_id=post.id, now=now)
        notified.add(parent.actor_id)
    for actor in mentions:
        if actor.is_local and actor.id != author.id and actor.id not in notified:
            await interaction_store.add_notification(tx, recipient_id=actor.id, kind="mention",
                                                     from_actor_id=author.id, post_id=post.id, now=now)


async def create_post(ctx: Context, username: str, draft: Draft, *, idempotency_key: str | None = None) -> Post:
    """The new post; with an Idempotency-Key (client API), the post an earlier request with the
    same key made within the hour instead, if it is still there (services/idempotency.py)."""
    author = await require_local_actor(ctx, username)
    html, mentions, tags, parent = await _prepare(ctx, author, draft)
    now_epoch = ctx.clock.now()
    now = ctx.clock.now_iso()
    audience = addressing(draft.visibility, author.followers_url or "", [m.uri for m in mentions])
    warning = (draft.content_warning or "").strip() or None
    poll = _checked_poll(ctx, draft.poll, now_epoch) if draft.poll is not None else None
    if poll is not None and (draft.pictures or draft.upload_ids or draft.video_or_audio is not None):
        raise PostingError("a post has either media or a poll, not both")
    pictures = await _store_pictures(ctx, draft.pictures)
    uploads = await _attachable_uploads(ctx, author, draft.upload_ids,
                                        already=len(pictures) + (draft.video_or_audio is not None))
    sound_or_video = await _store_video_or_audio(ctx, draft)
    async with ctx.db.transaction() as tx:
        if idempotency_key:
            earlier_id = await idempotency.claim(ctx, tx, author.id, idempotency_key)
            earlier = await post_store.get_post(tx, earlier_id) if earlier_id is not None else None
            if earlier is not None and not earlier.is_deleted:
                return earlier
        while True:
            post_id = time_ordered_id(now_epoch)
            new_post = NewPost(
                id=post_id, uri=ctx.urls.post(author.username, post_id),
                url=ctx.urls.post_page(author.username, post_id), actor_id=author.id, is_local=True,
                object_type="Question" if poll is not None else "Note", visibility=draft.visibility,
                content_html=html, content_text=html_to_text(html),
                source_text=draft.text.strip(), summary=warning, sensitive=warning is not None or bool(draft.sensitive),
                language=draft.language, in_reply_to_uri=parent.uri if parent else None, audience=audience,
                published_at=now, corpus_excluded=draft.exclude_from_corpus)
            if await post_store.insert_post(tx, new_post, now):
                break
        await post_store.set_mentions(tx, post_id, [m.id for m in mentions], new=True)
        await post_store.set_tags(tx, post_id, tags, new=True)
        if poll is not None:
            await poll_store.add_local_poll(tx, post_id, poll)
        if pictures:
            for picture in pictures:
                for media_id, data, content_type in picture.files():
                    await web_store.insert_media(tx, media_id=media_id, actor_id=author.id, content_type=content_type,
                                                 size=len(data), sha256=hashlib.sha256(data).hexdigest(), now=now)
            media = f"{ctx.urls.base}/media/"
            await attachment_store.add_attachments(tx, post_id, [
                Attachment(position=index, media_type=p.image.content_type, url=media + p.media_id,
                           description=p.description or None, width=p.image.width, height=p.image.height,
                           thumb_url=media + p.thumb_id, thumb_width=p.preview.width, thumb_height=p.preview.height,
                           blur_url=media + p.blur_id, blurhash=p.preview.blurhash)
                for index, p in enumerate(pictures)])
        if uploads:
            # Checked again in the statement that claims them: a racing post cannot take them too.
            if not await upload_store.attach(tx, author.id, [u.id for u in uploads], post_id):
                raise PostingError("a picture was attached to another post meanwhile")
            await attachment_store.add_attachments(tx, post_id, [
                upload_attachment(ctx, u, len(pictures) + index) for index, u in enumerate(uploads)])
        if sound_or_video is not None:
            for media_id, data, content_type in sound_or_video.files():
                await web_store.insert_media(tx, media_id=media_id, actor_id=author.id, content_type=content_type,
                                             size=len(data), sha256=hashlib.sha256(data).hexdigest(), now=now)
            await attachment_store.add_attachments(tx, post_id, [
                sound_or_video.attachment(len(pictures) + len(uploads), f"{ctx.urls.base}/media/")])
        post = new_post.stored(now)
        await _notify_local_mentions(ctx, tx, author, post, mentions, parent)
        await _federate_post(ctx, tx, author, post, mentions, "Create")
        await events.status_created(ctx, tx, post_id)
        if idempotency_key:
            await idempotency.remember_post(ctx, tx, author.id, idempotency_key, post_id)
    if poll is not None:
        ctx.wakeups.notify(POLLS)
    log.info("post %s created by %s (%s)", post.uri, author.username, post.visibility)
    return post


async def _attachable_uploads(ctx: Context, author: Actor, upload_ids: tuple[int, ...], *,
                              already: int = 0) -> list[upload_store.Upload]:
    """The uploads in the order given, once each is the author's and unattached (else PostingError)."""
    if not upload_ids:
        return []
    if len(set(upload_ids)) != len(upload_ids):
        raise PostingError("the same picture is attached twice")
    if already + len(upload_ids) > MAX_PICTURES:
        raise PostingError(f"a post may have at most {MAX_PICTURES} pictures")
    found = await upload_store.uploads_by_id(ctx.db.reader, list(upload_ids))
    for upload_id in upload_ids:
        upload = found.get(upload_id)
        if upload is None or upload.actor_id != author.id:
            raise PostingError(f"media {upload_id} does not exist or is not yours")
        if upload.post_id is not None:
            raise PostingError(f"media {upload_id} is already attached to a post")
        if upload.state == "processing":  # Mastodon's words for it
            raise PostingError("cannot attach files that have not finished processing; try again in a moment")
        if upload.state != "ready":
            raise PostingError(f"media {upload_id} could not be processed: {upload.error or 'upload it again'}")
    chosen = [found[upload_id] for upload_id in upload_ids]
    # As in the web form (and Mastodon): a video or audio file is the post's one attachment.
    if any(u.kind != "image" for u in chosen) and already + len(chosen) > 1:
        raise PostingError("a post may have pictures or one video or audio file, not both")
    return chosen


def upload_attachment(ctx: Context, upload: upload_store.Upload, position: int) -> Attachment:
    media = f"{ctx.urls.base}/media/"
    return Attachment(position=position, media_type=upload.content_type, url=media + upload.file_id,
                      description=upload.description or None, width=upload.width or None,
                      height=upload.height or None, thumb_url=media + upload.thumb_id if upload.thumb_id else None,
                      thumb_width=upload.thumb_width or None, thumb_height=upload.thumb_height or None,
                      blur_url=media + upload.blur_id if upload.blur_id else None, blurhash=upload.blurhash,
                      duration=upload.duration, looping=upload.kind == "gifv")


@dataclass(frozen=True)
class _StoredPicture:
    """A cleaned picture, its thumbnail and blurhash picture, each a file under the media directory."""
    media_id: str
    image: CleanImage
    description: str
    preview: Preview
    thumb_id: str
    blur_id: str

    def files(self) -> list[tuple[str, bytes, str]]:
        """(media id, bytes, content type) of the three files."""
        return [(self.media_id, self.image.data, self.image.content_type),
                (self.thumb_id, self.preview.data, "image/webp"), (self.blur_id, self.preview.blur_png, "image/png")]


async def store_picture(ctx: Context, picture: Picture) -> _StoredPicture:
    """One picture checked, cleaned and written as a new post's are (for uploads made before the
    post: services/uploads.py); raises PostingError."""
    return (await _store_pictures(ctx, (picture,)))[0]


async def _store_pictures(ctx: Context, pictures: tuple[Picture, ...]) -> list[_StoredPicture]:
    """Check, clean (no metadata, in the image worker: fedserver/image_worker.py, which also makes the
    thumbnail timelines show and the blurhash) and write a new post's pictures, before its
    transaction. A picture that fails stops the post."""
    if len(pictures) > MAX_PICTURES:
        raise PostingError(f"a post may have at most {MAX_PICTURES} pictures")
    stored = []
    for number, picture in enumerate(pictures, start=1):
        if len(picture.data) > MAX_PICTURE_BYTES:
            raise PostingError(f"picture {number} is larger than {MAX_PICTURE_BYTES // (1024 * 1024)} MB")
        try:
            image, preview = await ctx.image_worker.clean_with_preview(picture.data)
        except InvalidImage as exc:
            raise PostingError(f"picture {number}: {exc}") from None
        description = picture.description.strip()[:MAX_DESCRIPTION]
        stored.append(_StoredPicture(f"{secrets.token_hex(16)}.{image.extension}", image, description, preview,
                                     f"{secrets.token_hex(16)}.webp", f"{secrets.token_hex(16)}.png"))
    for stored_picture in stored:
        for media_id, data, _ in stored_picture.files():
            await asyncio.to_thread(ctx.media.write, media_id, data)
    return stored


async def _store_video_or_audio(ctx: Context, draft: Draft) -> av_uploads.StoredMedia | None:
    upload = draft.video_or_audio
    if upload is None:
        return None
    if draft.pictures:  # as on Mastodon: a video or audio file is the post's one attachment
        raise PostingError("a post may have pictures or one video or audio file, not both")
    try:
        return await av_uploads.store_upload(ctx, upload.data, upload.description)
    except InvalidMedia as exc:
        raise PostingError(f"video or audio file: {exc}") from None


async def _own_post(ctx: Context, username: str, post_uri: str) -> tuple[Actor, Post]:
    author = await require_local_actor(ctx, username)
    post = await post_store.get_post_by_uri(ctx.db.reader, post_uri)
    if post is None or post.actor_id != author.id:
        raise PostingError(f"{username} has no post {post_uri}")
    if post.is_deleted:
        raise PostingError(f"{post_uri} was already deleted")
    return author, post


async def edit_post(ctx: Context, username: str, post_uri: str, draft: Draft) -> Post:
    """Change a post's text or content warning; its visibility and reply target stay as written."""
    author, post = await _own_post(ctx, username, post_uri)
    # Sensitive without a warning stays so unless the edit says otherwise (a warning always is).
    sensitive = draft.sensitive if draft.sensitive is not None else bool(post.sensitive and not post.summary)
    draft = Draft(text=draft.text, visibility=post.visibility, content_warning=draft.content_warning,
                  language=draft.language or post.language, edit_media=draft.edit_media, sensitive=sensitive)
    html, mentions, tags, _ = await _prepare(ctx, author, draft)
    media_change = await _media_change(ctx, author, post, draft.edit_media)
    now = ctx.clock.now_iso()
    unused: list[str] = []
    async with ctx.db.transaction() as tx:
        # Deleted since _own_post looked (a Delete in another tab, or another process): an edit
        # written now would put the content back into the deleted post and send an Update after
        # its Delete.
        if not await post_store.lock_live_post(tx, post.id):
            raise PostingError(f"{post_uri} was already deleted")
        if media_change is not None:
            unused = await _apply_media_change(ctx, tx, author, post, media_change)
        audience = addressing(post.visibility, author.followers_url or "", [m.uri for m in mentions])
        # Recipients of the original keep receiving the edit even if no longer mentioned.
        old_mentions = await post_store.list_mentioned_actor_ids(tx, post.id)
        await post_store.update_post_content(
            tx, post.id, content_html=html, content_text=html_to_text(html), source_text=draft.text.strip(),
            summary=(draft.content_warning or "").strip() or None,
            sensitive=bool((draft.content_warning or "").strip()) or bool(draft.sensitive), language=draft.language,
            visibility=post.visibility, audience=audience, edited_at=now, now=now)
        await post_store.set_mentions(tx, post.id, [m.id for m in mentions])
        await post_store.set_tags(tx, post.id, tags)
        updated = await post_store.get_post(tx, post.id)
        assert updated is not None
        dropped = [a for a in [await actor_store.get_actor(tx, i) for i in old_mentions]
                   if a is not None and a.id not in (m.id for m in mentions)]
        await _federate_post(ctx, tx, author, updated, mentions, "Update", extra_recipients=dropped)
        await events.status_edited(ctx, tx, post.id)
    for media_id in unused:
        await asyncio.to_thread(ctx.media.delete, media_id)
    return updated


@dataclass(frozen=True)
class _MediaChange:
    kept: list[tuple[int, Attachment]]  # (new position, current attachment)
    added: list[tuple[int, upload_store.Upload]]  # (position, upload)
    removed: list[Attachment]


async def _media_change(ctx: Context, author: Actor, post: Post,
                        wanted: tuple[tuple[str, int], ...] | None) -> _MediaChange | None:
    """An edit's new set of media, checked before its transaction (PostingError when a kept one
    is not the post's, or an upload is not the author's or already attached)."""
    if wanted is None:
        return None
    if len(wanted) > MAX_PICTURES:
        raise PostingError(f"a post may have at most {MAX_PICTURES} pictures")
    current = {a.position: a for a in (await attachment_store.attachments_for(ctx.db.reader, [post.id])).get(post.id, [])}
    uploads = {u.id: u for u in await _attachable_uploads(ctx, author, tuple(i for kind, i in wanted if kind == "upload"))}
    kept: list[tuple[int, Attachment]] = []
    added: list[tuple[int, upload_store.Upload]] = []
    for position, (kind, value) in enumerate(wanted):
        if kind == "kept":
            if value not in current or value in (a.position for _, a in kept):
                raise PostingError("a media id names no attachment of this post")
            kept.append((position, current[value]))
        else:
            added.append((position, uploads[value]))
    kept_positions = {a.position for _, a in kept}
    return _MediaChange(kept, added, [a for p, a in current.items() if p not in kept_positions])


async def _apply_media_change(ctx: Context, tx: aiosqlite.Connection, author: Actor, post: Post,
                              change: _MediaChange) -> list[str]:
    """Write the edit's media; the media ids (files) no longer used, for removal after the commit."""
    if change.added and not await upload_store.attach(tx, author.id, [u.id for _, u in change.added], post.id):
        raise PostingError("a picture was attached to another post meanwhile")
    attachments = [replace(a, position=p) for p, a in change.kept]
    attachments += [upload_attachment(ctx, u, p) for p, u in change.added]
    await attachment_store.replace_attachments(tx, post.id, sorted(attachments, key=lambda a: a.position))
    # Pictures taken off the post go as a deleted post's do: not served from the commit on.
    media_prefix = f"{ctx.urls.base}/media/"
    gone = [url[len(media_prefix):] for a in change.removed for url in (a.url, a.thumb_url, a.blur_url)
            if url and url.startswith(media_prefix)]
    await web_store.delete_media(tx, gone)
    return gone


async def set_post_excluded(ctx: Context, username: str, post_uri: str, excluded: bool) -> Post:
    """Keep one post out of (or let it back into) the training corpus. Peers learn of it through
    an Update carrying the post's own signal."""
    author, post = await _own_post(ctx, username, post_uri)
    async with ctx.db.transaction() as tx:
        await post_store.set_corpus_excluded(tx, post.id, excluded, ctx.clock.now_iso())
        updated = await post_store.get_post(tx, post.id)
        assert updated is not None
        mention_ids = await post_store.list_mentioned_actor_ids(tx, post.id)
        mentions = [a for a in [await actor_store.get_actor(tx, i) for i in mention_ids] if a is not None]
        await _federate_post(ctx, tx, author, updated, mentions, "Update")
    return updated


async def delete_post(ctx: Context, username: str, post_uri: str) -> None:
    author, post = await _own_post(ctx, username, post_uri)
    media_prefix = f"{ctx.urls.base}/media/"
    async with ctx.db.transaction() as tx:
        # The post's pictures go with it: not served from the commit on, their files removed after.
        pictures = (await attachment_store.attachments_for(tx, [post.id])).get(post.id, [])
        media_ids = [url[len(media_prefix):] for a in pictures for url in (a.url, a.thumb_url, a.blur_url)
                     if url and url.startswith(media_prefix)]
        await web_store.delete_media(tx, media_ids)
        mention_ids = await post_store.list_mentioned_actor_ids(tx, post.id)
        mentions = [a for a in [await actor_store.get_actor(tx, i) for i in mention_ids] if a is not None]
        activity = as2.delete_note_activity(post, author, f"{post.uri}#delete")
        inboxes = _delivery_inboxes(post.visibility, mentions, await outbox.follower_inboxes(tx, author))
        if not await post_store.mark_post_deleted(tx, post.id, ctx.clock.now_iso()):
            # Deleted by another request (a second click reaching another process) since the look
            # above: its Delete is on its way; this one would be the same activity id again.
            raise PostingError(f"{post_uri} was already deleted")
        await events.status_deleted(ctx, tx, post.id)
        await outbox.publish(ctx, tx, actor=author, activity=activity, inboxes=inboxes,
                             is_public=post.visibility in ("public", "unlisted"))
    for media_id in media_ids:
        await asyncio.to_thread(ctx.media.delete, media_id)
    log.info("post %s deleted by %s", post.uri, author.username)
