"""The URLs this server mints for its actors, objects and endpoints (one place, so ids never drift)."""
from __future__ import annotations

import secrets
from urllib.parse import urlsplit


class Urls:
    def __init__(self, base_url: str) -> None:
        self.base = base_url.rstrip("/")
        self.domain = urlsplit(self.base).netloc

    def actor(self, username: str) -> str:
        return f"{self.base}/users/{username}"

    def key_id(self, actor_uri: str) -> str:
        return f"{actor_uri}#main-key"

    def inbox(self, username: str) -> str:
        return f"{self.actor(username)}/inbox"

    def outbox(self, username: str) -> str:
        return f"{self.actor(username)}/outbox"

    def followers(self, username: str) -> str:
        return f"{self.actor(username)}/followers"

    def following(self, username: str) -> str:
        return f"{self.actor(username)}/following"

    def featured(self, username: str) -> str:
        return f"{self.actor(username)}/collections/featured"

    def profile(self, username: str) -> str:
        return f"{self.base}/@{username}"

    def post(self, username: str, post_id: int) -> str:
        return f"{self.actor(username)}/statuses/{post_id}"

    def post_page(self, username: str, post_id: int) -> str:
        return f"{self.base}/@{username}/{post_id}"

    def tag(self, name: str) -> str:
        return f"{self.base}/tags/{name}"

    @property
    def shared_inbox(self) -> str:
        return f"{self.base}/inbox"

    @property
    def instance_actor(self) -> str:
        return f"{self.base}/actor"

    def new_activity(self) -> str:
        return f"{self.base}/activities/{secrets.token_hex(12)}"

    def is_local(self, uri: str) -> bool:
        return uri.startswith(self.base + "/")
