"""Mastodon's streaming API: the WebSocket at /api/v1/streaming (streams chosen with ?stream= and
subscribe/unsubscribe messages) and the server-sent-event forms /api/v1/streaming/user, /public,
/hashtag ..., plus /api/v1/streaming/health. Messages are Mastodon's: `update`, `status.update`,
`notification`, `delete`, `conversation` and `filters_changed` events, the payload a JSON string.

Each open connection (api/stream_connection.py) is a listener of the process's EventHub
(services/events.py), which hears of events written by any process; what reaches which stream is
decided in services/streams.py. This module authenticates, opens and bounds connections. Bounds:
streams per token and per client address, subscriptions per WebSocket, and events waiting per
connection: a reader that falls that far behind is disconnected, never buffered without limit, so
one slow reader cannot hold up the others (the hub never waits for a connection)."""
from __future__ import annotations

import asyncio
import logging
import socket
from collections import Counter
from typing import Any, Awaitable, Callable, Mapping

import orjson
from aiohttp import WSMsgType, web

from fedserver.api.errors import ApiError
from fedserver.api.routing import CORS_HEADERS, bearer_token
from fedserver.api.stream_connection import StreamConnection
from fedserver.client_address import request_client_address
from fedserver.context import CTX_KEY, Context
from fedserver.services import oauth, streams
from fedserver.services import scopes as scope_rules
from fedserver.services.events import EventHub
from fedserver.services.oauth import Caller
from fedserver.services.streams import Stream, StreamError

log = logging.getLogger(__name__)

# Mastodon's streaming server: a ping every 30 s on sockets (":thump" on event streams: stream_connection).
WS_HEARTBEAT_SECONDS = 30.0
# Subscriptions one socket may hold, and the size of a message a client may send (a subscribe
# message is a few dozen bytes).
MAX_SUBSCRIPTIONS = 32
MAX_CLIENT_MESSAGE = 4096
# Unsent bytes one stream's connection may hold in this process before its writes wait.
STREAM_WRITE_BUFFER = 16 * 1024
# The kernel's send buffer of a stream's socket (a stream carries small events; a large buffer
# would only hide a reader that stopped reading). Plenty for live events over slow links.
STREAM_SOCKET_BUFFER = 64 * 1024

# The event-stream paths and the stream each opens (Mastodon's streaming server's routes).
SSE_PATHS = {
    "user": "user", "user/notification": "user:notification", "public": "public", "public/local": "public:local",
    "public/remote": "public:remote", "hashtag": "hashtag", "hashtag/local": "hashtag:local", "list": "list",
    "direct": "direct",
}



class ConnectionLimits:
    """Open streams per token and per client address, in this process."""

    def __init__(self, per_token: int, per_address: int) -> None:
        self.per_token, self.per_address = per_token, per_address
        self._tokens: Counter[str] = Counter()
        self._addresses: Counter[str] = Counter()

    def acquire(self, token_key: str, address: str) -> bool:
        if self._tokens[token_key] >= self.per_token or self._addresses[address] >= self.per_address:
            return False
        self._tokens[token_key] += 1
        self._addresses[address] += 1
        return True

    def release(self, token_key: str, address: str) -> None:
        for counter, key in ((self._tokens, token_key), (self._addresses, address)):
            counter[key] -= 1
            if counter[key] <= 0:
                del counter[key]


class StreamingState:
    """This process's hub and limits, made with the first stream (the context exists only once the
    app has started) and stopped with the app."""

    def __init__(self) -> None:
        self.hub: EventHub | None = None
        self.limits: ConnectionLimits | None = None

    def hub_for(self, ctx: Context) -> EventHub:
        if self.hub is None:
            self.hub = EventHub(ctx)
            self.hub.start()
        return self.hub

    def limits_for(self, ctx: Context) -> ConnectionLimits:
        if self.limits is None:
            server = ctx.settings.server
            self.limits = ConnectionLimits(server.streaming_connections_per_token,
                                           server.streaming_connections_per_address)
        return self.limits


STATE_KEY = web.AppKey("streaming", StreamingState)


# --- authentication ------------------------------------------------------------------------

def _token_of(request: web.Request) -> tuple[str | None, bool]:
    """The access token and whether it came as the WebSocket protocol (Mastodon accepts the
    Authorization header, the access_token parameter and Sec-WebSocket-Protocol)."""
    token = bearer_token(request) or request.query.get("access_token", "").strip()
    if token:
        return token, False
    protocol = request.headers.get("Sec-WebSocket-Protocol", "").split(",")[0].strip()
    return (protocol, True) if protocol else (None, False)


async def _authenticate(request: web.Request, ctx: Context) -> tuple[Caller, str, bool]:
    token, as_protocol = _token_of(request)
    if not token:
        raise ApiError(401, "Missing access token")
    caller = await oauth.caller_for_token(ctx, token)
    if caller is None:
        raise ApiError(401, "Invalid access token")
    if not scope_rules.satisfies(caller.scopes, ("read:statuses",)) \
            and not scope_rules.satisfies(caller.scopes, ("read:notifications",)):
        raise ApiError(401, "Access token does not have the required scopes")
    request["stream_token"] = token
    return caller, token, as_protocol


def _check_scope(caller: Caller, stream: Stream) -> None:
    # Mastodon's streaming server: read:notifications for user:notification, read:statuses for the rest.
    needed = ("read:notifications",) if stream.needs_notifications_scope else ("read:statuses",)
    if not scope_rules.satisfies(caller.scopes, needed):
        raise StreamError("Access token does not have the required scopes")


async def _open(ctx: Context, caller: Caller, name: str, params: Mapping[str, str]) -> Stream:
    stream = await streams.open_stream(ctx, caller.actor, name, tag=params.get("tag"), list_id=params.get("list"))
    _check_scope(caller, stream)
    return stream


def _stream_status(message: str) -> int:
    return 401 if "scopes" in message or "authenticated" in message else 400


class _Admitted:
    """The connection's place in the per-token and per-address limits, held while it is open."""

    def __init__(self, request: web.Request, token: str) -> None:
        self.limits = request.app[STATE_KEY].limits_for(request.app[CTX_KEY])
        self.key = oauth.secret_hash(token)  # counted by hash: no token is kept in memory as a key
        self.address = request_client_address(request)
        if not self.limits.acquire(self.key, self.address):
            raise ApiError(429, "Too many streaming connections")

    def release(self) -> None:
        self.limits.release(self.key, self.address)


# --- event streams (SSE) -------------------------------------------------------------------

async def event_stream(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX_KEY]
    path = request.match_info.get("path", "").strip("/")
    name = SSE_PATHS.get(path) if path else request.query.get("stream")
    if name is None:
        raise ApiError(404, "Not found")
    if name.startswith("public") and request.query.get("only_media", "").lower() in ("1", "true"):
        name += ":media"
    caller, token, _ = await _authenticate(request, ctx)
    try:
        stream = await _open(ctx, caller, name, request.query)
    except StreamError as exc:
        status = _stream_status(str(exc))
        raise ApiError(404 if str(exc) == "Unknown stream type" else status, str(exc)) from None
    admitted = _Admitted(request, token)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                           "X-Accel-Buffering": "no", **CORS_HEADERS})
    hub = request.app[STATE_KEY].hub_for(ctx)

    async def send(_: Stream, event: str, payload: str | None) -> None:
        # Mastodon writes the payload as it is ("undefined" for an event without one).
        await response.write(f"event: {event}\ndata: {payload if payload is not None else 'undefined'}\n\n"
                             .encode())

    async def heartbeat() -> None:
        await response.write(b":thump\n")

    connection = StreamConnection(ctx, caller, send, request)
    connection.streams[stream] = None
    try:
        await response.prepare(request)
        _bound_buffer(request)
        await response.write(b":)\n")
        await hub.add(connection)
        await connection.pump(heartbeat=heartbeat)
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        hub.remove(connection)
        admitted.release()
    return response


# --- the WebSocket -------------------------------------------------------------------------

async def websocket(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX_KEY]
    ws_ready = web.WebSocketResponse(protocols=()).can_prepare(request)
    if not ws_ready.ok:
        return await event_stream(request)
    caller, token, as_protocol = await _authenticate(request, ctx)
    admitted = _Admitted(request, token)
    ws = web.WebSocketResponse(heartbeat=WS_HEARTBEAT_SECONDS, max_msg_size=MAX_CLIENT_MESSAGE,
                               protocols=(token,) if as_protocol else ())
    hub = request.app[STATE_KEY].hub_for(ctx)

    async def send(stream: Stream, event: str, payload: str | None) -> None:
        message: dict[str, Any] = {"stream": stream.wire_name, "event": event}
        if payload is not None:
            message["payload"] = payload
        await ws.send_str(orjson.dumps(message).decode())

    async def say_error(message: str, status: int) -> None:
        await ws.send_str(orjson.dumps({"error": message, "status": status}).decode())

    connection = StreamConnection(ctx, caller, send, request)
    pump: asyncio.Task | None = None
    try:
        await ws.prepare(request)
        _bound_buffer(request)
        await hub.add(connection)
        pump = asyncio.create_task(connection.pump(heartbeat_seconds=WS_HEARTBEAT_SECONDS), name="stream-pump")
        # A pump that ends (token revoked) closes the socket, which ends the read loop below.
        pump.add_done_callback(lambda _: None if ws.closed or connection.dropped
                               else asyncio.ensure_future(_close_quietly(ws)))
        if request.query.get("stream"):
            await _subscribe(ctx, connection, request.query.get("stream", ""), request.query, say_error)
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            await _handle_message(ctx, connection, msg.data, say_error)
            if pump.done():
                break
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        hub.remove(connection)
        admitted.release()
        if pump is not None:
            pump.cancel()
            try:
                await pump
            except (asyncio.CancelledError, ConnectionError):
                pass
            except Exception:
                log.exception("stream of %s ended with an error", connection.who)
        if not ws.closed and not connection.dropped:
            await _close_quietly(ws)
    return ws


async def _close_quietly(ws: web.WebSocketResponse) -> None:
    try:
        await ws.close()
    except (ConnectionError, RuntimeError):
        pass  # the client went away first


async def _handle_message(ctx: Context, connection: StreamConnection, data: str,
                          say_error: Callable[[str, int], Awaitable[None]]) -> None:
    """{"type": "subscribe" | "unsubscribe", "stream": ..., "tag": ..., "list": ...}; anything else
    is ignored, as Mastodon ignores it."""
    try:
        message = orjson.loads(data)
    except orjson.JSONDecodeError:
        return
    if not isinstance(message, dict):
        return
    name = message.get("stream")
    if isinstance(name, list):
        name = name[0] if name else ""
    params = {key: str(message[key]) for key in ("tag", "list") if isinstance(message.get(key), (str, int))}
    if message.get("type") == "subscribe" and isinstance(name, str):
        await _subscribe(ctx, connection, name, params, say_error)
    elif message.get("type") == "unsubscribe" and isinstance(name, str):
        try:
            stream = await streams.open_stream(ctx, connection.caller.actor, name, tag=params.get("tag"),
                                               list_id=params.get("list"))
        except StreamError as exc:
            await say_error(str(exc), _stream_status(str(exc)))
            return
        connection.streams.pop(stream, None)


async def _subscribe(ctx: Context, connection: StreamConnection, name: str, params: Mapping[str, str],
                     say_error: Callable[[str, int], Awaitable[None]]) -> None:
    try:
        stream = await _open(ctx, connection.caller, name, params)
    except StreamError as exc:
        await say_error(str(exc), _stream_status(str(exc)))
        return
    if stream not in connection.streams and len(connection.streams) >= MAX_SUBSCRIPTIONS:
        await say_error("Too many subscriptions", 429)
        return
    connection.streams[stream] = None


def _bound_buffer(request: web.Request) -> None:
    """Hold little unsent data per stream, here and in the kernel: a reader that stops reading
    blocks its pump soon, and is dropped once its events pile up, instead of holding memory."""
    transport = request.transport
    if transport is None:
        return
    transport.set_write_buffer_limits(high=STREAM_WRITE_BUFFER)
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, STREAM_SOCKET_BUFFER)
        except OSError as exc:
            log.debug("could not bound a stream's socket buffer: %s", exc)


async def health(request: web.Request) -> web.Response:
    return web.Response(text="OK", content_type="text/plain")


def add_routes(app: web.Application) -> None:
    """The routes, and this process's streaming state (its hub stopped with the app)."""
    app[STATE_KEY] = StreamingState()
    for path in ("/api/v1/streaming", "/api/v1/streaming/"):
        app.router.add_get(path, websocket)
    app.router.add_get("/api/v1/streaming/health", health)
    app.router.add_get(r"/api/v1/streaming/{path:(user|user/notification|public|public/local|public/remote"
                       r"|hashtag|hashtag/local|list|direct)/?}", event_stream)

    async def stop(app: web.Application) -> None:
        hub = app[STATE_KEY].hub
        if hub is not None:
            await hub.stop()

    # Before the context is closed (build_app appends that cleanup after the routes are added).
    app.on_cleanup.append(stop)

