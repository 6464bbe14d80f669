"""Finding and following people: search by @user@host, follow and unfollow, answering follow
requests, and the profile pages of accounts on other servers."""
from __future__ import annotations

import logging

from aiohttp import web
from markupsafe import Markup

from fedserver.activitypub import fetch
from fedserver.services import follows, remote_actors, timelines
from fedserver.services.auth import Viewer
from fedserver.store.actors import Actor
from fedserver.web.common import ctx_of, redirect, render, require_viewer, training_choices, viewer_of
from fedserver.web.return_paths import return_path
from fedserver.web.timeline import max_id_of

log = logging.getLogger(__name__)

MAX_QUERY = 300


def bio_html(actor: Actor) -> Markup:
    """The bio as stored (sanitized when stored: filters.post_html). A local person's own links
    carry rel="me", so that a site linking back to their profile verifies it (Mastodon's and
    IndieWeb's rel=me check); text.render_html gives every link rel="nofollow noopener noreferrer",
    which is what we extend here."""
    html = actor.summary_html or ""
    if actor.is_local:
        # render_html escapes quotes in what was typed (&quot;): this exact attribute text only
        # occurs as the attribute it wrote.
        html = html.replace(' rel="nofollow noopener noreferrer"', ' rel="me nofollow noopener noreferrer"')
    return Markup(html)


def _search_problem(handle: str, exc: remote_actors.ActorNotFound) -> str:
    """A plain sentence for why the account could not be found (the technical reason goes to the log:
    exception text such as aiohttp's "Cannot connect to host ... ssl:default" means nothing to people)."""
    user, _, host = handle.partition("@")
    cause = exc.__cause__
    if isinstance(cause, (fetch.FetchConnectionError, fetch.FetchTimeout)):
        return f"We could not reach {host}: the server may be down, or the address may be misspelt."
    if isinstance(cause, (fetch.FetchNotFound, fetch.FetchGone)):
        return f"{host} has no account named {user}."
    if isinstance(cause, fetch.FetchBlocked):
        return f"This server does not connect to {host}."
    if isinstance(cause, fetch.FetchError):
        return f"Could not find @{handle}: {cause.plain}."
    return f"Could not find @{handle}: {exc}."


def _handle_of(query: str, local_domain: str) -> str:
    """@user@host or user@host as typed; a bare @user means someone on this server."""
    handle = query.strip().removeprefix("acct:").lstrip("@")
    return handle if "@" in handle else f"{handle}@{local_domain}"


@require_viewer
async def search(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    query = request.query.get("q", "").strip()[:MAX_QUERY]
    if not query:
        return await render(request, "social/search.html", q="", found=None)
    if not query.strip("@ "):
        return await render(request, "social/search.html", status=400, q=query, found=None,
                            error="Type an address like @someone@mastodon.social.")
    handle = _handle_of(query, ctx.urls.domain)
    try:
        found = await remote_actors.resolve_handle(ctx, handle)
    except remote_actors.ActorNotFound as exc:
        log.info("search for %r failed: %s", query, exc)
        return await render(request, "social/search.html", status=404, q=query, found=None,
                            error=_search_problem(handle, exc))
    viewer = viewer_of(request)
    assert viewer is not None
    if found.is_gone:
        return await render(request, "social/search.html", status=404, q=query, found=None,
                            error=f"{found.handle} is suspended on this server.")
    relation = await timelines.relationship(ctx, viewer.actor, found)
    return await render(request, "social/search.html", q=query, found=found, relation=relation)


async def _target(request: web.Request, form) -> Actor | None:
    value = str(form.get("actor_id", ""))
    return await timelines.actor_by_id(ctx_of(request), int(value)) if value.isdigit() else None


def _viewer(request: web.Request) -> Viewer:
    viewer = viewer_of(request)
    assert viewer is not None
    return viewer


def _actor_action(action):
    """A form posted about one account (actor_id): its handler gets the form, where to go back to,
    and the account; an unknown account goes back with a message."""
    @require_viewer
    async def handler(request: web.Request) -> web.StreamResponse:
        form = await request.post()
        back = return_path(form.get("back"), "/home")
        target = await _target(request, form)
        if target is None:
            return redirect(back, flash="That account is not known here.")
        return await action(request, form, back, target)
    return handler


@_actor_action
async def follow(request: web.Request, form, back: str, target: Actor) -> web.StreamResponse:
    try:
        record = await follows.follow(ctx_of(request), _viewer(request).username, target.handle)
    except follows.FollowError as exc:
        return redirect(back, flash=f"Could not follow: {exc}.")
    name = target.display_name or target.username
    if record.state == "accepted":
        return redirect(back, flash=f"You follow {name} now.")
    return redirect(back, flash=f"Follow request sent to {name}; you will follow them once it is accepted.")


@_actor_action
async def unfollow(request: web.Request, form, back: str, target: Actor) -> web.StreamResponse:
    try:
        await follows.unfollow(ctx_of(request), _viewer(request).username, target.handle)
    except follows.FollowError as exc:
        return redirect(back, flash=f"Could not unfollow: {exc}.")
    return redirect(back, flash=f"You no longer follow {target.display_name or target.username}.")


@require_viewer
async def block_form(request: web.Request) -> web.Response:
    """The confirmation page the Block button leads to (a plain GET form: no script needed)."""
    back = return_path(request.query.get("back"), "/home")
    value = request.query.get("actor_id", "")
    target = await timelines.actor_by_id(ctx_of(request), int(value)) if value.isdigit() and len(value) < 19 else None
    if target is None or target.id == _viewer(request).actor.id:
        return await render(request, "public/not_found.html", status=404)
    return await render(request, "social/block_confirm.html", target=target, back=back)


@_actor_action
async def block(request: web.Request, form, back: str, target: Actor) -> web.StreamResponse:
    try:
        if form.get("action") == "unblock":
            await follows.unblock(ctx_of(request), _viewer(request).username, target)
            return redirect(back, flash=f"You unblocked {target.handle}.")
        if form.get("confirm") != "yes":
            # Blocking ends follows both ways and tells the other server: only from the
            # confirmation page's own button, never from a form that skipped it.
            return await render(request, "social/block_confirm.html", target=target, back=back)
        await follows.block(ctx_of(request), _viewer(request).username, target)
    except follows.FollowError as exc:
        return redirect(back, flash=f"Could not block: {exc}.")
    return redirect(back, flash=f"You blocked {target.handle}. You will not see their posts or hear from them, "
                                "and they cannot follow you.")


@_actor_action
async def mute(request: web.Request, form, back: str, target: Actor) -> web.StreamResponse:
    muted = form.get("action") != "unmute"
    try:
        await follows.mute(ctx_of(request), _viewer(request).username, target, muted=muted)
    except follows.FollowError as exc:
        return redirect(back, flash=f"Could not mute: {exc}.")
    if muted:
        return redirect(back, flash=f"You muted {target.handle}: their posts and notifications are hidden from you. "
                                    "They are not told.")
    return redirect(back, flash=f"You unmuted {target.handle}.")


@require_viewer
async def follow_requests(request: web.Request) -> web.Response:
    requests = await follows.list_requests(ctx_of(request), _viewer(request).username)
    return await render(request, "social/follow_requests.html", requests=requests)


@require_viewer
async def answer_follow_request(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    target = await _target(request, form)
    decision = form.get("decision")
    if target is None or decision not in ("approve", "reject"):
        return redirect("/follow_requests", flash="That request is not known here.")
    try:
        await follows.answer_follow_request(ctx_of(request), _viewer(request).username, target.handle,
                                            accept=decision == "approve")
    except follows.FollowError as exc:
        return redirect("/follow_requests", flash=f"That did not work: {exc}.")
    name = target.display_name or target.username
    return redirect("/follow_requests",
                    flash=f"{name} follows you now." if decision == "approve" else f"You turned down {name}.")


async def profile_values(request: web.Request, actor: Actor) -> dict:
    """What a profile page (local or remote) shows: header, counts, follow button and the posts
    this viewer may see."""
    ctx, viewer = ctx_of(request), viewer_of(request)
    viewer_actor = viewer.actor if viewer else None
    relation = await timelines.relationship(ctx, viewer_actor, actor)
    visibilities = timelines.profile_visibilities(relation)
    page = await timelines.profile_posts(ctx, actor, viewer_actor, visibilities, max_id=max_id_of(request),
                                         choices=training_choices(request))
    counts = await timelines.profile_counts(ctx, actor, visibilities)
    moved_to = await timelines.actor_by_uri(ctx, actor.moved_to_uri) if actor.moved_to_uri else None
    other = viewer_actor is not None and relation != "self"
    blocking = other and await follows.is_blocking(ctx, viewer_actor, actor)
    muting = other and await follows.is_muting(ctx, viewer_actor, actor)
    return {"target": actor, "relation": relation, "page": page, "counts": counts, "bio": bio_html(actor),
            "moved_to": moved_to, "blocking": blocking, "muting": muting}


@require_viewer
async def remote_profile(request: web.Request) -> web.StreamResponse:
    value = request.match_info["actor_id"]
    actor = await timelines.actor_by_id(ctx_of(request), int(value)) if value.isdigit() and len(value) < 19 else None
    if actor is None:
        return await render(request, "public/not_found.html", status=404)
    if actor.is_local:
        raise web.HTTPFound(f"/@{actor.username}")
    return await render(request, "social/remote_profile.html", **await profile_values(request, actor))


@require_viewer
async def profile_by_handle(request: web.Request) -> web.StreamResponse:
    """/@user@host: the account on another server, found by WebFinger if it is not known yet."""
    ctx = ctx_of(request)
    handle = request.match_info["username"]
    try:
        actor = await remote_actors.resolve_handle(ctx, handle)
    except remote_actors.ActorNotFound as exc:
        return await render(request, "error.html", status=404, message=f"Could not find @{handle}: {exc}")
    if actor.is_gone:
        return await render(request, "error.html", status=404, message=f"@{handle} is suspended on this server.")
    if actor.is_local:
        raise web.HTTPFound(f"/@{actor.username}")
    raise web.HTTPFound(f"/remote/{actor.id}")


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_get("/search", search)
    r.add_post("/follow", follow)
    r.add_post("/unfollow", unfollow)
    r.add_get("/block", block_form)
    r.add_post("/block", block)
    r.add_post("/mute", mute)
    r.add_get("/follow_requests", follow_requests)
    r.add_post("/follow_requests/answer", answer_follow_request)
    r.add_get("/remote/{actor_id}", remote_profile)
