"""RSA signing for large fan-outs in a child process, so it runs beside the event loop on another
core. One RSA-2048 signature costs ~0.26 ms, more than the rest of a delivery: signed on the event
loop, a fan-out to personal inboxes was bound by it (bench/RESULTS.md, fanout). cryptography does
release the GIL while it signs (two threads: 7,300 signatures/s against 3,700 for one), but a
signing thread must take the GIL back after every signature, and while the event loop is busy that
waits for the switch interval (5 ms): 184 signatures/s in a thread beside a busy loop. In the
fan-out benchmark a signing thread gave 1,400-1,800 deliveries/s to personal inboxes, this process
1,850-2,400 in interleaved runs.

The parent sends batches over the child's stdin and reads the signatures from its stdout, in order
(asyncio pipes: no threads here). The child is this module run with `python -m`, imports only the
signing code, and ends when its stdin closes (the server stopped or died). The private key travels
only over that pipe. Framing, all integers unsigned 32-bit big-endian:

    request:  size | len(pem) | pem | count | (len(message) | message) * count
    response: size | ok (1 byte) | (len(signature) | signature) * count, or an error text if not ok
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import struct
import sys
from collections import deque
from pathlib import Path

log = logging.getLogger(__name__)

_U32 = struct.Struct("!I")
# A child that does not answer a batch in this long is considered stuck (a batch is ~50 signatures).
ANSWER_TIMEOUT_SECONDS = 30.0


class SigningUnavailable(Exception):
    """The child process could not be started, died, or refused a batch: sign in-process instead."""


class SigningProcess:
    """One child process signing batches of messages with a PEM private key. Started on first use;
    `close` ends it (also when idle, to give its memory back)."""

    def __init__(self) -> None:
        self._proc: asyncio.subprocess.Process | None = None
        self._waiting: deque[asyncio.Future[list[bytes]]] = deque()
        self._reader: asyncio.Task[None] | None = None
        self._starting: asyncio.Lock | None = None
        self._last_used = 0.0
        self._answered_ping = False

    @property
    def ready(self) -> bool:
        """Started, and answered its first (empty) batch: requests are answered without delay."""
        return self._answered_ping and self._proc is not None and self._proc.returncode is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def idle_for(self) -> float:
        """Seconds since the last batch finished (0 while one is pending or when not running)."""
        if not self.ready or self._waiting:
            return 0.0
        return asyncio.get_running_loop().time() - self._last_used

    async def sign(self, private_key_pem: str, messages: list[bytes]) -> list[bytes]:
        """Signatures of `messages`, in order, made by the child. Raises SigningUnavailable."""
        if not messages:
            return []
        await self.start()
        return await self._request(private_key_pem, messages)

    async def _request(self, private_key_pem: str, messages: list[bytes]) -> list[bytes]:
        proc = self._proc
        assert proc is not None and proc.stdin is not None
        pem = private_key_pem.encode("ascii")
        parts = [_U32.pack(len(pem)), pem, _U32.pack(len(messages))]
        for message in messages:
            parts += [_U32.pack(len(message)), message]
        payload = b"".join(parts)
        future: asyncio.Future[list[bytes]] = asyncio.get_running_loop().create_future()
        self._waiting.append(future)
        try:
            proc.stdin.write(_U32.pack(len(payload)) + payload)
            await proc.stdin.drain()
        except (ConnectionError, RuntimeError) as exc:
            await self._broken(f"child stdin: {exc}")
        try:
            signatures = await asyncio.wait_for(asyncio.shield(future), timeout=ANSWER_TIMEOUT_SECONDS)
        except asyncio.TimeoutError:
            await self._broken("child did not answer")
            raise SigningUnavailable("signing process did not answer") from None
        if len(signatures) != len(messages):
            raise SigningUnavailable("signing process answered the wrong number of signatures")
        return signatures

    async def close(self) -> None:
        proc, self._proc = self._proc, None
        self._answered_ping = False
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), timeout=5)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
            self._reader = None
        self._fail_waiting("signing process closed")

    async def start(self) -> None:
        """Start the child unless it runs (~0.1 s). Raises SigningUnavailable."""
        if self.ready:
            return
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self.ready:
                return
            await self.close()
            root = str(Path(__file__).resolve().parents[2])
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
            try:
                self._proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "fedserver.federation.signing_process", stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE, env=env)
            except OSError as exc:
                raise SigningUnavailable(f"cannot start the signing process: {exc}") from exc
            self._reader = asyncio.create_task(self._read_answers(self._proc), name="signing-process-reader")
            # An empty batch: answered once the child has imported the signing code and is ready.
            try:
                await self._request("", [])
            except SigningUnavailable:
                await self.close()
                raise
            self._answered_ping = True
            self._last_used = asyncio.get_running_loop().time()
            log.info("signing process %d started", self._proc.pid)

    async def _read_answers(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        try:
            while True:
                (size,) = _U32.unpack(await proc.stdout.readexactly(4))
                frame = await proc.stdout.readexactly(size)
                future = self._waiting.popleft() if self._waiting else None
                self._last_used = asyncio.get_running_loop().time()
                if future is None or future.done():
                    continue
                if frame[:1] != b"\x01":
                    future.set_exception(SigningUnavailable(frame[1:].decode("utf-8", "replace")))
                    continue
                future.set_result(_split(frame, 1))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        self._fail_waiting("signing process ended")

    async def _broken(self, reason: str) -> None:
        log.warning("signing process unusable (%s): restarting it on next use", reason)
        self._answered_ping = False
        self._fail_waiting(reason)
        proc = self._proc
        if proc is not None and proc.returncode is None:
            proc.kill()

    def _fail_waiting(self, reason: str) -> None:
        while self._waiting:
            future = self._waiting.popleft()
            if not future.done():
                future.set_exception(SigningUnavailable(reason))


def _split(frame: bytes, pos: int) -> list[bytes]:
    items: list[bytes] = []
    while pos < len(frame):
        (length,) = _U32.unpack_from(frame, pos)
        pos += 4
        items.append(frame[pos:pos + length])
        pos += length
    return items


def _child() -> None:
    from fedserver.activitypub.httpsig import sign_message
    from fedserver.activitypub.keys import load_private_key

    # Ctrl-C in a terminal reaches the whole process group: the parent decides when this ends.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    source, sink = sys.stdin.buffer, sys.stdout.buffer
    while True:
        head = source.read(4)
        if len(head) < 4:
            return
        (size,) = _U32.unpack(head)
        frame = source.read(size)
        if len(frame) < size:
            return
        (pem_length,) = _U32.unpack_from(frame, 0)
        pem = frame[4:4 + pem_length].decode("ascii")
        try:
            messages = _split(frame, 8 + pem_length)
            signatures: list[bytes] = []
            if messages:  # an empty batch is the parent asking whether this process is ready
                key = load_private_key(pem)
                signatures = [sign_message(key, message) for message in messages]
            answer = b"\x01" + b"".join(_U32.pack(len(s)) + s for s in signatures)
        except Exception as exc:  # noqa: BLE001 - reported to the parent; never the key itself
            answer = b"\x00" + type(exc).__name__.encode()
        sink.write(_U32.pack(len(answer)) + answer)
        sink.flush()


if __name__ == "__main__":
    _child()
