"""What every service call needs: settings, the database, the remote fetcher, the clock, URLs, and the
wake-up signals of this process's workers (lost with the process, which is fine: workers also poll)."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import web

from fedserver.activitypub.fetch import RemoteFetcher
from fedserver.clock import SYSTEM_CLOCK, Clock
from fedserver.config import Settings
from fedserver.db import Database
from fedserver.urls import Urls


@dataclass
class Context:
    settings: Settings
    db: Database
    fetcher: RemoteFetcher
    clock: Clock = SYSTEM_CLOCK
    delivery_wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    inbox_wakeup: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def urls(self) -> Urls:
        return Urls(self.settings.base_url)


# How aiohttp handlers find the Context: request.app[CTX_KEY].
CTX_KEY = web.AppKey("ctx", Context)
