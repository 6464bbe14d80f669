"""`fedserver corpus export`: an offline release of the corpus as a directory of gzip JSON Lines (or
Parquet) shards, removals.jsonl, croissant.json, a dataset card and a signed manifest.

Records stream from one read snapshot in batches, so memory stays flat however large the corpus
is, and everything written is a function of the database state and the settings: the same state
gives byte-identical files (gzip without time or name, sorted keys, dates taken from the corpus).
Records are built and encoded here; gzip runs in a compressor process (shards.py), on the other
core."""
from __future__ import annotations

import gc
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, TextIO

import aiosqlite

from fedserver import __version__
from fedserver.context import Context
from fedserver.corpus import card, croissant
from fedserver.corpus.card import DatasetFacts
from fedserver.corpus.defaults import DEFAULT_GZIP_LEVEL, DEFAULT_SHARD_SIZE
from fedserver.corpus.manifest import (MANIFEST, SIGNATURE, SIGNATURE_INFO, ReleasePlan, describe_file,
                                       manifest_bytes, plan_release, record_release, sign_manifest)
from fedserver.corpus.records import RECORD_SCHEMA_VERSION, CorpusTally, consenting_handles, iter_records
from fedserver.corpus.shards import SUFFIXES, ShardError, ShardSet
from fedserver.corpus.sync import corpus_secret, reconcile
from fedserver.corpus.terms import CONSENT_TERMS, researcher_terms
from fedserver.db import open_database
from fedserver.services import corpus_custody
from fedserver.services.consent import verify_log
from fedserver.store import actors as actor_store
from fedserver.store import corpus as corpus_store

log = logging.getLogger(__name__)

FORMATS = {"jsonl": (SUFFIXES["jsonl"], croissant.JSONL), "parquet": (SUFFIXES["parquet"], croissant.PARQUET)}
README, CROISSANT, REMOVALS = "README.md", "croissant.json", "removals.jsonl"
_OWN_FILES = {MANIFEST, SIGNATURE, SIGNATURE_INFO, README, CROISSANT, REMOVALS}
_SHARD_NAME = re.compile(r"^train-\d{5}-of-\d{5}\.(jsonl\.gz|parquet)$")


class ExportError(Exception):
    """The export cannot be made (clear message for the admin)."""


@dataclass(frozen=True)
class ExportResult:
    out: Path
    version: str
    previous_version: str | None
    new_release: bool
    records: int
    shards: int
    removals: int
    consent_log_verified: bool
    seconds: float

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else float(self.records)


async def export_release(ctx: Context, out: Path | str, *, format: str = "jsonl", scrub: bool = False,
                         shard_size: int = DEFAULT_SHARD_SIZE, gzip_level: int = DEFAULT_GZIP_LEVEL,
                         progress: bool | None = None, stream: TextIO | None = None,
                         recipients: list[str] | tuple[str, ...] = ()) -> ExportResult:
    """Write a release of the corpus as it is now into out (new, empty, or an earlier release,
    which is replaced whole). gzip_level (1-9): JSON Lines compression, recorded in the manifest;
    it changes the files' bytes, never the records or the version. progress None: show a bar when
    the stream is a terminal. recipients: names of the researchers this release is for; each must
    be registered, not revoked and not past a removal deadline, and each is recorded as having
    received the records of every author in it (what the people's consent pages show)."""
    started = time.monotonic()
    if format not in FORMATS:
        raise ExportError(f"unknown format {format!r}; choose {' or '.join(FORMATS)}")
    if shard_size < 1:
        raise ExportError("--shard-size must be at least 1")
    if not 1 <= gzip_level <= 9:
        raise ExportError("--gzip-level must be between 1 and 9")
    if format == "parquet":
        _require_pyarrow()
    given_to = await corpus_custody.release_recipients(ctx, list(recipients))
    for researcher in given_to:
        if researcher.scrub and not scrub:
            raise ExportError(f"researcher {researcher.name} receives scrubbed records (their data-use terms say"
                              " so); export with --scrub")
    out = Path(out).resolve()
    _check_target(out)
    stream = stream or sys.stderr
    await reconcile(ctx)
    secret = await corpus_secret(ctx)
    verification = await verify_log(ctx)
    if not verification.ok:
        # Every record is authorised by a consent event; a log that was altered proves nothing, so
        # nothing is released until the admin has looked into it.
        raise ExportError(f"the consent log does not verify (event {verification.first_bad_id}: "
                          f"{verification.problem}); no release was written")
    instance = await actor_store.get_instance_actor(ctx.db.reader)
    if instance is None:
        raise ExportError("this server has no instance actor to sign the release with")
    out.parent.mkdir(parents=True, exist_ok=True)
    # Written beside out and renamed into place at the end: no half-written release is ever seen.
    # (mkdtemp's mode 0700 stays: a release is for registered researchers only.)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        # A connection of our own in one read transaction: records, counts and removals all agree
        # with the cursor even while the server keeps writing.
        async with open_database(ctx.db.path or ctx.db.url) as db, corpus_store.read_snapshot(db.reader) as conn:
            plan = await plan_release(conn)
            total = await corpus_store.count_present(conn)
            handles = await _consenting_handles(conn) if scrub else None
            bar = ProgressBar(total, stream, stream.isatty() if progress is None else progress)
            tally = CorpusTally(per_author=bool(given_to))
            shards, records_sha256 = await _write_shards(conn, secret, staging, format, shard_size, total,
                                                         handles, bar, gzip_level, tally)
            # The card's counts come from the records just written (no second scan of the corpus).
            authors = None if tally.authors is not None else await corpus_store.count_present_authors(conn)
            facts = await card.gather_facts(ctx, conn, plan, stats=tally.stats(authors=authors))
            removals = await _write_removals(conn, staging, plan)
        document = await croissant.croissant_document(ctx, files=_describe(staging, format, shards, removals),
                                                      facts=facts, records_glob=f"data/train-*{FORMATS[format][0]}")
        (staging / CROISSANT).write_bytes(croissant.render(document))
        (staging / README).write_text(card.render_card(
            facts, data_glob=f"data/train-*{FORMATS[format][0]}", shards=shards, removals=removals,
            scrubbed=scrub, format_name=format), encoding="utf-8")
        manifest = _manifest(facts, staging, shards, removals, format=format, scrub=scrub,
                             verified=verification.ok, signer=instance[0], records_sha256=records_sha256,
                             compression=({"codec": "gzip", "level": gzip_level} if format == "jsonl"
                                          else {"codec": "zstd"}),
                             removal_deadline_days=ctx.settings.corpus.removal_deadline_days)
        actor, account = instance
        sign_manifest(staging, manifest_bytes(manifest), private_key_pem=account.private_key_pem,
                      key_id=actor.key_id or f"{actor.uri}#main-key", public_key_pem=actor.public_key_pem or "",
                      signer=actor.uri)
        _install(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    async with ctx.db.transaction() as tx:
        await record_release(tx, plan, facts.records, ctx.clock.now_iso())
    if given_to:
        await corpus_custody.record_release_receipts(ctx, given_to, version=plan.version, seq=plan.seq,
                                                     counts=dict(tally.per_author or {}))
    result = ExportResult(out=out, version=plan.version, previous_version=plan.previous_version,
                          new_release=plan.is_new, records=facts.records, shards=len(shards), removals=removals,
                          consent_log_verified=verification.ok, seconds=time.monotonic() - started)
    log.info("corpus release %s written to %s: %d records, %d removals", result.version, out, result.records,
             result.removals)
    return result


def _require_pyarrow() -> None:
    try:
        import pyarrow  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise ExportError("--format parquet needs pyarrow: pip install 'fedserver[parquet]'") from None


def _check_target(out: Path) -> None:
    """Refuse to write over anything that is not an earlier release (we replace that whole)."""
    if not out.exists():
        return
    if not out.is_dir():
        raise ExportError(f"{out} exists and is not a directory")
    strangers = [p for p in out.iterdir() if not _is_release_file(out, p)]
    if strangers:
        raise ExportError(f"{out} holds files that are not part of a corpus release ({strangers[0].name}); "
                          "choose a new or empty directory")


def _is_release_file(out: Path, path: Path) -> bool:
    if path.name == "data" and path.is_dir():
        return all(_SHARD_NAME.match(p.name) and p.is_file() for p in path.iterdir())
    return path.name in _OWN_FILES and path.is_file()


def _install(staging: Path, out: Path) -> None:
    if out.exists():
        _check_target(out)  # still only an earlier release
        shutil.rmtree(out)
    os.rename(staging, out)


async def _consenting_handles(conn: aiosqlite.Connection) -> set[str]:
    return await consenting_handles(conn)


# --- Shards ------------------------------------------------------------------------------------

# Records per database batch: ~1 MiB of JSON. Measured on a million records, 1,000 a batch was
# faster than 2,000-5,000 (and holds less memory); 250 pays too many round trips.
RECORD_BATCH = 1000


async def _write_shards(conn: aiosqlite.Connection, secret: bytes, root: Path, format: str, shard_size: int,
                        total: int, handles: set[str] | None, bar: "ProgressBar", gzip_level: int,
                        tally: CorpusTally) -> tuple[list[dict[str, Any]], str]:
    """Stream every present record into shards; returns the shards (path, records, records_sha256,
    and for gzip the file's sha256 and bytes) and the digest of all records. Records are built and
    encoded on this thread (the CLI's, with nothing else on its loop), between reads on the
    connection's thread: under the GIL another thread would not make them faster, and a thread
    reading rows while this one builds records waits for the GIL on every row. Compression runs in
    the shard set's compressor process."""
    shards = ShardSet(root, format, shard_size, total, gzip_level=gzip_level)
    written = 0
    _keep_heap_slack()
    try:
        with _collector_paused():
            async for batch in iter_records(conn, secret, batch=RECORD_BATCH, scrub_handles=handles, tally=tally):
                shards.write(batch)
                written += len(batch)
                bar.advance(len(batch))
        shards.close()
    except ShardError as exc:
        shards.abort()
        raise ExportError(str(exc)) from None
    except BaseException:
        shards.abort()
        raise
    finally:
        bar.finish()
    if written != total:
        raise ExportError(f"counted {total} records but read {written}; export again")
    return shards.files, shards.records_sha256


# mallopt's M_TOP_PAD (glibc's malloc.h): how much freed memory above the heap's top is kept.
_M_TOP_PAD = -2
_HEAP_SLACK = 8 << 20


def _keep_heap_slack() -> None:
    """Each batch of records (~4 MB of strings and dicts) is freed once written, and glibc gives
    freed memory at the top of the heap back to the kernel, so the next batch faulted the same pages
    in again: ~85,000 page faults, ~0.1 s of an export of 100,000 records. Keeping 8 MiB of slack on
    top of the heap avoids that (peak RSS +1 MiB). glibc only; elsewhere nothing changes."""
    try:
        import ctypes

        ctypes.CDLL(None).mallopt(_M_TOP_PAD, _HEAP_SLACK)
    except (OSError, AttributeError, TypeError):
        pass


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off while records stream. Records hold no cycles and reference
    counting frees each batch once it is written, but allocating them by the hundred thousand
    triggers a collector pass every few hundred allocations, each scanning the batch in hand and,
    every few passes, everything the process has loaded: ~0.1 s of the ~0.75 s that streaming
    100,000 records takes. (Exports run in the CLI's own process: nothing else there waits on the
    collector.)"""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


async def _write_removals(conn: aiosqlite.Connection, root: Path, plan: ReleasePlan) -> int:
    """Records of the previous release removed since, one JSON object a line, by record id."""
    count = 0
    with (root / REMOVALS).open("wb") as f:
        if plan.previous_version is not None:
            async for rows in corpus_store.iter_removals_between(conn, plan.previous_seq, plan.seq):
                f.write("".join(json.dumps({"reason": r["reason"], "record_id": r["record_id"],
                                            "removed_at": r["created_at"]}, sort_keys=True, separators=(",", ":"))
                                + "\n" for r in rows).encode("utf-8"))
                count += len(rows)
    return count


# --- Metadata ----------------------------------------------------------------------------------

def _describe(root: Path, format: str, shards: list[dict[str, Any]], removals: int
              ) -> list[croissant.DistributionFile]:
    files = []
    for shard in shards:
        # The gzip compressor hashed its files as it wrote them; Parquet files are read back.
        if "sha256" not in shard:
            entry = describe_file(root, shard["path"])
            shard.update(sha256=entry["sha256"], bytes=entry["bytes"])
        files.append(croissant.DistributionFile(shard["path"], shard["path"], FORMATS[format][1],
                                                sha256=shard["sha256"], content_size=shard["bytes"],
                                                description=f"{shard['records']} records of the train split."))
    entry = describe_file(root, REMOVALS)
    files.append(croissant.DistributionFile(REMOVALS, REMOVALS, croissant.JSONL, sha256=entry["sha256"],
                                            content_size=entry["bytes"],
                                            # An empty file has no columns for a RecordSet to read.
                                            holds="removals" if removals else "other",
                                            description=f"{removals} records removed since the previous release."))
    return files


def _manifest(facts: DatasetFacts, root: Path, shards: list[dict[str, Any]], removals: int, *, format: str,
              scrub: bool, verified: bool, signer: actor_store.Actor, records_sha256: str,
              compression: dict[str, Any], removal_deadline_days: int) -> dict[str, Any]:
    plan = facts.plan
    # The terms as a researcher receiving this release accepts them: this deadline, this form.
    terms = researcher_terms(removal_deadline_days, scrub)
    files = [{"path": s["path"], "sha256": s["sha256"], "bytes": s["bytes"], "records": s["records"],
              "records_sha256": s["records_sha256"]} for s in shards]
    files.append(describe_file(root, REMOVALS, records=removals))
    files += [describe_file(root, CROISSANT), describe_file(root, README)]
    return {
        "name": facts.name,
        "version": plan.version,
        "previous_version": plan.previous_version,
        "created_at": plan.created_at,
        "corpus_cursor": plan.seq,
        "previous_corpus_cursor": plan.previous_seq if plan.previous_version else None,
        "records": facts.records,
        # The records themselves, as JSON Lines: equal for equal content whatever the format,
        # compression or shard size (the files' sha256 are not).
        "records_sha256": records_sha256,
        "removals": removals,
        "format": format,
        "compression": compression,
        "scrubbed": scrub,
        "record_schema_version": RECORD_SCHEMA_VERSION,
        "consent_log": {"head": facts.consent_head, "verified": verified},
        "consent_terms": {"version": CONSENT_TERMS.version, "sha256": CONSENT_TERMS.sha256},
        "researcher_terms": {"version": terms.version, "sha256": terms.sha256},
        "removal_deadline_days": removal_deadline_days,
        "signer": {"actor": signer.uri, "key_id": signer.key_id},
        "generator": f"fedserver {__version__}",
        "files": sorted(files, key=lambda f: f["path"]),
    }


# --- Progress ----------------------------------------------------------------------------------

class ProgressBar:
    """records written / total and the rate, redrawn at most ten times a second."""

    def __init__(self, total: int, stream: TextIO, enabled: bool) -> None:
        self.total, self.stream, self.enabled = total, stream, enabled
        self.done = 0
        self._started = self._drawn = time.monotonic()

    def advance(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if self.enabled and now - self._drawn >= 0.1:
            self._drawn = now
            self._draw(now)

    def finish(self) -> None:
        if self.enabled:
            self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()

    def _draw(self, now: float) -> None:
        share = self.done / self.total if self.total else 1.0
        filled = int(share * 30)
        rate = self.done / max(now - self._started, 1e-6)
        self.stream.write(f"\rexporting [{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total} records"
                          f" {share:4.0%} {rate:,.0f} rec/s")
        self.stream.flush()
