"""Importing Mastodon's CSV files of the accounts someone blocks or mutes (blocked_accounts.csv, one
address a line; muted_accounts.csv, with its header) and of the posts they bookmarked (bookmarks.csv,
one post URL a line), bounded in size and rows. Addresses are resolved a batch at a time through the
remote-actor service (WebFinger and the actor document by the safe fetcher), post URLs through
search's URL resolution (the same fetcher), within a time budget; what could not be found or was not
reached is reported, and importing the same file again finishes the rest (what is already there is
left alone)."""
from __future__ import annotations

import asyncio
import csv
import io
import logging
import time
from dataclasses import dataclass, field
from typing import Callable

from fedserver.activitypub import webfinger
from fedserver.context import Context
from fedserver.services import bookmarks, remote_actors, search
from fedserver.services.accounts import require_local_actor
from fedserver.services.follows import FollowError, block, is_blocking, is_muting, mute
from fedserver.store.actors import Actor
from fedserver.store.posts import Post

log = logging.getLogger(__name__)

KINDS = ("blocks", "mutes", "bookmarks")
MAX_IMPORT_BYTES = 256 * 1024
# Rows (accounts or posts) one file may list.
MAX_IMPORT_ROWS = 1000
# Addresses resolved at once: each may need WebFinger and an actor fetch from its server.
RESOLVE_BATCH = 8
# After this long no new batch starts (the request is still answered in reasonable time); the
# summary names the addresses not reached, and importing the file again picks them up.
TIME_BUDGET_SECONDS = 45.0
# Header cells of Mastodon's files (muted_accounts.csv's; bookmarks.csv has none, but a hand-made
# file may name its column).
_HEADER_CELLS = {"account address", "#uri", "uri", "url"}


class ImportRefused(Exception):
    """The file cannot be imported as it is (clear message for the person)."""


class ImportTooLarge(ImportRefused):
    """The file is larger, or lists more accounts, than one import takes."""


@dataclass
class ImportSummary:
    kind: str
    listed: int = 0
    added: int = 0
    already: int = 0
    not_found: list[str] = field(default_factory=list)
    not_reached: list[str] = field(default_factory=list)


def parse_addresses(data: bytes) -> tuple[list[str], list[str]]:
    """The account addresses (name@host) in a Mastodon blocks or mutes CSV, in order, each once, and
    the cells that are not addresses: its first column; a header row, blank lines and other columns
    are ignored."""
    return _parse(data, _address, "accounts", "addresses like name@example.org")


def parse_post_urls(data: bytes) -> tuple[list[str], list[str]]:
    """The post URLs in a Mastodon bookmarks CSV (one a line, no header), in order, each once, and
    the cells that are not http(s) URLs."""
    return _parse(data, _post_url, "posts", "post links like https://example.org/@name/123")


def _address(cell: str) -> str | None:
    try:
        user, host = webfinger.parse_handle(cell)
    except ValueError:
        return None
    return f"{user}@{host}"


def _post_url(cell: str) -> str | None:
    return cell if search.is_url(cell) and len(cell) <= search.MAX_URL else None


def _parse(data: bytes, read: Callable[[str], str | None], noun: str, example: str) -> tuple[list[str], list[str]]:
    if len(data) > MAX_IMPORT_BYTES:
        raise ImportTooLarge(f"The file is {len(data) // 1024 + 1} KB; at most {MAX_IMPORT_BYTES // 1024} KB can be "
                             "imported at once. Split it into smaller files.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportRefused("That file is not a CSV text file (UTF-8). Choose the CSV file you exported.") from None
    found: dict[str, None] = {}
    invalid: list[str] = []
    try:
        for row in csv.reader(io.StringIO(text)):
            cell = row[0].strip() if row else ""
            if not cell or cell.lower() in _HEADER_CELLS:
                continue
            value = read(cell)
            if value is None:
                invalid.append(cell[:80])
            else:
                found[value] = None
            if len(found) + len(invalid) > MAX_IMPORT_ROWS:
                raise ImportTooLarge(f"The file lists more than {MAX_IMPORT_ROWS} {noun}; at most "
                                     f"{MAX_IMPORT_ROWS} can be imported at once. Split it into smaller files.")
    except csv.Error:
        raise ImportRefused("That file is not a CSV file. Choose the CSV file you exported.") from None
    if not found:
        raise ImportRefused(f"The file lists no {noun} ({example}).")
    return list(found), invalid


async def import_file(ctx: Context, username: str, kind: str, data: bytes) -> ImportSummary:
    """Block or mute every account, or bookmark every post (kind), that the CSV data lists."""
    if kind not in KINDS:
        raise ImportRefused("Choose what the file holds: blocked or muted accounts, or bookmarks.")
    me = await require_local_actor(ctx, username)
    wanted, invalid = parse_post_urls(data) if kind == "bookmarks" else parse_addresses(data)
    summary = ImportSummary(kind=kind, listed=len(wanted) + len(invalid), not_found=invalid)
    deadline = time.monotonic() + TIME_BUDGET_SECONDS
    for start in range(0, len(wanted), RESOLVE_BATCH):
        batch = wanted[start:start + RESOLVE_BATCH]
        if time.monotonic() > deadline:
            summary.not_reached.extend(wanted[start:])
            break
        if kind == "bookmarks":
            posts = await asyncio.gather(*(_resolve_post(ctx, me, url) for url in batch))
            for url, post in zip(batch, posts):
                await _bookmark(ctx, me, post, summary, url)
            continue
        found = await asyncio.gather(*(_resolve(ctx, address) for address in batch))
        for address, target in zip(batch, found):
            if target is None or target.id == me.id:
                summary.not_found.append(address)
                continue
            await _apply(ctx, me, kind, target, summary, address)
    log.info("%s imported %s: %d listed, %d added, %d already, %d not found, %d not reached", username, kind,
             summary.listed, summary.added, summary.already, len(summary.not_found), len(summary.not_reached))
    return summary


async def _resolve_post(ctx: Context, me: Actor, url: str) -> Post | None:
    """The post at url (ours, one we hold, or fetched now), if the person may see it."""
    try:
        opened = await search.resolve_url(ctx, me, url)
    except search.SearchError as exc:
        log.info("import: %s: %s", url, exc)
        return None
    return opened.post


async def _bookmark(ctx: Context, me: Actor, post: Post | None, summary: ImportSummary, url: str) -> None:
    if post is None:
        summary.not_found.append(url[:200])
        return
    if post.id in await bookmarks.bookmarked_ids(ctx, me, [post.id]):
        summary.already += 1
        return
    try:
        await bookmarks.set_bookmark(ctx, me, post, on=True)
    except bookmarks.BookmarkError as exc:
        log.info("import: %s: %s", url, exc)
        summary.not_found.append(url[:200])
        return
    summary.added += 1


async def _resolve(ctx: Context, address: str) -> Actor | None:
    try:
        return await remote_actors.resolve_handle(ctx, address)
    except remote_actors.ActorNotFound as exc:
        log.info("import: %s not found: %s", address, exc)
        return None


async def _apply(ctx: Context, me: Actor, kind: str, target: Actor, summary: ImportSummary, address: str) -> None:
    try:
        if kind == "blocks":
            if await is_blocking(ctx, me, target):
                summary.already += 1
                return
            await block(ctx, me.username, target)
        else:
            if await is_muting(ctx, me, target):
                summary.already += 1
                return
            await mute(ctx, me.username, target, muted=True)
    except FollowError as exc:
        log.info("import: %s: %s", address, exc)
        summary.not_found.append(address)
        return
    summary.added += 1
