"""One open streaming connection (an event stream or a WebSocket) and what it sends: it takes
events from the process's EventHub without ever making the hub wait, and in its own task (pump)
asks services/streams.py what each event means for each of its streams, renders the payload as the
REST API would (Mastodon's entities, as a JSON string) and writes it. A reader that falls
`[server] streaming_queue_events` behind is disconnected."""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable

import orjson
from aiohttp import web

from fedserver.api import ids, notifications, serializers
from fedserver.api.statuses import statuses_json
from fedserver.client_address import request_client_address
from fedserver.context import Context
from fedserver.services import directory, oauth, streams, timelines
from fedserver.services import scopes as scope_rules
from fedserver.services.oauth import Caller
from fedserver.services.streams import Delivery, Stream
from fedserver.store.actors import Actor
from fedserver.store.stream_events import StreamEvent

log = logging.getLogger(__name__)

# Mastodon's streaming server writes ":thump" every 15 s on event streams.
SSE_HEARTBEAT_SECONDS = 15.0
# How often an open stream checks that its token is still valid (revoked tokens also end streams
# at once, through a `tokens` event).
RECHECK_TOKEN_SECONDS = 30.0
# Events meant for one person (stream_events.actor_id): other people's connections skip them at once.
PERSONAL_EVENTS = ("notification", "filters", "tokens")

Send = Callable[[Stream, str, str | None], Awaitable[None]]


class StreamConnection:
    """One open connection (an event stream or a socket) with its streams: takes events from the
    hub without waiting, and renders and sends them in its own task (pump)."""

    def __init__(self, ctx: Context, caller: Caller, send: Send, request: web.Request) -> None:
        self.ctx, self.caller, self._send, self._request = ctx, caller, send, request
        self.streams: dict[Stream, None] = {}
        self.queue: asyncio.Queue[StreamEvent] = asyncio.Queue(ctx.settings.server.streaming_queue_events)
        self.dropped = False
        self.ended = False  # its token stopped working

    @property
    def who(self) -> str:
        actor = self.caller.actor
        return f"{actor.username} ({self.caller.app.name})" if actor is not None else f"app {self.caller.app.name}"

    def offer(self, event: StreamEvent) -> None:
        if self.dropped:
            return
        viewer = self.caller.actor
        if event.kind in PERSONAL_EVENTS and event.actor_id is not None \
                and (viewer is None or event.actor_id != viewer.id):
            return  # someone else's: it never takes a place in this connection's queue
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.drop()

    def drop(self) -> None:
        """Disconnect a reader that fell behind: closing the connection ends its pending write."""
        self.dropped = True
        log.info("stream of %s from %s dropped: it fell %d events behind", self.who,
                 request_client_address(self._request), self.queue.qsize())
        transport = self._request.transport
        if transport is not None:
            transport.abort()

    async def pump(self, *, heartbeat: Callable[[], Awaitable[None]] | None = None,
                   heartbeat_seconds: float = SSE_HEARTBEAT_SECONDS) -> None:
        """Render and send events until the connection ends (ConnectionError) or is dropped."""
        loop = asyncio.get_running_loop()
        next_check = loop.time() + RECHECK_TOKEN_SECONDS
        while not self.dropped and not self.ended:
            try:
                event = await asyncio.wait_for(self.queue.get(), heartbeat_seconds)
            except asyncio.TimeoutError:
                if heartbeat is not None:
                    await heartbeat()
            else:
                await self._deliver(event)
            if self.ended:
                log.info("stream of %s ended: its token was revoked", self.who)
                return
            if loop.time() >= next_check:
                next_check = loop.time() + RECHECK_TOKEN_SECONDS
                if not await self._token_still_valid():
                    log.info("stream of %s ended: its token is no longer valid", self.who)
                    return

    async def _token_still_valid(self) -> bool:
        token = self._request.get("stream_token")
        return bool(token) and await oauth.caller_for_token(self.ctx, token) is not None

    async def _deliver(self, event: StreamEvent) -> None:
        viewer = self.caller.actor
        if event.kind == "tokens":
            if event.actor_id is None or (viewer is not None and event.actor_id == viewer.id):
                self.ended = not await self._token_still_valid()
            return
        may_read_notifications = scope_rules.satisfies(self.caller.scopes, ("read:notifications",))
        for stream in list(self.streams):
            try:
                delivery = await streams.delivery_for(self.ctx, stream, viewer, event,
                                                      notifications=may_read_notifications)
                if delivery is None:
                    continue
                rendered = await _render(self.ctx, viewer, delivery)
            except Exception:
                # One event that cannot be shown must not end the stream.
                log.exception("stream event %d (%s) for %s could not be rendered", event.id, event.kind, self.who)
                continue
            if rendered is not None:
                await self._send(stream, delivery.event, rendered if rendered != "" else None)


async def _render(ctx: Context, viewer: Actor | None, delivery: Delivery) -> str | None:
    """The payload as a JSON text ("" for an event without one); None when there is nothing to send."""
    if delivery.event in ("update", "status.update") and delivery.card is not None:
        return orjson.dumps((await statuses_json(ctx, [delivery.card], viewer))[0]).decode()
    if delivery.event == "notification" and delivery.notification is not None and viewer is not None:
        body = await notifications.notification_json(ctx, viewer, delivery.notification)
        return orjson.dumps(body).decode() if body is not None else None
    if delivery.event == "delete" and delivery.post_id is not None:
        return ids.encode(delivery.post_id)
    if delivery.event == "conversation" and delivery.card is not None and viewer is not None:
        return orjson.dumps(await _conversation(ctx, viewer, delivery)).decode()
    if delivery.event == "filters_changed":
        return ""
    return None


async def _conversation(ctx: Context, viewer: Actor, delivery: Delivery) -> dict[str, Any]:
    """Mastodon's Conversation entity for a direct post: its other participants and the post."""
    card = delivery.card
    assert card is not None
    status = (await statuses_json(ctx, [card], viewer))[0]
    others = [m for m in status["mentions"] if m["id"] != ids.encode(viewer.id)]
    accounts = [status["account"]] if card.author.id != viewer.id else []
    for mention in others:
        actor = await timelines.actor_by_id(ctx, int(mention["id"]))
        if actor is not None:
            accounts.append(serializers.account(await directory.account_view(ctx, actor, viewer), ctx.urls))
    return {"id": status["id"], "unread": card.author.id != viewer.id, "accounts": accounts, "last_status": status}
