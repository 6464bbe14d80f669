"""GET endpoints peers read: WebFinger, host-meta, NodeInfo, actors, posts, activities, collections.
Content negotiation: AS2 JSON for ActivityPub clients, a redirect to the HTML page for browsers."""
from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from fedserver import SOFTWARE_NAME, __version__
from fedserver.activitypub.mediatypes import wants_activitypub
from fedserver.activitypub.webfinger import build_jrd, parse_handle
from fedserver.context import CTX_KEY, Context
from fedserver.federation.signatures import SignatureRejected, SignerBlocked, verify_request
from fedserver.services import as2, audience, instance, pins, social_lists
from fedserver.store import actors as actor_store
from fedserver.store import deliveries as delivery_store
from fedserver.store import follows as follow_store
from fedserver.store import posts as post_store
from fedserver.store.actors import Actor
from fedserver.store.posts import Post

log = logging.getLogger(__name__)

AS2_TYPE = "application/activity+json"
PAGE_SIZE = 20
CORS = {"Access-Control-Allow-Origin": "*"}


def as2_response(doc: dict[str, Any], *, status: int = 200, vary_signature: bool = False) -> web.Response:
    vary = "Accept, Signature" if vary_signature else "Accept"
    return web.Response(status=status, body=json.dumps(doc, ensure_ascii=False).encode("utf-8"),
                        content_type=AS2_TYPE, headers={"Vary": vary, **CORS})


def _ctx(request: web.Request) -> Context:
    return request.app[CTX_KEY]


def _signature_varies(ctx: Context, post: Post | None = None) -> bool:
    """Does the answer depend on who signed the GET? Always in authorized-fetch mode (unsigned gets
    401), and for posts only some readers may see (federation.md §2.1, §3.4)."""
    return ctx.settings.federation.authorized_fetch or (post is not None and
                                                        post.visibility not in ("public", "unlisted"))


def _redirect_to_html(location: str) -> web.HTTPFound:
    # Same URL, two representations: a cache must not give this redirect to an ActivityPub client.
    return web.HTTPFound(location, headers={"Vary": "Accept"})


async def requester(request: web.Request) -> Actor | None:
    """The verified signer of a GET, None when unsigned. Authorized-fetch mode requires one."""
    ctx = _ctx(request)
    signed = "Signature" in request.headers or "Signature-Input" in request.headers
    if not signed:
        if ctx.settings.federation.authorized_fetch:
            raise web.HTTPUnauthorized(text=json.dumps({"error": "signature required (authorized fetch)"}),
                                       content_type="application/json")
        return None
    try:
        return await verify_request(ctx, request, None)
    except SignerBlocked as exc:
        raise web.HTTPForbidden(text=json.dumps({"error": str(exc)}), content_type="application/json") from exc
    except SignatureRejected as exc:
        raise web.HTTPUnauthorized(text=json.dumps({"error": str(exc)}), content_type="application/json") from exc


# --- discovery ---------------------------------------------------------------------------

async def webfinger(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    resource = request.query.get("resource", "").strip()
    headers = {"Cache-Control": "public, max-age=180", **CORS}
    if not resource:
        return web.json_response({"error": "resource parameter required"}, status=400, headers=headers)
    actor = await _actor_for_resource(ctx, resource)
    if actor is None:
        return web.json_response({"error": "not found"}, status=404, headers=headers)
    if actor.deleted_at:
        return web.json_response({"error": "gone"}, status=410, headers=headers)
    jrd = build_jrd(f"acct:{actor.username}@{ctx.urls.domain}", actor.uri, actor.url,
                    aliases=[a for a in (actor.url, actor.uri) if a],
                    subscribe_template=f"{ctx.urls.base}/authorize_interaction?uri={{uri}}")
    return web.Response(body=json.dumps(jrd).encode(), content_type="application/jrd+json",
                        headers={"Cache-Control": "public, max-age=259200", **CORS})


async def _actor_for_resource(ctx: Context, resource: str) -> Actor | None:
    if resource.startswith(("http://", "https://")):
        actor = await actor_store.get_actor_by_uri(ctx.db.reader, resource)
        profile_prefix = ctx.urls.profile("")
        if actor is None and resource.startswith(profile_prefix):
            # Our profile page URL names the same account (another host's /@alice does not).
            actor = await actor_store.get_local_actor(ctx.db.reader, resource[len(profile_prefix):])
        return actor if actor is not None and actor.is_local else None
    try:
        user, host = parse_handle(resource)
    except ValueError:
        return None
    if host.lower() != ctx.urls.domain.lower():
        return None
    instance = await actor_store.get_instance_actor(ctx.db.reader)
    if instance is not None and user.lower() == instance[0].username.lower():
        return instance[0]
    row = await actor_store.get_local_account(ctx.db.reader, user)
    if row is None or row.is_instance_actor:
        return None
    return await actor_store.get_actor(ctx.db.reader, row.actor_id)


async def host_meta(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    template = f"{ctx.urls.base}/.well-known/webfinger?resource={{uri}}"
    if "json" in request.headers.get("Accept", ""):
        return web.json_response({"links": [{"rel": "lrdd", "template": template}]}, headers=CORS)
    xml = ('<?xml version="1.0" encoding="UTF-8"?>\n'
           '<XRD xmlns="http://docs.oasis-open.org/ns/xri/xrd-1.0">\n'
           f'  <Link rel="lrdd" template="{template}"/>\n</XRD>\n')
    return web.Response(text=xml, content_type="application/xrd+xml", headers=CORS)


async def nodeinfo_links(request: web.Request) -> web.Response:
    base = _ctx(request).urls.base
    links = [{"rel": f"http://nodeinfo.diaspora.software/ns/schema/{v}", "href": f"{base}/nodeinfo/{v}"}
             for v in ("2.0", "2.1")]
    return web.json_response({"links": links}, headers={"Cache-Control": "public, max-age=259200", **CORS})


async def nodeinfo(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    version = request.match_info["version"]
    stats = await audience.usage_stats(ctx)
    info = await instance.instance_info(ctx)
    software: dict[str, Any] = {"name": SOFTWARE_NAME, "version": __version__}
    if version == "2.1":
        software["homepage"] = ctx.urls.base
    doc = {
        "version": version,
        "software": software,
        "protocols": ["activitypub"],
        "services": {"inbound": [], "outbound": []},
        # As Mastodon: anyone may ask for an account when an admin approves each one.
        "openRegistrations": info.registrations in ("open", "approval"),
        "usage": {"users": {"total": stats["users"], "activeMonth": stats["active_month"],
                            "activeHalfyear": stats["active_halfyear"]},
                  "localPosts": stats["local_posts"]},
        # Client apps read this to pick an API dialect: megalodon (Elk's and others') accepts an
        # unknown software name only with upstream.name "mastodon"; Pleroma-style "features" names
        # the API too (client-api.md §2). The version is the one the client API reports
        # (api/serializers.py MASTODON_VERSION).
        "metadata": {"nodeName": info.name, "nodeDescription": info.description,
                     "upstream": {"name": "mastodon", "version": "4.3.0"}, "features": ["mastodon_api"]},
    }
    content_type = f'application/json; profile="http://nodeinfo.diaspora.software/ns/schema/{version}#"'
    return web.Response(body=json.dumps(doc).encode(), headers={"Content-Type": content_type,
                                                                "Cache-Control": "public, max-age=1800", **CORS})


# --- actors ------------------------------------------------------------------------------

async def _local_actor_or_404(request: web.Request) -> Actor:
    actor = await actor_store.get_local_actor(_ctx(request).db.reader, request.match_info["username"])
    if actor is None:
        raise web.HTTPNotFound(text=json.dumps({"error": "no such account"}), content_type="application/json")
    return actor


async def actor_document(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    actor = await _local_actor_or_404(request)
    if not wants_activitypub(request.headers.get("Accept")):
        raise _redirect_to_html(actor.url or ctx.urls.profile(actor.username))
    if actor.deleted_at:
        return as2_response(as2.tombstone_document(actor.uri, actor.deleted_at), status=410)
    # Actor documents are served without a signature even in authorized-fetch mode: two such
    # servers would otherwise deadlock fetching each other's keys (SWICG HTTP signature report).
    return as2_response(await audience.local_actor_document(ctx, actor))


async def instance_actor_document(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    found = await actor_store.get_instance_actor(ctx.db.reader)
    if found is None:
        raise web.HTTPNotFound()
    return as2_response(as2.actor_document(found[0], ctx.urls))


async def instance_actor_outbox(request: web.Request) -> web.Response:
    """The instance actor advertises an outbox (as Mastodon's does); it never posts, so it is empty.
    Readable unsigned, like the instance actor itself."""
    ctx = _ctx(request)
    found = await actor_store.get_instance_actor(ctx.db.reader)
    if found is None or not found[0].outbox_url:
        raise web.HTTPNotFound()
    doc = as2.ordered_collection(found[0].outbox_url, 0, None)
    doc["orderedItems"] = []
    return as2_response(doc)


# --- posts and activities ----------------------------------------------------------------

async def post_document(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    actor = await _local_actor_or_404(request)
    try:
        post_id = int(request.match_info["post_id"])
    except ValueError:
        raise web.HTTPNotFound() from None
    post = await post_store.get_post(ctx.db.reader, post_id)
    if post is None or post.actor_id != actor.id or actor.suspended_at:
        raise web.HTTPNotFound()
    if not wants_activitypub(request.headers.get("Accept")):
        raise _redirect_to_html(post.url or ctx.urls.post_page(actor.username, post.id))
    viewer = await requester(request)
    if post.is_deleted:
        if await audience.deleted_post_status(ctx, post, viewer) == 404:
            raise web.HTTPNotFound()
        return as2_response(as2.tombstone_document(post.uri, post.deleted_at), status=410,
                            vary_signature=_signature_varies(ctx, post))
    if not await audience.may_see(ctx, post, viewer):
        raise web.HTTPNotFound()
    note = await audience.local_note_document(ctx, post, actor)
    if request.path.endswith("/activity"):
        note = as2.wrap_create(note, f"{post.uri}/activity")
    return as2_response(note, vary_signature=_signature_varies(ctx, post))


async def activity_document(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    uri = f"{ctx.urls.base}/activities/{request.match_info['token']}"
    activity = await delivery_store.get_outbound_activity_by_uri(ctx.db.reader, uri)
    if activity is None:
        raise web.HTTPNotFound()
    author = await actor_store.get_actor(ctx.db.reader, activity.actor_id)
    if author is None or author.suspended_at:
        raise web.HTTPNotFound()  # nothing of a suspended account is served
    viewer = await requester(request)
    if not activity.is_public:
        doc = json.loads(activity.body)
        addressed = {*_as_ids(doc.get("to")), *_as_ids(doc.get("cc")), *_as_ids(doc.get("object"))}
        if viewer is None or (viewer.uri not in addressed and viewer.id != activity.actor_id):
            raise web.HTTPNotFound()
    vary_signature = ctx.settings.federation.authorized_fetch or not activity.is_public
    return as2_response(json.loads(activity.body), vary_signature=vary_signature)


def _as_ids(value: Any) -> list[str]:
    values = value if isinstance(value, list) else [value]
    out = []
    for v in values:
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, dict):
            out.extend(x for x in (v.get("id"), v.get("object"), v.get("actor")) if isinstance(x, str))
    return out


# --- collections -------------------------------------------------------------------------

async def outbox(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    actor = await _local_actor_or_404(request)
    await requester(request)
    collection_id = actor.outbox_url or ctx.urls.outbox(actor.username)
    visible = ("public", "unlisted")
    # A suspended (or deleted) account's posts are not served to anyone: its outbox is empty.
    shown = not actor.is_gone
    if "page" not in request.query:
        total = await post_store.count_actor_posts(ctx.db.reader, actor.id, visible) if shown else 0
        return as2_response(as2.ordered_collection(collection_id, total, f"{collection_id}?page=true"),
                            vary_signature=_signature_varies(ctx))
    max_id = _int_param(request, "max_id")
    posts = await post_store.list_actor_posts(ctx.db.reader, actor.id, visibilities=visible, max_id=max_id,
                                              limit=PAGE_SIZE) if shown else []
    notes = await audience.local_note_documents(ctx, posts, actor, with_context=False)
    items = [as2.wrap_create(note, f"{p.uri}/activity") for p, note in zip(posts, notes)]
    for item in items:
        item.pop("@context", None)
    next_page = (f"{collection_id}?{urlencode({'page': 'true', 'max_id': posts[-1].id})}"
                 if len(posts) == PAGE_SIZE else None)
    page_id = f"{collection_id}?{urlencode({'page': 'true', **({'max_id': max_id} if max_id else {})})}"
    return as2_response(as2.ordered_collection_page(page_id, collection_id, items, next_page),
                        vary_signature=_signature_varies(ctx))


async def _graph_collection(request: web.Request, followers: bool) -> web.Response:
    ctx = _ctx(request)
    actor = await _local_actor_or_404(request)
    await requester(request)
    collection_id = (actor.followers_url or ctx.urls.followers(actor.username)) if followers else \
        (actor.following_url or ctx.urls.following(actor.username))
    # An account that hides its lists shows the count only, and no page (Mastodon's
    # hide_collections: FollowerAccountsController answers 403 to a page request).
    hidden = await social_lists.hides_collections(ctx, actor)
    if "page" not in request.query:
        total = await (follow_store.count_followers if followers else follow_store.count_following)(
            ctx.db.reader, actor.id)
        return as2_response(as2.ordered_collection(collection_id, total, None if hidden else f"{collection_id}?page=1"),
                            vary_signature=_signature_varies(ctx))
    if hidden:
        raise web.HTTPForbidden(text=json.dumps({"error": "this account hides its follow lists"}),
                                content_type="application/json")
    after = _int_param(request, "after")
    lister = follow_store.list_followers if followers else follow_store.list_following
    rows = await lister(ctx.db.reader, actor.id, after_id=after, limit=PAGE_SIZE)
    next_page = f"{collection_id}?{urlencode({'page': 1, 'after': rows[-1][0].id})}" if len(rows) == PAGE_SIZE else None
    page_id = f"{collection_id}?{urlencode({'page': 1, **({'after': after} if after else {})})}"
    return as2_response(as2.ordered_collection_page(page_id, collection_id, [a.uri for _, a in rows], next_page),
                        vary_signature=_signature_varies(ctx))


async def followers_collection(request: web.Request) -> web.Response:
    return await _graph_collection(request, followers=True)


async def following_collection(request: web.Request) -> web.Response:
    return await _graph_collection(request, followers=False)


async def featured_collection(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    actor = await _local_actor_or_404(request)
    await requester(request)
    return as2_response(await pins.featured_collection(ctx, actor), vary_signature=_signature_varies(ctx))


def _int_param(request: web.Request, name: str) -> int | None:
    value = request.query.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name} must be an integer") from None


def add_routes(app: web.Application, inbox_handler) -> None:
    r = app.router
    r.add_get("/.well-known/webfinger", webfinger)
    r.add_get("/.well-known/host-meta", host_meta)
    r.add_get("/.well-known/nodeinfo", nodeinfo_links)
    r.add_get("/nodeinfo/{version:2\\.[01]}", nodeinfo)
    r.add_get("/actor", instance_actor_document)
    r.add_post("/actor/inbox", inbox_handler)
    r.add_get("/actor/outbox", instance_actor_outbox)
    r.add_post("/inbox", inbox_handler)
    r.add_get("/users/{username}", actor_document)
    r.add_post("/users/{username}/inbox", inbox_handler)
    r.add_get("/users/{username}/outbox", outbox)
    r.add_get("/users/{username}/followers", followers_collection)
    r.add_get("/users/{username}/following", following_collection)
    r.add_get("/users/{username}/collections/featured", featured_collection)
    r.add_get("/users/{username}/statuses/{post_id}", post_document)
    r.add_get("/users/{username}/statuses/{post_id}/activity", post_document)
    r.add_get("/activities/{token}", activity_document)
