"""Accounts: the signed-in person (verify_credentials), others by id and by handle, and
relationships; plus the person's posting preferences."""
from __future__ import annotations

from aiohttp import web

from fedserver.api import ids, serializers
from fedserver.api.errors import ApiError, json_response
from fedserver.api.routing import ApiCall, ApiRoutes
from fedserver.api.pagination import COUNTER_SPAN, link_header, page_request, read_page
from fedserver.api.statuses import statuses_json
from fedserver.services import (directory, pins, post_details, posting_defaults, profile, search, social_lists,
                                timelines)
from fedserver.services.profile import ProfileError
from fedserver.services.timelines import PostCard
from fedserver.store.actors import Actor

routes = ApiRoutes()

MAX_RELATIONSHIPS = 80


@routes.get("/api/v1/accounts/verify_credentials", scope=("read", "read:accounts", "profile"))
async def verify_credentials(call: ApiCall) -> web.Response:
    ctx, me = call.ctx, call.me
    view = await directory.account_view(ctx, me, me)
    return json_response(serializers.credential_account(
        view, ctx.urls, bio_source=await directory.bio_source(ctx, me),
        follow_requests=await directory.follow_request_count(ctx, me),
        defaults=await posting_defaults.posting_defaults(ctx, me)))


@routes.patch("/api/v1/accounts/update_credentials", scope=("write:accounts",))
async def update_credentials(call: ApiCall) -> web.Response:
    """Display name, bio (note), locked, profile fields (fields_attributes, which replace all the
    fields), indexable, bot, discoverable, hide_collections, the posting defaults (source[privacy],
    source[sensitive], source[language]), the avatar and the header, through the profile page's
    services (the pictures are cleaned the same way). Only what is sent changes; the answer shows
    what the profile now is."""
    ctx, me, params = call.ctx, call.me, call.params
    fields = params.records("fields_attributes")
    # Read (and refused when not booleans) before anything changes, so a bad value changes nothing.
    bot, discoverable, hide_collections, default_sensitive = (
        params.bool(name) if params.get(name) is not None else None
        for name in ("bot", "discoverable", "hide_collections", "source[sensitive]"))
    default_visibility = params.get("source[privacy]")
    if default_visibility is not None:
        default_visibility = serializers.VISIBILITY_IN.get(default_visibility)
        if default_visibility is None:
            raise ApiError(422, "Validation failed: source[privacy] must be public, unlisted, private or direct")
    default_language = params.get("source[language]")
    if default_language and not posting_defaults.LANGUAGE.match(default_language):
        raise ApiError(422, "Validation failed: source[language] must be an ISO 639 code such as en")
    try:
        if fields or any(params.get(name) is not None for name in ("display_name", "note", "locked")):
            await profile.update_profile(
                ctx, me.username,
                display_name=params.get("display_name") if params.get("display_name") is not None
                else me.display_name,
                bio=params.get("note") if params.get("note") is not None else await directory.bio_source(ctx, me),
                locked=params.bool("locked", bool(me.manually_approves_followers)),
                fields=[(item.get("name", ""), item.get("value", "")) for item in fields] if fields else None)
        if bot is not None or discoverable is not None:
            await profile.set_account_flags(ctx, me.username, bot=bot, discoverable=discoverable)
        if default_visibility is not None or default_sensitive is not None or default_language is not None:
            await posting_defaults.set_posting_defaults(ctx, me.username, visibility=default_visibility,
                                                        sensitive=default_sensitive, language=default_language)
        if hide_collections is not None:
            # The profile page's "Hide whom I follow and who follows me".
            await social_lists.set_hide_collections(ctx, me.username, hide_collections)
        if params.get("indexable") is not None:
            # Mastodon 4.2's "let my public posts be found in search", the web's search setting.
            await search.set_indexable(ctx, me.username, params.bool("indexable"))
        avatar = params.file("avatar")
        if avatar is not None:
            await profile.set_avatar(ctx, me.username, avatar.file.read(profile.MAX_AVATAR_BYTES + 1))
        header = params.file("header")
        if header is not None:
            await profile.set_header(ctx, me.username, header.file.read(profile.MAX_AVATAR_BYTES + 1))
    except (ProfileError, posting_defaults.DefaultsError) as exc:
        raise ApiError(422, f"Validation failed: {exc}") from None
    updated = await directory.account_by_id(ctx, me.id)
    assert updated is not None
    view = await directory.account_view(ctx, updated, updated)
    return json_response(serializers.credential_account(
        view, ctx.urls, bio_source=await directory.bio_source(ctx, updated),
        follow_requests=await directory.follow_request_count(ctx, updated),
        defaults=await posting_defaults.posting_defaults(ctx, updated)))


@routes.get("/api/v1/accounts/lookup", auth="public", scope=("read:accounts",))
async def lookup(call: ApiCall) -> web.Response:
    acct = call.params.text("acct")
    if not acct:
        raise ApiError(422, "acct is required")
    actor = await directory.account_by_acct(call.ctx, acct)
    if actor is None:
        raise ApiError(404, "Record not found")
    return json_response(serializers.account(await directory.account_view(call.ctx, actor, call.viewer),
                                             call.ctx.urls))


@routes.get("/api/v1/accounts/relationships", scope=("read:follows",))
async def relationships(call: ApiCall) -> web.Response:
    wanted = [ids.decode(value) for value in call.params.list("id")][:MAX_RELATIONSHIPS]
    out = []
    for target_id in dict.fromkeys(value for value in wanted if value is not None):
        if await directory.account_by_id(call.ctx, target_id) is not None:
            out.append(serializers.relationship(await directory.relationship(call.ctx, call.me, target_id)))
    return json_response(out)


@routes.get(r"/api/v1/accounts/{id:\d+}", auth="public", scope=("read:accounts",))
async def get_account(call: ApiCall) -> web.Response:
    actor = await directory.account_by_id(call.ctx, ids.require(call.match("id")))
    if actor is None:
        raise ApiError(404, "Record not found")
    return json_response(serializers.account(await directory.account_view(call.ctx, actor, call.viewer),
                                             call.ctx.urls))


@routes.get(r"/api/v1/accounts/{id:\d+}/statuses", auth="public", scope=("read:statuses",))
async def account_statuses(call: ApiCall) -> web.Response:
    """The profile's posts the caller may see (followers-only ones for followers), newest first."""
    ctx, params = call.ctx, call.params
    actor = await directory.account_by_id(ctx, ids.require(call.match("id")))
    if actor is None:
        raise ApiError(404, "Record not found")
    if params.bool("pinned"):
        # The pinned posts the caller may see, all on one page (at most pins.MAX_PINS), no Link.
        if params.get("max_id") or params.get("min_id") or params.get("since_id"):
            return json_response([])
        return json_response(await statuses_json(ctx, await pins.pinned_cards(ctx, actor, call.viewer), call.viewer))
    visibilities = timelines.profile_visibilities(await timelines.relationship(ctx, call.viewer, actor))

    async def fetch(max_id: int | None, limit: int) -> tuple[list[PostCard], int | None]:
        page = await timelines.profile_posts(ctx, actor, call.viewer, visibilities, max_id=max_id, limit=limit)
        cards = await post_details.filter_posts(ctx, page.cards, exclude_replies=params.bool("exclude_replies"),
                                                only_media=params.bool("only_media"), tagged=params.get("tagged"))
        return cards, page.next_max_id
    cards = await read_page(fetch, page_request(params), key=lambda card: card.sort_id)
    return json_response(await statuses_json(ctx, cards, call.viewer),
                         headers=link_header(ctx.urls.base, call.request, [card.sort_id for card in cards]))


async def _follow_list(call: ApiCall, *, followers: bool) -> web.Response:
    ctx = call.ctx
    actor = await directory.account_by_id(ctx, ids.require(call.match("id")))
    if actor is None:
        raise ApiError(404, "Record not found")
    viewer = call.viewer
    if (viewer is None or viewer.id != actor.id) and await social_lists.hides_collections(ctx, actor):
        # The account hides these lists, as on its profile page and to other servers: Mastodon
        # answers an empty list to everyone but the account itself.
        return json_response([])

    async def fetch(max_id: int | None, limit: int) -> tuple[list[tuple[int, Actor]], int | None]:
        return await directory.follow_list(ctx, actor, followers=followers, max_id=max_id, limit=limit)
    # Paged by follow ids (Mastodon pages these lists by its internal ids too, Link headers only).
    rows = await read_page(fetch, page_request(call.params, default=40, maximum=80), key=lambda row: row[0],
                           first_span=COUNTER_SPAN)
    accounts = [serializers.account(await directory.account_view(ctx, other, call.viewer), ctx.urls)
                for _, other in rows]
    return json_response(accounts, headers=link_header(ctx.urls.base, call.request, [fid for fid, _ in rows]))


@routes.get(r"/api/v1/accounts/{id:\d+}/followers", auth="public", scope=("read:accounts",))
async def followers(call: ApiCall) -> web.Response:
    return await _follow_list(call, followers=True)


@routes.get(r"/api/v1/accounts/{id:\d+}/following", auth="public", scope=("read:accounts",))
async def following(call: ApiCall) -> web.Response:
    return await _follow_list(call, followers=False)


@routes.get("/api/v1/preferences", scope=("read:accounts",))
async def preferences(call: ApiCall) -> web.Response:
    defaults = await posting_defaults.posting_defaults(call.ctx, call.me)
    return json_response({"posting:default:visibility": serializers.VISIBILITY_OUT.get(defaults.visibility, "public"),
                          "posting:default:sensitive": defaults.sensitive,
                          "posting:default:language": defaults.language, "reading:expand:media": "default",
                          "reading:expand:spoilers": False, "reading:autoplay:gifs": False})
