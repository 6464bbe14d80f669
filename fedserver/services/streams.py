"""What reaches which live stream (the streaming API's `user`, `public`, `hashtag`, `list`, `direct`
streams): each event is checked for each listening person by reading the same timeline the REST
API pages, at the event's own place. A post reaches a stream exactly when it would be on that
timeline for that person (visibility, blocks, mutes, moderation, exclusive lists, keyword filters:
one set of rules); a notification exactly when the notification list would show it."""
from __future__ import annotations

from dataclasses import dataclass, replace

from fedserver.context import Context
from fedserver.services import audience, lists, timelines
from fedserver.services.timelines import Notification, PostCard
from fedserver.store import follows as follow_store
from fedserver.store import note_batches
from fedserver.store.actors import Actor
from fedserver.store.stream_events import StreamEvent

PUBLIC = ("public", "public:local", "public:remote", "public:media", "public:local:media", "public:remote:media")
HASHTAG = ("hashtag", "hashtag:local")
# Streams that belong to a person (an app-only token cannot open them).
PERSONAL = ("user", "user:notification", "list", "direct")
NAMES = (*PERSONAL, *PUBLIC, *HASHTAG)
MAX_TAG = 100


class StreamError(Exception):
    """A stream that cannot be opened (unknown, without its tag or list, someone else's list)."""


@dataclass(frozen=True)
class Stream:
    name: str
    tag: str | None = None
    list_id: int | None = None

    @property
    def wire_name(self) -> list[str]:
        """The `stream` field of WebSocket messages, as Mastodon names it."""
        if self.name in HASHTAG:
            return [self.name, self.tag or ""]
        if self.name == "list":
            return [self.name, str(self.list_id)]
        return [self.name]

    @property
    def needs_notifications_scope(self) -> bool:
        return self.name == "user:notification"


async def open_stream(ctx: Context, viewer: Actor | None, name: str, *, tag: str | None = None,
                      list_id: str | None = None) -> Stream:
    """The stream, checked: a known name, its tag or (the viewer's own) list."""
    if name not in NAMES:
        raise StreamError("Unknown stream type")
    if name in PERSONAL and viewer is None:
        raise StreamError("This stream requires an authenticated user")
    if name in HASHTAG:
        cleaned = (tag or "").strip().lstrip("#").lower()
        if not cleaned or len(cleaned) > MAX_TAG:
            raise StreamError("No tag for stream provided")
        return Stream(name, tag=cleaned)
    if name == "list":
        if not (list_id or "").isdigit() or viewer is None:
            raise StreamError("Not authorized to stream this list")
        try:
            found = await lists.get_list(ctx, viewer, int(list_id or 0))
        except lists.ListError:
            raise StreamError("Not authorized to stream this list") from None
        return Stream(name, list_id=found.id)
    return Stream(name)


@dataclass
class Delivery:
    """One message for one stream: the event name and what it is about."""
    event: str  # update | status.update | delete | notification | conversation | filters_changed
    card: PostCard | None = None
    notification: Notification | None = None
    post_id: int | None = None


async def delivery_for(ctx: Context, stream: Stream, viewer: Actor | None, event: StreamEvent, *,
                     notifications: bool) -> Delivery | None:
    """What the event means for this person's stream, or None when it does not reach it.
    notifications: whether the user stream carries notifications (the token may read them)."""
    kind = event.kind
    if kind == "notification":
        if viewer is None or event.actor_id != viewer.id or event.subject_id is None:
            return None
        if stream.name == "user:notification" or (stream.name == "user" and notifications):
            item = await _notification(ctx, viewer, event.subject_id)
            return Delivery("notification", notification=item) if item is not None else None
        return None
    if kind == "filters":
        if viewer is not None and event.actor_id == viewer.id and stream.name == "user":
            return Delivery("filters_changed")
        return None
    if event.subject_id is None or event.sort_id is None or stream.name == "user:notification":
        return None
    if kind == "delete":
        return Delivery("delete", post_id=event.subject_id) if await _had(ctx, stream, viewer, event) else None
    if kind == "boost" and stream.name not in ("user", "list"):
        return None  # boosts show on home and list timelines only (Mastodon too)
    card = await _card_on(ctx, stream, viewer, event.sort_id, event.subject_id)
    if card is None:
        return None
    if stream.name == "direct":
        return Delivery("conversation", card=card)
    return Delivery("status.update" if kind == "edit" else "update", card=card)


async def _card_on(ctx: Context, stream: Stream, viewer: Actor | None, sort_id: int,
                   post_id: int) -> PostCard | None:
    """The post's card if it is on the stream's timeline at its place, as this person sees it."""
    before = sort_id + 1
    name = stream.name
    if name == "user" and viewer is not None:
        page = await timelines.home(ctx, viewer, max_id=before, limit=1)
    elif name == "list" and viewer is not None and stream.list_id is not None:
        try:
            page = await lists.timeline(ctx, viewer, stream.list_id, max_id=before, limit=1)
        except lists.ListError:
            return None  # the list was deleted while streamed
    elif name in PUBLIC:
        local = ":remote" not in name
        remote = ":local" not in name
        page = await timelines.public(ctx, viewer, local=local, remote=remote, max_id=before, limit=1)
    elif name in HASHTAG and stream.tag is not None:
        page = await timelines.tagged(ctx, stream.tag, viewer, max_id=before, limit=1)
    elif name == "direct" and viewer is not None:
        return await _direct(ctx, viewer, post_id)
    else:
        return None
    card = next((c for c in page.cards if c.sort_id == sort_id and c.post.id == post_id), None)
    if card is None:
        return None
    if name.endswith(":media") and not card.attachments:
        return None
    if name == "hashtag:local" and not card.post.is_local:
        return None
    return card


async def _direct(ctx: Context, viewer: Actor, post_id: int) -> PostCard | None:
    post = await timelines.post_by_id(ctx, post_id)
    if post is None or post.is_deleted or post.visibility != "direct" or not await audience.may_see(ctx, post, viewer):
        return None
    cards = await timelines.cards_for(ctx, viewer, [(post.id, post, None)])
    cards = await timelines.apply_filters(ctx, viewer, cards, "thread")
    return cards[0] if cards else None


async def _had(ctx: Context, stream: Stream, viewer: Actor | None, event: StreamEvent) -> bool:
    """Whether the deleted post could have been on this stream for this person: they could see it
    (as it was), hide nothing of its author, and it fits the stream."""
    post = await timelines.post_by_id(ctx, event.subject_id or 0)
    if post is None:
        return False
    if not await audience.may_see(ctx, replace(post, deleted_at=None), viewer):
        return False
    if viewer is not None and post.actor_id in await follow_store.hidden_ids(ctx.db.reader, viewer.id):
        return False
    name = stream.name
    if name in PUBLIC or name in HASHTAG:
        if post.visibility != "public" or (":local" in name and not post.is_local) \
                or (":remote" in name and post.is_local):
            return False
        if name in HASHTAG:
            tags = (await note_batches.tags(ctx.db.reader, [post.id])).get(post.id, [])
            return stream.tag in [t.lower() for t in tags]
        return True
    if name == "direct":
        return post.visibility == "direct"
    return name in ("user", "list")


async def _notification(ctx: Context, viewer: Actor, notification_id: int) -> Notification | None:
    # The page just below id + 1 starts with the notification itself, if the list shows it.
    page = await timelines.notifications(ctx, viewer, max_id=notification_id + 1, limit=1)
    return next((item for item in page.items if item.id == notification_id), None)
