"""A person's posting defaults, as Mastodon keeps them: the visibility, sensitive flag and language
a post gets when the app does not say. Apps show and change them (verify_credentials `source`,
update_credentials `source[...]`, /api/v1/preferences); statuses created through the API use them."""
from __future__ import annotations

import logging
import re
from dataclasses import replace

from fedserver.context import Context
from fedserver.services.accounts import require_local_actor
from fedserver.store import posting_defaults as defaults_store
from fedserver.store.actors import Actor
from fedserver.store.posting_defaults import PostingDefaults

log = logging.getLogger(__name__)

VISIBILITIES = ("public", "unlisted", "followers", "direct")
# ISO 639-1/639-3 with an optional region, as a post's language (api/statuses.py LANGUAGE).
LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z]{2,4})?$")


class DefaultsError(ValueError):
    """A default that cannot be kept (clear message for the person)."""


async def posting_defaults(ctx: Context, actor: Actor) -> PostingDefaults:
    return await defaults_store.get_posting_defaults(ctx.db.reader, actor.id)


async def set_posting_defaults(ctx: Context, username: str, *, visibility: str | None = None,
                               sensitive: bool | None = None, language: str | None = None) -> PostingDefaults:
    """Change the defaults given (None leaves one as it is; language "" clears it)."""
    if visibility is not None and visibility not in VISIBILITIES:
        raise DefaultsError(f"the default visibility must be one of {', '.join(VISIBILITIES)}")
    if language and not LANGUAGE.match(language):
        raise DefaultsError("the default language must be an ISO 639 code such as en")
    actor = await require_local_actor(ctx, username)
    async with ctx.db.transaction() as tx:
        current = await defaults_store.get_posting_defaults(tx, actor.id)
        changed = replace(current, visibility=visibility if visibility is not None else current.visibility,
                          sensitive=sensitive if sensitive is not None else current.sensitive,
                          language=(language or None) if language is not None else current.language)
        await defaults_store.set_posting_defaults(tx, actor.id, changed)
    log.info("%s changed posting defaults", username)
    return changed
