"""The separate process that decodes uploaded pictures (fedserver/images.py), and the server's handle
on it. Decoding a hostile picture can cost minutes of CPU and gigabytes of memory; done in the
server's default thread pool it took the threads that sign-in (Argon2) and request signing wait
for, and the GIL with them. Here the work runs in a child process, one picture at a time, with
  - a CPU-time limit per picture (RLIMIT_CPU: the kernel stops the child with SIGXCPU),
  - an address-space limit (RLIMIT_AS: an allocation over it fails with MemoryError),
  - a wall-clock timeout, after which the server kills the child,
  - a lower scheduling priority (nice 10), so the server's own threads come first.
A child that dies is replaced on the next picture. It stays up between pictures (starting Python
and Pillow costs ~100 ms of CPU per start; a picture handed to a running child costs about a
millisecond more than decoding in-process), and exits after IDLE_SECONDS without work, giving its
memory back.

The child answers with a small JSON header and the picture's bytes, never with a pickle: the
process that parses hostile files cannot make the server run anything by its answer.

Run as `python -m fedserver.image_worker --max-pixels N --cpu-seconds N --memory-mb N`: it reads
length-prefixed pictures on stdin and writes answers on stdout. With `--preview-side N` (the media
cache's worker) it also answers with each picture's thumbnail, blurhash and blur picture
(fedserver/image_previews.py), made within the same limits."""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO, Callable, TypeVar

from fedserver.image_previews import Preview
from fedserver.images import FORMATS, MAX_PIXELS, CleanImage, InvalidImage

log = logging.getLogger(__name__)

T = TypeVar("T")

IDLE_SECONDS = 300.0
# Protocol bounds, checked on both sides: uploads are at most a few MB, their clean copies too.
MAX_INPUT_BYTES = 64 * 1024 * 1024
MAX_OUTPUT_BYTES = 128 * 1024 * 1024
MAX_HEADER_BYTES = 64 * 1024
# The child's exit status after a MemoryError (it leaves rather than go on in an unknown state).
EXIT_OUT_OF_MEMORY = 3

TOO_LONG = "the picture takes too long to process"
TOO_MUCH_MEMORY = "the picture needs too much memory to process"
FAILED = "the picture could not be processed"


@dataclass(frozen=True)
class WorkerLimits:
    max_pixels: int = MAX_PIXELS
    cpu_seconds: int = 10
    memory_mb: int = 1024
    timeout_seconds: float = 30.0
    # 0: pictures only; otherwise thumbnails at most this wide and high come with them.
    preview_side: int = 0


class ImageWorker:
    """The server's side: clean() sends one picture to the child and waits for the answer.

    The exchange itself (writing the picture into the child's pipe, reading its answer) runs on the
    worker's own thread with blocking reads and writes, and so may what the caller does with the
    answer (clean_and_store: hashing and writing the files). The event loop hands each picture over
    once and gets one result back: through asyncio's pipe streams a 2 MB picture cost the loop some
    thirty wake-ups and three copies of its bytes (bench/media_cache_loop.py)."""

    def __init__(self, limits: WorkerLimits) -> None:
        self.limits = limits
        self._child: _Child | None = None
        self._lock = asyncio.Lock()
        self._idle: asyncio.TimerHandle | None = None
        self._stopping: set[asyncio.Task] = set()
        # Its own thread, not the default pool: the thread waits as long as the child works (up to
        # timeout_seconds), and sign-in (Argon2) and request signing need the default pool's threads.
        self._thread: ThreadPoolExecutor | None = None

    async def clean(self, data: bytes) -> CleanImage:
        """The picture written again without metadata; raises InvalidImage with a message for the person."""
        return await self._clean(data, _image_only)

    async def clean_with_preview(self, data: bytes) -> tuple[CleanImage, Preview]:
        """clean(), and the picture's thumbnail and blurhash (a worker made with preview_side > 0)."""
        return await self._clean(data, _with_preview)

    async def clean_and_store(self, data: bytes, store: Callable[[CleanImage, Preview], T]) -> T:
        """clean_with_preview(), then store(image, preview) on the worker's thread, and its result: the
        picture's bytes are never handed back to the event loop. store runs after a complete exchange
        (the child stays in step whatever it raises) and must not touch the event loop."""
        return await self._clean(data, lambda image, preview: store(*_with_preview(image, preview)))

    async def _clean(self, data: bytes, then: Callable[[CleanImage, Preview | None], T]) -> T:
        if len(data) > MAX_INPUT_BYTES:
            raise InvalidImage(f"the picture may be at most {MAX_INPUT_BYTES // (1024 * 1024)} MB")
        async with self._lock:
            if self._idle is not None:
                self._idle.cancel()
                self._idle = None
            try:
                child = await self._running()
            except OSError:
                log.exception("the image worker could not be started")
                raise InvalidImage(f"{FAILED}; try again later") from None
            if self._thread is None:
                self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="image-worker")
            job = asyncio.get_running_loop().run_in_executor(self._thread, _exchange, child, data, then)
            in_step = False
            try:
                async with asyncio.timeout(self.limits.timeout_seconds):
                    try:
                        result = await asyncio.shield(job)
                    except (InvalidImage, OSError):  # from the answer or from `then`: the exchange was complete
                        in_step = True
                        raise
                in_step = True
            except TimeoutError:
                log.warning("picture of %d bytes still decoding after %.1fs: stopping the image worker (pid %d)",
                            len(data), self.limits.timeout_seconds, child.proc.pid)
                raise InvalidImage(TOO_LONG) from None
            except _ChildGone:
                raise InvalidImage(await self._died(child, len(data))) from None
            except _OutOfProtocol:  # not JSON, or lengths out of bounds: the child is not speaking the protocol
                log.error("image worker (pid %d) answered out of protocol; stopping it", child.proc.pid)
                raise InvalidImage(FAILED) from None
            finally:
                if not in_step:  # a half-finished exchange leaves the pipes out of step: never reuse them
                    await self._stop(child, job)
                elif child.proc.returncode is None:
                    self._idle = asyncio.get_running_loop().call_later(IDLE_SECONDS, self._stop_idle)
            return result

    async def close(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        if self._child is not None:
            await self._stop(self._child)
        for task in list(self._stopping):
            await task
        if self._thread is not None:
            self._thread.shutdown(wait=False)
            self._thread = None

    async def _running(self) -> _Child:
        if self._child is None or self._child.proc.returncode is not None:
            if self._child is not None:
                self._child.close_pipes()
            limits = self.limits
            # Plain pipes of our own rather than asyncio's streams: the worker's thread reads and
            # writes them with blocking calls, the event loop never sees the bytes.
            child_in, to_child = os.pipe()
            from_child, child_out = os.pipe()
            try:
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "fedserver.image_worker", "--max-pixels", str(limits.max_pixels),
                    "--cpu-seconds", str(limits.cpu_seconds), "--memory-mb", str(limits.memory_mb),
                    "--preview-side", str(limits.preview_side), stdin=child_in, stdout=child_out)
            except BaseException:
                for fd in (to_child, from_child):
                    os.close(fd)
                raise
            finally:
                os.close(child_in)
                os.close(child_out)
            self._child = _Child(proc, open(to_child, "wb", buffering=0), open(from_child, "rb"))
            log.info("image worker started (pid %d)", proc.pid)
        return self._child

    async def _died(self, child: _Child, size: int) -> str:
        """The child ended during a picture: why, for the log and for the person."""
        proc = child.proc
        try:
            code = await asyncio.wait_for(proc.wait(), timeout=5)
        except TimeoutError:
            await self._stop(child)
            code = proc.returncode
        if code == -signal.SIGXCPU:
            log.warning("picture of %d bytes used more than %ds of CPU: the image worker (pid %d) was stopped",
                        size, self.limits.cpu_seconds, proc.pid)
            return TOO_LONG
        if code == EXIT_OUT_OF_MEMORY:
            log.warning("picture of %d bytes needed more than %d MB: the image worker (pid %d) left",
                        size, self.limits.memory_mb, proc.pid)
            return TOO_MUCH_MEMORY
        log.error("image worker (pid %d) ended with status %s during a picture of %d bytes", proc.pid, code, size)
        return FAILED

    async def _stop(self, child: _Child, job: asyncio.Future | None = None) -> None:
        """Kill the child; its pipes are closed once the thread using them is done (killing the child
        ends the thread's blocking read or write)."""
        if child.proc.returncode is None:
            child.proc.kill()
        if job is not None and not job.done():
            await asyncio.wait([job])
        await child.proc.wait()
        if job is not None and not job.cancelled():
            job.exception()  # seen: the thread's broken pipe is this stop's doing
        child.close_pipes()
        if self._child is child:
            self._child = None

    def _stop_idle(self) -> None:
        """No picture for a while: close the child's input, so that it leaves by itself."""
        self._idle = None
        child = self._child
        if child is None or self._lock.locked():
            return
        self._child = None
        child.to_child.close()
        task = asyncio.get_running_loop().create_task(self._wait_gone(child))
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    async def _wait_gone(self, child: _Child) -> None:
        proc = child.proc
        try:
            await asyncio.wait_for(proc.wait(), timeout=10)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        child.close_pipes()
        log.info("image worker (pid %d) left after %.0fs without pictures", proc.pid, IDLE_SECONDS)


@dataclass
class _Child:
    proc: asyncio.subprocess.Process
    to_child: BinaryIO  # unbuffered: every write goes straight into the pipe
    from_child: BinaryIO  # buffered: read(n) reads n bytes into one new bytes object, no joining

    def close_pipes(self) -> None:
        for pipe in (self.to_child, self.from_child):
            try:
                pipe.close()
            except OSError:
                pass


class _ChildGone(Exception):
    """The child closed its pipes (it died, or was killed) in the middle of an exchange."""


class _OutOfProtocol(Exception):
    """The child's answer is not in the protocol."""


def _exchange(child: _Child, data: bytes, then: Callable[[CleanImage, Preview | None], T]) -> T:
    """On the worker's thread: one picture to the child and its answer back, checked, then `then`."""
    try:
        _write_all(child.to_child, len(data).to_bytes(8, "big"))
        _write_all(child.to_child, data)
        size = int.from_bytes(_read_exactly_from(child.from_child, 4), "big")
        if size > MAX_HEADER_BYTES:
            raise _OutOfProtocol("image worker header too large")
        try:
            header = json.loads(_read_exactly_from(child.from_child, size))
        except ValueError:
            raise _OutOfProtocol("image worker header is not JSON") from None
        parts = [_read_exactly_from(child.from_child, length) for length in _part_lengths(header)]
    except (OSError, EOFError) as exc:  # a broken pipe or an early end: the child is gone
        raise _ChildGone(str(exc)) from None
    return then(*_answer(header, parts))


def _write_all(pipe: BinaryIO, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = pipe.write(view)
        if not written:
            raise EOFError("the image worker's input is closed")
        view = view[written:]


def _read_exactly_from(pipe: BinaryIO, size: int) -> bytes:
    data = pipe.read(size) if size else b""
    if len(data) != size:
        raise EOFError("the image worker's answer ended early")
    return data


def _image_only(image: CleanImage, preview: Preview | None) -> CleanImage:
    return image


def _with_preview(image: CleanImage, preview: Preview | None) -> tuple[CleanImage, Preview]:
    if preview is None:
        raise InvalidImage(FAILED)
    return image, preview


# Pipe buffers of 1 MB (Linux's default most for an unprivileged process) instead of 64 KB: a 2 MB
# picture then crosses in a few blocking writes and reads each way instead of about thirty.
PIPE_BYTES = 1024 * 1024


def _widen_pipes() -> None:
    """In the child: a pipe's buffer belongs to the pipe, so either end may size it."""
    import fcntl

    for fd in (0, 1):
        try:
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        except (OSError, AttributeError):  # a lower system limit, or not Linux: only more wake-ups
            pass


def _part_lengths(header: object) -> list[int]:
    """The lengths of the answer's parts (the clean picture; with a preview also the thumbnail and
    the blur picture), checked before anything is read: they come from the process that parsed
    hostile bytes."""
    if not isinstance(header, dict):
        raise _OutOfProtocol("image worker header is not an object")
    length, preview = header.get("length", 0), header.get("preview")
    if not isinstance(length, int) or not 0 <= length <= MAX_OUTPUT_BYTES:
        raise _OutOfProtocol("image worker answer out of bounds")
    if not header.get("ok") or not isinstance(preview, dict):
        return [length] if length else []
    parts = [preview.get(k) for k in ("image_length", "length", "blur_length")]
    if not all(_positive(n) for n in parts) or sum(parts) != length:
        raise _OutOfProtocol("image worker answer's parts out of bounds")
    return parts


def _answer(header: dict, parts: list[bytes]) -> tuple[CleanImage, Preview | None]:
    """The child's answer, checked: it comes from the process that parsed hostile bytes."""
    if not header.get("ok"):
        error = header.get("error")
        raise InvalidImage(error if isinstance(error, str) and error else FAILED)
    types = {content_type: extension for content_type, extension in FORMATS.values()}
    content_type, width, height = header.get("content_type"), header.get("width"), header.get("height")
    if (content_type not in types or not _positive(width) or not _positive(height) or not parts):
        raise InvalidImage(FAILED)
    preview = header.get("preview")
    image = CleanImage(parts[0], content_type, types[content_type], width, height)
    if preview is None:
        return image, None
    sizes = [preview.get(k) for k in ("width", "height")] if isinstance(preview, dict) else [None]
    hash_ = preview.get("blurhash") if isinstance(preview, dict) else None
    if (len(parts) != 3 or not all(_positive(n) for n in sizes) or not isinstance(hash_, str)
            or not 6 <= len(hash_) <= 100):
        raise InvalidImage(FAILED)
    preview_width, preview_height = sizes
    return image, Preview(parts[1], preview_width, preview_height, hash_, parts[2])


def _positive(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


# -- the child process ----------------------------------------------------------------------------

def _limit_self(memory_mb: int) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (memory_mb * 1024 * 1024,) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # SIGXCPU would otherwise leave a core file
    try:
        os.nice(10)
    except OSError:
        pass


def _set_cpu_budget(seconds: int) -> None:
    """RLIMIT_CPU counts the process's whole life: move the soft limit to `seconds` from now (the
    hard limit stays where it is, so the next picture can move it again)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = int(usage.ru_utime + usage.ru_stime) + 1 + seconds
    resource.setrlimit(resource.RLIMIT_CPU, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard))


def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = stream.read(left)
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _write_answer(stream: BinaryIO, header: dict, payload: bytes = b"") -> None:
    encoded = json.dumps({**header, "length": len(payload)}).encode()
    stream.write(len(encoded).to_bytes(4, "big") + encoded + payload)
    stream.flush()


def serve(max_pixels: int, cpu_seconds: int, memory_mb: int, preview_side: int = 0) -> int:
    from PIL import Image

    from fedserver.image_previews import make_preview
    from fedserver.images import clean_image

    _limit_self(memory_mb)
    _widen_pipes()
    # Pillow's own bomb check (89 million pixels) never stricter than the configured bound: ours,
    # checked on the canvas before each frame is decoded, gives the person the clearer message.
    Image.MAX_IMAGE_PIXELS = max(Image.MAX_IMAGE_PIXELS or 0, max_pixels)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print must not land in the answers
    while True:
        prefix = _read_exactly(stdin, 8)
        if prefix is None:
            return 0  # the server closed our input: idle, or gone
        size = int.from_bytes(prefix, "big")
        data = _read_exactly(stdin, size) if size <= MAX_INPUT_BYTES else None
        if data is None:
            return 1
        _set_cpu_budget(cpu_seconds)
        try:
            image = clean_image(data, max_pixels)
        except InvalidImage as exc:
            _write_answer(stdout, {"ok": False, "error": str(exc)})
            continue
        except MemoryError:
            return EXIT_OUT_OF_MEMORY
        header = {"ok": True, "content_type": image.content_type, "width": image.width, "height": image.height}
        payload = image.data
        if preview_side > 0:
            try:
                preview = make_preview(image.data, preview_side)
            except MemoryError:
                return EXIT_OUT_OF_MEMORY
            except Exception:  # noqa: BLE001 - Pillow's errors on a picture it wrote itself: refuse it
                _write_answer(stdout, {"ok": False, "error": FAILED})
                continue
            header["preview"] = {"image_length": len(image.data), "length": len(preview.data),
                                 "blur_length": len(preview.blur_png), "width": preview.width,
                                 "height": preview.height, "blurhash": preview.blurhash}
            payload = image.data + preview.data + preview.blur_png
        _write_answer(stdout, header, payload)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fedserver.image_worker")
    parser.add_argument("--max-pixels", type=int, default=MAX_PIXELS)
    parser.add_argument("--cpu-seconds", type=int, default=WorkerLimits.cpu_seconds)
    parser.add_argument("--memory-mb", type=int, default=WorkerLimits.memory_mb)
    parser.add_argument("--preview-side", type=int, default=0)
    args = parser.parse_args(argv)
    return serve(args.max_pixels, args.cpu_seconds, args.memory_mb, args.preview_side)


if __name__ == "__main__":
    raise SystemExit(main())
