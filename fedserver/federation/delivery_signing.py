"""Signing claimed deliveries: each is signed by its author (draft-cavage, as `sign_request` does),
large claims in the signing process (signing_process.py) in chunks, so the first POSTs start while
the rest are signed and the event loop stays free for the POSTs themselves; small claims right here,
so a quiet server never needs a second process."""
from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import AsyncIterator

from fedserver.activitypub.httpsig import UnsignedRequest, body_digest_header, prepare_signed_request, sign_message
from fedserver.activitypub.keys import load_private_key
from fedserver.federation.signing_process import SigningProcess, SigningUnavailable
from fedserver.store.deliveries import ClaimedDelivery, OutboundForDelivery

log = logging.getLogger(__name__)

# Claims of at least this many rows are signed in the signing process. Fewer are signed here, which
# costs ~0.3 ms of event loop each.
OFFLOAD_MIN = 8
# Signatures per request to the signing process: small enough that POSTs start soon after a claim,
# large enough that the pipe costs little (~4 us of event loop per signature at 8, ~1.6 at 32).
CHUNK = 16
# The signing process ends after this long without work, giving its memory back; it starts again in
# ~0.1 s on the next large claim (meanwhile that claim is signed here).
IDLE_SECONDS = 60.0
# After the signing process failed to start, sign here this long before trying again.
START_RETRY_SECONDS = 60.0


@dataclass(frozen=True)
class OutgoingActivity:
    """An activity as sent: serialised once, with its Digest header, for all its deliveries."""
    uri: str
    body: bytes
    digest: str
    key_id: str
    private_key_pem: str

    @classmethod
    def from_row(cls, row: OutboundForDelivery) -> "OutgoingActivity":
        body = row.body.encode("utf-8")
        return cls(row.uri, body, body_digest_header(body), row.key_id, row.private_key_pem)


@dataclass(frozen=True)
class SignedDelivery:
    delivery: ClaimedDelivery
    activity: OutgoingActivity
    headers: dict[str, str]


_Prepared = tuple[ClaimedDelivery, OutgoingActivity, UnsignedRequest]


class DeliverySigner:
    def __init__(self, *, offload_min: int = OFFLOAD_MIN, chunk: int = CHUNK) -> None:
        self.offload_min = offload_min
        self.chunk = chunk
        self.process = SigningProcess()
        self._starting: asyncio.Task[None] | None = None
        self._retry_start_at = 0.0

    async def sign(self, jobs: list[tuple[ClaimedDelivery, OutgoingActivity]]) -> AsyncIterator[list[SignedDelivery]]:
        """Signed deliveries, a chunk at a time as they are ready. A job whose key cannot be used is
        logged and left out."""
        prepared = _prepare(jobs)
        if len(prepared) < self.offload_min:
            if prepared:
                yield _sign_here(prepared)
            return
        by_key: dict[str, list[_Prepared]] = defaultdict(list)
        for item in prepared:
            by_key[item[1].private_key_pem].append(item)
        chunks = [items[i:i + self.chunk] for items in by_key.values() for i in range(0, len(items), self.chunk)]
        if not self.process.ready:
            # Signing here while the process starts (~0.1 s, more on a busy machine) beats waiting for
            # it; once it is ready, the rest of the claim goes there rather than all of it being
            # signed on the event loop (96 rows: 26 ms).
            self._start_process()
            while chunks and not self.process.ready:
                yield _sign_here(chunks.pop(0))
                await asyncio.sleep(0)  # let this chunk's POSTs start
            if not chunks:
                return
        # All chunks are queued in the signing process at once; it answers them in order.
        pending = [asyncio.ensure_future(self.process.sign(chunk[0][1].private_key_pem,
                                                           [unsigned.message for _, _, unsigned in chunk]))
                   for chunk in chunks]
        try:
            for chunk, future in zip(chunks, pending):
                try:
                    signatures = await future
                except SigningUnavailable as exc:
                    log.warning("signing %d deliveries in-process: %s", len(chunk), exc)
                    yield _sign_here(chunk)
                    continue
                yield [SignedDelivery(delivery, activity, unsigned.with_signature(signature))
                       for (delivery, activity, unsigned), signature in zip(chunk, signatures)]
        finally:
            for future in pending:
                future.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    def _start_process(self) -> None:
        loop = asyncio.get_running_loop()
        starting = self._starting is not None and not self._starting.done()
        if starting or loop.time() < self._retry_start_at:
            return

        async def start() -> None:
            try:
                await self.process.start()
            except SigningUnavailable as exc:
                # Not again for a while: each try costs a process start, and signing here works.
                self._retry_start_at = loop.time() + START_RETRY_SECONDS
                log.warning("signing deliveries in-process for %.0f s: %s", START_RETRY_SECONDS, exc)

        self._starting = asyncio.create_task(start(), name="signing-process-start")

    async def close_if_idle(self) -> None:
        if self.process.ready and self.process.idle_for() > IDLE_SECONDS:
            await self.process.close()

    async def close(self) -> None:
        if self._starting is not None:
            await asyncio.gather(self._starting, return_exceptions=True)
        await self.process.close()


def _prepare(jobs: list[tuple[ClaimedDelivery, OutgoingActivity]]) -> list[_Prepared]:
    now = time.time()
    prepared: list[_Prepared] = []
    for delivery, activity in jobs:
        try:
            unsigned = prepare_signed_request(
                "POST", delivery.inbox_url, body=activity.body, body_digest=activity.digest,
                key_id=activity.key_id, key=load_private_key(activity.private_key_pem), now=now)
        except ValueError:
            log.exception("cannot sign the delivery of %s to %s", activity.uri, delivery.inbox_url)
            continue
        prepared.append((delivery, activity, unsigned))
    return prepared


def _sign_here(items: list[_Prepared]) -> list[SignedDelivery]:
    return [SignedDelivery(delivery, activity,
                           unsigned.with_signature(sign_message(load_private_key(activity.private_key_pem),
                                                                unsigned.message)))
            for delivery, activity, unsigned in items]
