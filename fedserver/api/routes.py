"""Every client API route, registered in one place. A new resource module adds its `routes`
table here."""
from __future__ import annotations

from aiohttp import web

from fedserver.api import (accounts, apps, blocks, filters, grouped_notifications, instance, lists, markers, media,
                           notifications, oauth, polls, push, relationships, saved_posts, search, statuses, streaming,
                           stubs, tags, timelines)
from fedserver.api.routing import install
from fedserver.config import Settings


def add_routes(app: web.Application, settings: Settings) -> None:
    oauth.add_routes(app)
    apps.add_budgets(app, settings)
    streaming.add_routes(app)
    # accounts before stubs, and fixed paths before {id} patterns within each module.
    install(app, [apps.routes, instance.routes, accounts.routes, relationships.routes, blocks.routes, statuses.routes,
                  polls.routes, timelines.routes, notifications.routes, search.routes, markers.routes,
                  saved_posts.routes, media.routes, lists.routes, filters.routes, tags.routes, push.routes,
                  stubs.routes,
                  # after stubs: /api/v2/notifications/policy before the {group_key} pattern
                  grouped_notifications.routes])
