"""Statuses: create, get, edit (with source and history) and delete (delete returns `text`, for
"delete and redraft"); context; favourite, reblog and bookmark and their undoing; favourited_by
and reblogged_by; and turning any page of post cards into Status entities (statuses_json)."""
from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from fedserver.api import ids, serializers
from fedserver.api.errors import ApiError, json_response
from fedserver.api.pagination import COUNTER_SPAN, SNOWFLAKE_SPAN, link_header, page_request, read_page
from fedserver.api.routing import ApiCall, ApiRoutes
from fedserver.context import Context
from fedserver.services import audience, bookmarks, directory, interactions, pins, post_details, posting, timelines
from fedserver.services import idempotency, posting_defaults
from fedserver.services.interactions import InteractionError
from fedserver.services.posting import Draft, PollDraft, PostingError
from fedserver.services.timelines import PostCard
from fedserver.store.actors import Actor
from fedserver.store.posts import Post

routes = ApiRoutes()

# ISO 639-1/-3, optionally with a region (pt-BR): it becomes a contentMap key on the wire.
LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$")


async def statuses_json(ctx: Context, cards: list[PostCard], viewer: Actor | None, *,
                        with_text: bool = False) -> list[dict[str, Any]]:
    page = await post_details.details_for(ctx, cards, viewer)
    return [serializers.status(card, page, ctx.urls, viewer, with_text=with_text) for card in cards]


async def visible_post(call: ApiCall, text_id: str | None) -> Post:
    """A live post the caller may see, else 404 (never 403: whether it exists is not told)."""
    post = await timelines.post_by_id(call.ctx, ids.require(text_id))
    if post is None or post.is_deleted or not await audience.may_see(call.ctx, post, call.viewer):
        raise ApiError(404, "Record not found")
    return post


async def _one(call: ApiCall, post: Post, *, with_text: bool = False) -> web.Response:
    card = await timelines.card_of(call.ctx, post, call.viewer)
    return json_response((await statuses_json(call.ctx, [card], call.viewer, with_text=with_text))[0])


@routes.get(r"/api/v1/statuses/{id:\d+}", auth="public", scope=("read:statuses",))
async def get_status(call: ApiCall) -> web.Response:
    return await _one(call, await visible_post(call, call.match("id")))


@routes.post("/api/v1/statuses", scope=("write:statuses",))
async def create_status(call: ApiCall) -> web.Response:
    ctx, me, params = call.ctx, call.me, call.params
    # Idempotency-Key: a retry answers with the post the first attempt made (services/idempotency.py).
    key = call.request.headers.get("Idempotency-Key", "")
    earlier_id = await idempotency.earlier_post_id(ctx, me.id, key) if key else None
    if earlier_id is not None:
        earlier = await timelines.post_by_id(ctx, earlier_id)
        if earlier is not None and not earlier.is_deleted:
            return await _one(call, earlier)
    upload_ids = _media_ids(params.list("media_ids"))
    # What the app leaves out, the person's posting defaults decide (Mastodon's PostStatusService).
    defaults = await posting_defaults.posting_defaults(ctx, me)
    visibility = serializers.VISIBILITY_IN.get(params.get("visibility")) if params.get("visibility") \
        else defaults.visibility
    if visibility is None:
        raise ApiError(422, "Validation failed: visibility must be public, unlisted, private or direct")
    language = params.get("language") or defaults.language
    if language is not None and not LANGUAGE.match(language):
        raise ApiError(422, "Validation failed: language must be an ISO 639 code such as en")
    reply_to = None
    if params.get("in_reply_to_id"):
        reply_to = (await visible_post(call, params.get("in_reply_to_id"))).uri
    # The author's "keep this post out of the training corpus" (fedserver's extension; it only
    # means something once the person consented to training, as on the web compose form).
    exclude = params.bool("exclude_from_corpus") and await timelines.training_allowed(ctx, me)
    try:
        post = await posting.create_post(ctx, me.username, Draft(
            text=params.text("status"), visibility=visibility, content_warning=params.get("spoiler_text") or None,
            reply_to=reply_to, language=language, exclude_from_corpus=exclude, upload_ids=upload_ids,
            poll=poll_draft(params), sensitive=params.bool("sensitive", defaults.sensitive)),
            idempotency_key=key or None)
    except PostingError as exc:
        raise ApiError(422, f"Validation failed: {exc}") from None
    return await _one(call, post)


def _media_ids(texts: list[str]) -> tuple[int, ...]:
    """media_ids[] as upload ids; more than the post may carry is refused before any is looked at."""
    if len(texts) > posting.MAX_PICTURES:
        raise ApiError(422, f"Validation failed: a post may have at most {posting.MAX_PICTURES} media attachments")
    found = tuple(ids.decode(text) for text in texts)
    if any(value is None for value in found):
        raise ApiError(422, "Validation failed: media_ids must be media ids")
    return found  # type: ignore[return-value]


def poll_draft(params) -> PollDraft | None:
    """poll[options][], poll[expires_in] (seconds), poll[multiple], poll[hide_totals]; the limits
    are the posting service's (422 with its message)."""
    options = params.list("poll[options]")
    if not options:
        return None
    expires_in = params.int("poll[expires_in]")
    if expires_in is None:
        raise ApiError(422, "Validation failed: poll[expires_in] is required")
    return PollDraft(options=tuple(options), expires_in=expires_in, multiple=params.bool("poll[multiple]"),
                     hide_totals=params.bool("poll[hide_totals]"))


@routes.delete(r"/api/v1/statuses/{id:\d+}", scope=("write:statuses",))
async def delete_status(call: ApiCall) -> web.Response:
    post = await own_post(call)  # someone else's post: 404, as Mastodon answers
    card = await timelines.card_of(call.ctx, post, call.viewer)
    body = (await statuses_json(call.ctx, [card], call.viewer, with_text=True))[0]
    try:
        await posting.delete_post(call.ctx, call.me.username, post.uri)
    except PostingError as exc:
        raise ApiError(404, str(exc)) from None
    return json_response(body)


@routes.get(r"/api/v1/statuses/{id:\d+}/context", auth="public", scope=("read:statuses",))
async def context(call: ApiCall) -> web.Response:
    """The ancestors and replies we hold that the caller may see (nothing is fetched here)."""
    post = await visible_post(call, call.match("id"))
    thread = await timelines.thread(call.ctx, post, call.viewer)
    cards = [*thread.ancestors, *thread.descendants]
    rendered = await statuses_json(call.ctx, cards, call.viewer)
    return json_response({"ancestors": rendered[:len(thread.ancestors)],
                          "descendants": rendered[len(thread.ancestors):]})


def _acting(action, *, undo: bool):
    """favourite/unfavourite/reblog/unreblog: the web's like and boost services, then the post as
    the caller now sees it. Undoing what was not done answers the post unchanged, as Mastodon does."""
    async def handle(call: ApiCall) -> web.Response:
        post = await visible_post(call, call.match("id"))
        try:
            await action(call.ctx, call.me.username, post.uri)
        except InteractionError as exc:
            if not undo:
                raise ApiError(422, f"Validation failed: {exc}") from None
        return await _one(call, post)
    handle.__name__ = action.__name__
    return handle


routes.post(r"/api/v1/statuses/{id:\d+}/favourite", scope=("write:favourites",))(
    _acting(interactions.like, undo=False))
routes.post(r"/api/v1/statuses/{id:\d+}/unfavourite", scope=("write:favourites",))(
    _acting(interactions.unlike, undo=True))
routes.post(r"/api/v1/statuses/{id:\d+}/unreblog", scope=("write:statuses",))(
    _acting(interactions.unboost, undo=True))


@routes.post(r"/api/v1/statuses/{id:\d+}/reblog", scope=("write:statuses",))
async def reblog(call: ApiCall) -> web.Response:
    """Answers the boost itself (a Status whose `reblog` is the post), as Mastodon does."""
    post = await visible_post(call, call.match("id"))
    try:
        await interactions.boost(call.ctx, call.me.username, post.uri)
    except InteractionError as exc:
        raise ApiError(422, f"Validation failed: {exc}") from None
    boost = await post_details.boost_id(call.ctx, call.me, post)
    card = await timelines.card_of(call.ctx, post, call.viewer)
    if boost is not None:
        card.boosted_by, card.sort_id = call.me, boost
    return json_response((await statuses_json(call.ctx, [card], call.viewer))[0])


async def own_post(call: ApiCall) -> Post:
    post = await visible_post(call, call.match("id"))
    if post.actor_id != call.me.id:
        raise ApiError(404, "Record not found")
    return post


@routes.put(r"/api/v1/statuses/{id:\d+}", scope=("write:statuses",))
async def edit_status(call: ApiCall) -> web.Response:
    """Text, content warning and language change; visibility and the reply stay as written (the
    web's edit rule). Followers and mentioned servers get an Update."""
    post = await own_post(call)
    params = call.params
    if params.list("poll[options]"):
        raise ApiError(422, "Validation failed: polls are not supported through the API yet")
    edit_media = None
    if params.list("media_ids") or params.get("media_ids[]") == "":
        # The post's media afterwards: its current attachments' ids (post id * 8 + position,
        # serializers.media_attachment) and new uploads; an empty media_ids[] removes them all.
        edit_media = tuple(("kept", value - post.id * 8) if value // 8 == post.id else ("upload", value)
                           for value in _media_ids([t for t in params.list("media_ids") if t]))
    language = params.get("language") or None
    if language is not None and not LANGUAGE.match(language):
        raise ApiError(422, "Validation failed: language must be an ISO 639 code such as en")
    try:
        updated = await posting.edit_post(call.ctx, call.me.username, post.uri, Draft(
            text=params.text("status"), content_warning=params.get("spoiler_text") or None, language=language,
            edit_media=edit_media, sensitive=params.bool("sensitive") if params.get("sensitive") is not None else None))
        exclude = params.get("exclude_from_corpus")
        if exclude is not None and await timelines.training_allowed(call.ctx, call.me):
            updated = await posting.set_post_excluded(call.ctx, call.me.username, post.uri,
                                                      params.bool("exclude_from_corpus"))
    except PostingError as exc:
        raise ApiError(422, f"Validation failed: {exc}") from None
    return await _one(call, updated)


@routes.get(r"/api/v1/statuses/{id:\d+}/source", scope=("read:statuses",))
async def status_source(call: ApiCall) -> web.Response:
    post = await own_post(call)
    return json_response({"id": ids.encode(post.id), "text": post.source_text or "",
                          "spoiler_text": post.summary or "",
                          # fedserver's extension, as on the status: the author's corpus opt-out.
                          "fedserver": {"exclude_from_corpus": bool(post.corpus_excluded)}})


@routes.get(r"/api/v1/statuses/{id:\d+}/history", auth="public", scope=("read:statuses",))
async def status_history(call: ApiCall) -> web.Response:
    """Every version the post had, oldest first, the current one last (Mastodon's StatusEdit)."""
    post = await visible_post(call, call.match("id"))
    card = await timelines.card_of(call.ctx, post, call.viewer)
    page = await post_details.details_for(call.ctx, [card], call.viewer)
    author = serializers.account(page.accounts[card.author.id], call.ctx.urls)
    versions = [(v["content_html"], v["summary"], bool(v["sensitive"]), v["revised_at"])
                for v in await post_details.earlier_versions(call.ctx, post)]
    versions.append((post.content_html, post.summary, bool(post.sensitive), post.edited_at or post.published_at))
    return json_response([{"content": content or "", "spoiler_text": summary or "", "sensitive": sensitive,
                           "created_at": ids.datetime_text(at), "account": author, "poll": None,
                           "media_attachments": [], "emojis": []}
                          for content, summary, sensitive, at in versions])


async def _bookmark(call: ApiCall, *, on: bool) -> web.Response:
    post = await visible_post(call, call.match("id"))
    await bookmarks.set_bookmark(call.ctx, call.me, post, on=on)
    return await _one(call, post)


@routes.post(r"/api/v1/statuses/{id:\d+}/bookmark", scope=("write:bookmarks",))
async def bookmark(call: ApiCall) -> web.Response:
    return await _bookmark(call, on=True)


@routes.post(r"/api/v1/statuses/{id:\d+}/unbookmark", scope=("write:bookmarks",))
async def unbookmark(call: ApiCall) -> web.Response:
    return await _bookmark(call, on=False)


async def _interactors(call: ApiCall, *, boosts: bool) -> web.Response:
    post = await visible_post(call, call.match("id"))

    async def fetch(max_id: int | None, limit: int) -> tuple[list[tuple[int, Actor]], int | None]:
        return await directory.interactors(call.ctx, post, boosts=boosts, max_id=max_id, limit=limit)
    rows = await read_page(fetch, page_request(call.params, default=40, maximum=80), key=lambda row: row[0],
                           first_span=SNOWFLAKE_SPAN if boosts else COUNTER_SPAN)
    accounts = [serializers.account(await directory.account_view(call.ctx, actor, call.viewer), call.ctx.urls)
                for _, actor in rows]
    return json_response(accounts, headers=link_header(call.ctx.urls.base, call.request, [i for i, _ in rows]))


@routes.get(r"/api/v1/statuses/{id:\d+}/favourited_by", auth="public", scope=("read:accounts",))
async def favourited_by(call: ApiCall) -> web.Response:
    return await _interactors(call, boosts=False)


@routes.get(r"/api/v1/statuses/{id:\d+}/reblogged_by", auth="public", scope=("read:accounts",))
async def reblogged_by(call: ApiCall) -> web.Response:
    # Boost ids are time-ordered like posts' (clock.time_ordered_id); like ids count up one by one.
    return await _interactors(call, boosts=True)


async def _pin(call: ApiCall, *, on: bool) -> web.Response:
    """Pin (feature on the profile) one's own public or unlisted post, through the web's pin
    service (its cap, and the Add/Remove it sends to followers' servers)."""
    post = await own_post(call)
    try:
        if on:
            await pins.pin(call.ctx, call.me.username, post)
        else:
            await pins.unpin(call.ctx, call.me.username, post)
    except pins.PinError as exc:
        raise ApiError(422, f"Validation failed: {exc}") from None
    return await _one(call, post)


@routes.post(r"/api/v1/statuses/{id:\d+}/pin", scope=("write:accounts",))
async def pin(call: ApiCall) -> web.Response:
    return await _pin(call, on=True)


@routes.post(r"/api/v1/statuses/{id:\d+}/unpin", scope=("write:accounts",))
async def unpin(call: ApiCall) -> web.Response:
    return await _pin(call, on=False)
