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
        # Built once per base URL rather than on every access (it is used on every request).
        cached = self.__dict__.get("_urls")
        if cached is None or cached.base != self.settings.base_url.rstrip("/"):
            cached = self.__dict__["_urls"] = Urls(self.settings.base_url)
        return cached


# How aiohttp handlers find the Context: request.app[CTX_KEY].
CTX_KEY = web.AppKey("ctx", Context)
