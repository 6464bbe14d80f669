"""A local person's posting defaults (visibility, sensitive, language), kept beside their account."""
from __future__ import annotations

from dataclasses import dataclass

import aiosqlite

from fedserver.store.rows import fetch_one


@dataclass(frozen=True)
class PostingDefaults:
    visibility: str = "public"
    sensitive: bool = False
    language: str | None = None


async def get_posting_defaults(conn: aiosqlite.Connection, actor_id: int) -> PostingDefaults:
    row = await fetch_one(conn, "SELECT default_visibility, default_sensitive, default_language FROM local_accounts"
                                " WHERE actor_id = ?", (actor_id,))
    if row is None:
        return PostingDefaults()
    return PostingDefaults(visibility=row["default_visibility"], sensitive=bool(row["default_sensitive"]),
                           language=row["default_language"])


async def set_posting_defaults(conn: aiosqlite.Connection, actor_id: int, defaults: PostingDefaults) -> None:
    await conn.execute("UPDATE local_accounts SET default_visibility = ?, default_sensitive = ?, default_language = ?"
                       " WHERE actor_id = ?", (defaults.visibility, int(defaults.sensitive), defaults.language,
                                               actor_id))
