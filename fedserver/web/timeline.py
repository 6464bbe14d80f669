"""Timeline pages: home (with the compose form), local, hashtags and notifications; and the small
pieces the other people-facing pages share (paging, safe return paths, compose defaults)."""
from __future__ import annotations

import asyncio
import re
from typing import Any

from aiohttp import web

from fedserver.context import Context
from fedserver.services import followed_tags, follows, languages, timelines
from fedserver.services.auth import Viewer
from fedserver.services.posting import PollDraft
from fedserver.store.posts import Post
from fedserver.web.common import ctx_of, render, require_viewer, training_choices, viewer_of

TAG_RE = re.compile(r"^\w{1,100}$")
_NARROWNESS = ("direct", "followers", "unlisted", "public")


def max_id_of(request: web.Request) -> int | None:
    """The `max_id` paging parameter; anything that is not a positive integer means the first page."""
    value = request.query.get("max_id", "")
    return int(value) if value.isdigit() and len(value) < 20 else None


def reply_visibility(parent: Post) -> str:
    """Replies start as private as the post they answer (Mastodon does the same)."""
    return min("public", parent.visibility, key=_NARROWNESS.index)


async def compose_values(ctx: Context, viewer: Viewer, *, back: str, reply_to: timelines.PostCard | None = None,
                         text: str | None = None, visibility: str | None = None, content_warning: str = "",
                         exclude: bool = False, choices: timelines.TrainingChoices | None = None,
                         language: str | None = None, poll: PollDraft | None = None) -> dict[str, Any]:
    """What the compose form shows: a reply starts with the author's handle and the parent's CW."""
    if reply_to is not None and text is None:
        author = reply_to.author
        text = "" if author.id == viewer.actor.id else (f"@{author.username} " if author.is_local
                                                          else f"{author.handle} ")
        content_warning = content_warning or (reply_to.post.summary or "")
    if visibility is None:
        visibility = reply_visibility(reply_to.post) if reply_to is not None else "public"
    return {"text": text or "", "visibility": visibility, "content_warning": content_warning, "exclude": exclude,
            "reply_to": reply_to, "back": back,
            "consented": await timelines.training_allowed(ctx, viewer.actor, choices),
            "language": language or await languages.default_for(ctx, viewer.actor), "languages": languages.LANGUAGES,
            **_poll_values(ctx, poll)}


# The compose form's poll durations (seconds, label), as Mastodon's web interface offers them.
POLL_DURATIONS = ((300, "5 minutes"), (1800, "30 minutes"), (3600, "1 hour"), (21600, "6 hours"),
                  (43200, "12 hours"), (86400, "1 day"), (259200, "3 days"), (604800, "7 days"))


def _poll_values(ctx: Context, poll: PollDraft | None) -> dict[str, Any]:
    shortest = ctx.settings.instance.poll_min_expiry_seconds
    durations = [(seconds, label) for seconds, label in POLL_DURATIONS if seconds >= shortest]
    if durations[0][0] != shortest:
        durations.insert(0, (shortest, f"{shortest} seconds"))
    return {"poll_options": list(poll.options) if poll else [], "poll_multiple": bool(poll and poll.multiple),
            "poll_expires_in": poll.expires_in if poll else 86400, "poll_durations": durations,
            "poll_max_options": ctx.settings.instance.poll_max_options}


@require_viewer
async def home(request: web.Request) -> web.Response:
    ctx, viewer = ctx_of(request), viewer_of(request)
    assert viewer is not None
    choices = training_choices(request)
    page, compose = await asyncio.gather(timelines.home(ctx, viewer.actor, max_id=max_id_of(request), choices=choices),
                                         compose_values(ctx, viewer, back="/home", choices=choices))
    return await render(request, "timeline/home.html", page=page, compose=compose)


async def local(request: web.Request) -> web.Response:
    viewer = viewer_of(request)
    page = await timelines.local(ctx_of(request), viewer.actor if viewer else None, max_id=max_id_of(request),
                                 choices=training_choices(request))
    return await render(request, "timeline/local.html", page=page)


async def tag(request: web.Request) -> web.Response:
    name = request.match_info["tag"]
    if not TAG_RE.match(name):
        return await render(request, "public/not_found.html", status=404)
    viewer = viewer_of(request)
    page = await timelines.tagged(ctx_of(request), name.lower(), viewer.actor if viewer else None,
                                  max_id=max_id_of(request), choices=training_choices(request))
    following = viewer is not None and await followed_tags.is_following(ctx_of(request), viewer.actor, name)
    return await render(request, "timeline/tag.html", tag=name.lower(), page=page, following_tag=following)


@require_viewer
async def compose_page(request: web.Request) -> web.Response:
    """The compose form on a page of its own: where "New post" leads on a phone (and without the
    side column), back home once posted."""
    ctx, viewer = ctx_of(request), viewer_of(request)
    assert viewer is not None
    compose = await compose_values(ctx, viewer, back="/home", choices=training_choices(request))
    return await render(request, "posts/compose.html", compose=compose)


async def home_news(request: web.Request) -> web.Response:
    """How many posts arrived on home above `since` (the first sort id the page showed), for the
    quiet "N new posts" link static/app.js shows; counts up to one page."""
    ctx, viewer = ctx_of(request), viewer_of(request)
    if viewer is None:
        return web.json_response({"error": "sign in first"}, status=401)
    since = request.query.get("since", "")
    if not since.isdigit() or len(since) > 19:
        return web.json_response({"error": "since must be a post position"}, status=400)
    page = await timelines.home(ctx, viewer.actor, choices=training_choices(request))
    # The viewer's own posts and boosts are not news to them.
    mine = viewer.actor.id
    count = sum(1 for card in page.cards if card.sort_id > int(since) and not card.own
                and (card.boosted_by is None or card.boosted_by.id != mine))
    return web.json_response({"count": count, "more": count == len(page.cards) and page.next_max_id is not None},
                             headers={"Cache-Control": "private, no-store"})


@require_viewer
async def notifications(request: web.Request) -> web.Response:
    ctx, viewer = ctx_of(request), viewer_of(request)
    assert viewer is not None
    page = await timelines.notifications(ctx, viewer.actor, max_id=max_id_of(request),
                                         choices=training_choices(request))
    waiting = len(await follows.list_requests(ctx, viewer.username))
    response = await render(request, "timeline/notifications.html", page=page, requests_waiting=waiting)
    # Seen once shown: the unread count in the navigation starts again from zero.
    await timelines.mark_notifications_read(ctx, viewer.actor)
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_get("/home", home)
    app.router.add_get("/home/new", home_news)
    app.router.add_get("/posts/new", compose_page)
    app.router.add_get("/local", local)
    app.router.add_get("/tags/{tag}", tag)
    app.router.add_get("/notifications", notifications)
