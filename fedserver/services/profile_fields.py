"""Profile fields: up to four name/value pairs on a local profile, federated as Mastodon's
PropertyValue attachments, and rel=me verification of values that are links. A value that is an
https URL (http too where the fetcher allows it: an http loopback instance) whose page links back
to the profile with rel="me" gets a verified mark. Pages are fetched through the safe fetcher (its
network policy, timeout and body cap) in a background task after the profile is saved, never on
the request path; a changed value loses its mark and is checked again."""
from __future__ import annotations

import asyncio
import json
import logging
from html.parser import HTMLParser
from typing import Any

from fedserver.activitypub.fetch import FetchError
from fedserver.activitypub.normalize import host_of
from fedserver.activitypub.sanitizing import clean_html
from fedserver.context import Context
from fedserver.store import actors as actor_store
from fedserver.store.actors import Actor
from fedserver.text import render_html

log = logging.getLogger(__name__)

MAX_FIELDS = 4
MAX_NAME = 255
MAX_VALUE = 255
# Pages checked at once in one process: verification is a courtesy, not worth a crowd of fetches.
VERIFY_CONCURRENCY = 4
_verifying: set[asyncio.Task[None]] = set()
_slots: dict[int, asyncio.Semaphore] = {}


class FieldsError(ValueError):
    """The profile fields are not valid (clear message for the person)."""


def checked_fields(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The pairs a person typed, blank rows left out; at most MAX_FIELDS, each part bounded."""
    kept = [(" ".join(name.split()), value.strip()) for name, value in pairs]
    kept = [(name, value) for name, value in kept if name or value]
    if len(kept) > MAX_FIELDS:
        raise FieldsError(f"a profile may have at most {MAX_FIELDS} fields")
    for name, value in kept:
        if not name:
            raise FieldsError(f"give the field with the value {value[:40]!r} a label")
        if len(name) > MAX_NAME or len(value) > MAX_VALUE:
            raise FieldsError(f"field labels and values may have at most {MAX_NAME} characters")
    return kept


def stored_fields(ctx: Context, pairs: list[tuple[str, str]], previous: list[dict[str, Any]]) -> str:
    """The fields_json of a local account: each value rendered to HTML (links clickable, the rest
    escaped), keeping a verified mark only where the value did not change."""
    verified = {f.get("source"): f.get("verified_at") for f in previous if f.get("verified_at")}
    out = []
    for name, value in pairs:
        html = render_html(value, mentions={}, tag_url=ctx.urls.tag, local_domain=ctx.urls.domain) if value else ""
        # Mastodon's field values are inline HTML, not paragraphs.
        if html.startswith("<p>") and html.endswith("</p>") and html.count("<p>") == 1:
            html = html[3:-4]
        # rel="me" on our side too, as Mastodon marks field links: the linked site can verify back.
        html = html.replace('rel="nofollow noopener noreferrer"', 'rel="me nofollow noopener noreferrer"')
        out.append({"name": name, "value": html, "source": value, "verified_at": verified.get(value)})
    return json.dumps(out, separators=(",", ":"))


async def clean_remote_fields(fields_json: str, uri: str) -> str:
    """A remote actor's fields (activitypub.actors.profile_fields) with their HTML values sanitized
    as bios are; names stay plain text (escaped when shown). Other servers' verified marks are not
    believed: none is stored."""
    fields = json.loads(fields_json)
    cleaned = [{"name": f["name"], "value": await clean_html(f["value"], what=f"a profile field of {uri}"),
                "verified_at": None} for f in fields]
    return json.dumps(cleaned, separators=(",", ":"))


def verifiable_url(ctx: Context, value: str) -> str | None:
    """The value as a URL to check for rel=me, when it is one: https, or http where this instance
    itself runs on http (a loopback test instance, whose fetcher allows http)."""
    if " " in value or host_of(value) is None:
        return None
    allowed = ("https://", "http://") if ctx.settings.instance.scheme == "http" else ("https://",)
    return value if value.lower().startswith(allowed) else None


class _MeLinks(HTMLParser):
    """The hrefs of <a> and <link> elements whose rel has the token "me"."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in ("a", "link"):
            return
        values = dict(attrs)
        if "me" in (values.get("rel") or "").lower().split() and values.get("href"):
            self.hrefs.append(str(values["href"]).strip())


def links_back(page: str, profile_urls: set[str]) -> bool:
    """Whether the page has a rel="me" link to one of the profile's addresses."""
    parser = _MeLinks()
    try:
        parser.feed(page)
        parser.close()
    except Exception:  # noqa: BLE001 - html.parser copes with nearly anything; a page it cannot read has no link
        return False
    wanted = {url.rstrip("/").lower() for url in profile_urls}
    return any(href.rstrip("/").lower() in wanted for href in parser.hrefs)


def schedule_verification(ctx: Context, actor: Actor) -> None:
    """Check, in the background, each of the account's link values that has no mark yet."""
    if not any(verifiable_url(ctx, f.get("source") or "") and not f.get("verified_at") for f in actor.fields):
        return
    task = asyncio.get_running_loop().create_task(verify_fields(ctx, actor.id), name=f"rel-me-{actor.id}")
    _verifying.add(task)
    task.add_done_callback(_verifying.discard)


async def verify_fields(ctx: Context, actor_id: int) -> int:
    """Fetch each unverified link value's page and mark the field verified when the page links
    back with rel="me"; returns how many fields were marked. A value changed meanwhile is left
    for the check its own save started."""
    actor = await actor_store.get_actor(ctx.db.reader, actor_id)
    if actor is None or not actor.is_local:
        return 0
    profile_urls = {url for url in (actor.url, actor.uri) if url}
    confirmed: set[str] = set()
    slots = _slots.setdefault(id(asyncio.get_running_loop()), asyncio.Semaphore(VERIFY_CONCURRENCY))
    for field in actor.fields:
        url = verifiable_url(ctx, field.get("source") or "")
        if url is None or field.get("verified_at"):
            continue
        async with slots:
            try:
                body = await ctx.fetcher.get_body(url, "text/html")
            except FetchError as exc:
                log.info("rel=me: %s of %s not verified: %s", url, actor.uri, exc)
                continue
        # Parsed in a thread: a page of up to max_fetch_body_bytes of odd markup must not stall the loop.
        if await asyncio.to_thread(links_back, body.decode("utf-8", errors="replace"), profile_urls):
            confirmed.add(url)
        else:
            log.info("rel=me: %s does not link back to %s", url, actor.uri)
    if not confirmed:
        return 0
    now = ctx.clock.now_iso()
    async with ctx.db.transaction() as tx:
        current = await actor_store.get_actor(tx, actor_id)
        if current is None:
            return 0
        fields = current.fields
        marked = 0
        for field in fields:
            if field.get("source") in confirmed and not field.get("verified_at"):
                field["verified_at"] = now
                marked += 1
        if marked:
            await actor_store.update_actor_profile(tx, actor_id, now=now,
                                                   fields_json=json.dumps(fields, separators=(",", ":")))
    log.info("rel=me: %d field(s) of %s verified", marked, actor.uri)
    return marked
