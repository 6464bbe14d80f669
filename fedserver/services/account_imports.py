"""Importing the accounts someone blocks or mutes from Mastodon's CSV files (blocked_accounts.csv,
one address a line; muted_accounts.csv, with its header), bounded in size and rows. Addresses are
resolved a batch at a time through the remote-actor service (WebFinger and the actor document by the
safe fetcher), within a time budget; what could not be found or was not reached is reported, and
importing the same file again finishes the rest (blocks and mutes already there are left alone)."""
from __future__ import annotations

import asyncio
import csv
import io
import logging
import time
from dataclasses import dataclass, field

from fedserver.activitypub import webfinger
from fedserver.context import Context
from fedserver.services import remote_actors
from fedserver.services.accounts import require_local_actor
from fedserver.services.follows import FollowError, block, is_blocking, is_muting, mute
from fedserver.store.actors import Actor

log = logging.getLogger(__name__)

KINDS = ("blocks", "mutes")
MAX_IMPORT_BYTES = 256 * 1024
MAX_IMPORT_ACCOUNTS = 1000
# Addresses resolved at once: each may need WebFinger and an actor fetch from its server.
RESOLVE_BATCH = 8
# After this long no new batch starts (the request is still answered in reasonable time); the
# summary names the addresses not reached, and importing the file again picks them up.
TIME_BUDGET_SECONDS = 45.0
_HEADER_CELLS = {"account address"}


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
    if len(data) > MAX_IMPORT_BYTES:
        raise ImportTooLarge(f"The file is {len(data) // 1024 + 1} KB; at most {MAX_IMPORT_BYTES // 1024} KB can be "
                            "imported at once. Split it into smaller files.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportRefused("That file is not a CSV text file (UTF-8). Choose the CSV file you exported.") from None
    addresses: dict[str, None] = {}
    invalid: list[str] = []
    try:
        for row in csv.reader(io.StringIO(text)):
            cell = row[0].strip() if row else ""
            if not cell or cell.lower() in _HEADER_CELLS:
                continue
            try:
                user, host = webfinger.parse_handle(cell)
            except ValueError:
                invalid.append(cell[:80])
                continue
            addresses[f"{user}@{host}"] = None
            if len(addresses) + len(invalid) > MAX_IMPORT_ACCOUNTS:
                raise ImportTooLarge(f"The file lists more than {MAX_IMPORT_ACCOUNTS} accounts; at most "
                                    f"{MAX_IMPORT_ACCOUNTS} can be imported at once. Split it into smaller files.")
    except csv.Error:
        raise ImportRefused("That file is not a CSV file. Choose the CSV file you exported.") from None
    if not addresses:
        raise ImportRefused("The file lists no accounts (addresses like name@example.org).")
    return list(addresses), invalid


async def import_accounts(ctx: Context, username: str, kind: str, data: bytes) -> ImportSummary:
    """Block or mute (kind) every account the CSV data lists."""
    if kind not in KINDS:
        raise ImportRefused("Choose what the file holds: blocked or muted accounts.")
    me = await require_local_actor(ctx, username)
    addresses, invalid = parse_addresses(data)
    summary = ImportSummary(kind=kind, listed=len(addresses) + len(invalid), not_found=invalid)
    deadline = time.monotonic() + TIME_BUDGET_SECONDS
    for start in range(0, len(addresses), RESOLVE_BATCH):
        batch = addresses[start:start + RESOLVE_BATCH]
        if time.monotonic() > deadline:
            summary.not_reached.extend(addresses[start:])
            break
        found = await asyncio.gather(*(_resolve(ctx, address) for address in batch))
        for address, target in zip(batch, found):
            if target is None or target.id == me.id:
                summary.not_found.append(address)
                continue
            await _apply(ctx, me, kind, target, summary, address)
    log.info("%s imported %s: %d listed, %d added, %d already, %d not found, %d not reached", username, kind,
             summary.listed, summary.added, summary.already, len(summary.not_found), len(summary.not_reached))
    return summary


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
