"""build_app(settings): routes, middlewares, start-up and shutdown wiring."""
from __future__ import annotations

import logging

from aiohttp import web

from fedserver import background
from fedserver.api import routes as api_routes
from fedserver.api.routing import api_middleware
from fedserver.clock import SYSTEM_CLOCK, Clock
from fedserver.config import Settings
from fedserver.context import CTX_KEY, close_context, open_context
from fedserver.corpus import api as corpus_api
from fedserver.federation import routes as federation_routes
from fedserver.federation.delivery import DeliveryWorker
from fedserver.federation.inbound_limits import INBOUND_LIMITS_KEY, InboundLimits
from fedserver.federation.inbox import handle_inbox
from fedserver.federation.inbox_writer import INBOX_WRITER_KEY, InboxWriter
from fedserver.web import admin as web_admin
from fedserver.web import archive as web_archive
from fedserver.web import followed_tags as web_followed_tags
from fedserver.web import keyword_filters as web_keyword_filters
from fedserver.web import lists as web_lists
from fedserver.web import auth as web_auth
from fedserver.web import settings as web_settings
from fedserver.web import common, crawlers, pages
from fedserver.web import media as web_media
from fedserver.web import moving as web_moving
from fedserver.web import not_found, page_headers
from fedserver.web import oauth as web_oauth
from fedserver.web import posts as web_posts
from fedserver.web import search as web_search
from fedserver.web import social as web_social
from fedserver.web import social_views as web_social_views
from fedserver.web import timeline as web_timeline
from fedserver.web import write_conflicts

log = logging.getLogger(__name__)

DELIVERY_WORKER_KEY = web.AppKey("delivery_worker", DeliveryWorker)
BACKGROUND_KEY = web.AppKey("background", background.Background)


@web.middleware
async def security_headers(request: web.Request, handler):
    response = await handler(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response


def build_app(settings: Settings, *, clock: Clock = SYSTEM_CLOCK, run_workers: bool = True) -> web.Application:
    # The inbox enforces its own (smaller or equal) limit with a clear 413; this caps everything else.
    # Uploads of video and audio (web compose form) are the largest bodies taken.
    app = web.Application(client_max_size=max(settings.federation.max_inbox_body_bytes, 8 * 1024 * 1024,
                                              settings.media.media_video_max_bytes + 1024 * 1024,
                                              settings.media.media_audio_max_bytes + 1024 * 1024),
                          middlewares=[security_headers, page_headers.page_headers, api_middleware,
                                       crawlers.crawler_signals,
                                       common.session_middleware, common.csrf_middleware,
                                       not_found.styled_not_found, write_conflicts.write_conflicts])
    federation_routes.add_routes(app, handle_inbox)
    web_social_views.add_routes(app)  # before pages: /@{username}/followers is not a post
    pages.add_routes(app)
    crawlers.add_routes(app)
    web_auth.add_routes(app)
    web_timeline.add_routes(app)
    web_posts.add_routes(app)
    web_social.add_routes(app)
    web_search.add_routes(app)
    web_settings.add_routes(app)
    web_moving.add_routes(app)
    web_archive.add_routes(app)
    web_admin.add_routes(app)
    web_oauth.add_routes(app)
    web_lists.add_routes(app)
    web_keyword_filters.add_routes(app)
    web_followed_tags.add_routes(app)
    web_media.add_routes(app)
    app.router.add_static("/static", common.TEMPLATES_DIR / "static", append_version=False)
    corpus_api.add_routes(app)
    api_routes.add_routes(app, settings)

    async def on_startup(app: web.Application) -> None:
        ctx = await open_context(settings, clock)
        app[CTX_KEY] = ctx
        app[INBOX_WRITER_KEY] = InboxWriter(ctx)
        app[INBOX_WRITER_KEY].start()
        app[INBOUND_LIMITS_KEY] = InboundLimits(ctx)
        if run_workers:
            # Every queue (fedserver/background.py); `serve --no-workers` leaves them to `fedserver worker`.
            app[BACKGROUND_KEY] = background.start(ctx, inbound=app[INBOX_WRITER_KEY])
            app[DELIVERY_WORKER_KEY] = app[BACKGROUND_KEY].delivery_workers[0]

    async def on_cleanup(app: web.Application) -> None:
        if BACKGROUND_KEY in app:
            await app[BACKGROUND_KEY].stop()
        if INBOUND_LIMITS_KEY in app:
            await app[INBOUND_LIMITS_KEY].stop()
        if INBOX_WRITER_KEY in app:
            await app[INBOX_WRITER_KEY].stop()
        if CTX_KEY in app:
            await close_context(app[CTX_KEY])

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app
