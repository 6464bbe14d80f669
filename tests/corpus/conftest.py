"""A real fedserver database in tmp_path, built through the services (no server needed)."""
from __future__ import annotations

import gzip
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
from argon2 import PasswordHasher

from fedserver.activitypub import keys
from fedserver.app import close_context, open_context
from fedserver.context import Context
from fedserver.services import accounts, consent, posting
from fedserver.store import actors as actor_store
from tests.conftest import loopback_settings


@dataclass
class World:
    ctx: Context
    posts: dict[str, str] = field(default_factory=dict)  # label -> post URL

    async def user(self, name: str, *, train_ai: str | None = None, license: str = "CC-BY-4.0",
                   scope: str = "all", include_unlisted: bool = False) -> None:
        await accounts.create_account(self.ctx, name, password="correct horse battery staple")
        if train_ai:
            await self.consent(name, train_ai, license=license, scope=scope, include_unlisted=include_unlisted)

    async def consent(self, name: str, choice: str, *, license: str = "CC-BY-4.0", scope: str = "all",
                      include_unlisted: bool = False) -> None:
        if choice == "allow":
            await consent.set_training_consent(self.ctx, name, "allow", license=license, scope=scope,
                                               include_unlisted=include_unlisted)
        else:
            await consent.set_training_consent(self.ctx, name, choice)

    async def post(self, label: str, name: str, text: str, *, visibility: str = "public",
                   language: str | None = "en", excluded: bool = False, content_warning: str | None = None,
                   reply_to: str | None = None) -> str:
        post = await posting.create_post(self.ctx, name, posting.Draft(
            text=text, visibility=visibility, language=language, exclude_from_corpus=excluded,
            content_warning=content_warning, reply_to=self.posts.get(reply_to, reply_to) if reply_to else None))
        self.posts[label] = post.uri
        return post.uri

    async def delete(self, label: str, name: str) -> None:
        await posting.delete_post(self.ctx, name, self.posts[label])

    async def instance_public_key(self) -> str:
        found = await actor_store.get_instance_actor(self.ctx.db.reader)
        assert found is not None and found[0].public_key_pem
        return found[0].public_key_pem


_KEY_POOL: list[str] = []


@pytest.fixture(autouse=True)
def quick_accounts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Accounts here matter for their posts, not their secrets: real RSA keys, but reused from a
    small pool, and real Argon2 with cheap parameters (tests stay fast; 1 s per account otherwise)."""
    if not _KEY_POOL:
        _KEY_POOL.extend(keys.generate_rsa_private_key_pem() for _ in range(3))
    counter = itertools.count()
    monkeypatch.setattr(accounts, "generate_rsa_private_key_pem", lambda: _KEY_POOL[next(counter) % 3])
    monkeypatch.setattr(accounts, "hash_password", PasswordHasher(time_cost=1, memory_cost=64, parallelism=1).hash)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    ctx = await open_context(loopback_settings(tmp_path / "server", 8999))
    try:
        yield World(ctx)
    finally:
        await close_context(ctx)


def read_jsonl_shards(root: Path) -> list[dict[str, Any]]:
    """Every record of a release's gzip JSON Lines shards, in shard order."""
    records = []
    for path in sorted((root / "data").glob("train-*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            records += [json.loads(line) for line in f]
    return records


def read_removals(root: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (root / "removals.jsonl").read_text(encoding="utf-8").splitlines()]


def release_bytes(root: Path) -> dict[str, bytes]:
    """Every file of a release directory by relative path."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def manifest_of(root: Path) -> dict[str, Any]:
    return json.loads((root / "manifest.json").read_text(encoding="utf-8"))
