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
from dataclasses import dataclass
from typing import BinaryIO

from fedserver.image_previews import Preview
from fedserver.images import FORMATS, MAX_PIXELS, CleanImage, InvalidImage

log = logging.getLogger(__name__)

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
    """The server's side: clean() sends one picture to the child and waits for the answer."""

    def __init__(self, limits: WorkerLimits) -> None:
        self.limits = limits
        self._proc: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()
        self._idle: asyncio.TimerHandle | None = None
        self._stopping: set[asyncio.Task] = set()

    async def clean(self, data: bytes) -> CleanImage:
        """The picture written again without metadata; raises InvalidImage with a message for the person."""
        return (await self._clean(data))[0]

    async def clean_with_preview(self, data: bytes) -> tuple[CleanImage, Preview]:
        """clean(), and the picture's thumbnail and blurhash (a worker made with preview_side > 0)."""
        image, preview = await self._clean(data)
        if preview is None:
            raise InvalidImage(FAILED)
        return image, preview

    async def _clean(self, data: bytes) -> tuple[CleanImage, Preview | None]:
        if len(data) > MAX_INPUT_BYTES:
            raise InvalidImage(f"the picture may be at most {MAX_INPUT_BYTES // (1024 * 1024)} MB")
        async with self._lock:
            if self._idle is not None:
                self._idle.cancel()
                self._idle = None
            try:
                proc = await self._running()
            except OSError:
                log.exception("the image worker could not be started")
                raise InvalidImage(f"{FAILED}; try again later") from None
            done = False
            try:
                async with asyncio.timeout(self.limits.timeout_seconds):
                    header, payload = await self._exchange(proc, data)
                done = True
            except TimeoutError:
                log.warning("picture of %d bytes still decoding after %.1fs: stopping the image worker (pid %d)",
                            len(data), self.limits.timeout_seconds, proc.pid)
                raise InvalidImage(TOO_LONG) from None
            except (asyncio.IncompleteReadError, ConnectionError):
                raise InvalidImage(await self._died(proc, len(data))) from None
            except ValueError:  # not JSON: the child is not speaking the protocol any more
                log.error("image worker (pid %d) answered out of protocol; stopping it", proc.pid)
                raise InvalidImage(FAILED) from None
            finally:
                if not done:  # a half-finished exchange leaves the pipe out of step: never reuse it
                    await self._stop(proc)
                elif proc.returncode is None:
                    self._idle = asyncio.get_running_loop().call_later(IDLE_SECONDS, self._stop_idle)
            return _answer(header, payload)

    async def close(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        if self._proc is not None:
            await self._stop(self._proc)
        for task in list(self._stopping):
            await task

    async def _running(self) -> asyncio.subprocess.Process:
        if self._proc is None or self._proc.returncode is not None:
            limits = self.limits
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "fedserver.image_worker", "--max-pixels", str(limits.max_pixels),
                "--cpu-seconds", str(limits.cpu_seconds), "--memory-mb", str(limits.memory_mb),
                "--preview-side", str(limits.preview_side),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
            log.info("image worker started (pid %d)", self._proc.pid)
        return self._proc

    async def _exchange(self, proc: asyncio.subprocess.Process, data: bytes) -> tuple[dict, bytes]:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(len(data).to_bytes(8, "big") + data)
        await proc.stdin.drain()
        size = int.from_bytes(await proc.stdout.readexactly(4), "big")
        if size > MAX_HEADER_BYTES:
            raise ValueError("image worker header too large")
        header = json.loads(await proc.stdout.readexactly(size))
        length = header.get("length", 0) if isinstance(header, dict) else -1
        if not isinstance(length, int) or not 0 <= length <= MAX_OUTPUT_BYTES:
            raise ValueError("image worker answer out of bounds")
        return header, await proc.stdout.readexactly(length)

    async def _died(self, proc: asyncio.subprocess.Process, size: int) -> str:
        """The child ended during a picture: why, for the log and for the person."""
        try:
            code = await asyncio.wait_for(proc.wait(), timeout=5)
        except TimeoutError:
            await self._stop(proc)
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

    async def _stop(self, proc: asyncio.subprocess.Process) -> None:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        if self._proc is proc:
            self._proc = None

    def _stop_idle(self) -> None:
        """No picture for a while: close the child's input, so that it leaves by itself."""
        self._idle = None
        proc = self._proc
        if proc is None or self._lock.locked() or proc.stdin is None:
            return
        self._proc = None
        proc.stdin.close()
        task = asyncio.get_running_loop().create_task(self._wait_gone(proc))
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    async def _wait_gone(self, proc: asyncio.subprocess.Process) -> None:
        try:
            await asyncio.wait_for(proc.wait(), timeout=10)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        log.info("image worker (pid %d) left after %.0fs without pictures", proc.pid, IDLE_SECONDS)


# Pipe buffers of 1 MB (Linux's default most for an unprivileged process) instead of 64 KB: a 2 MB
# picture then crosses in a few event-loop wake-ups each way instead of about thirty.
PIPE_BYTES = 1024 * 1024


def _widen_pipes() -> None:
    """In the child: a pipe's buffer belongs to the pipe, so either end may size it."""
    import fcntl

    for fd in (0, 1):
        try:
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        except (OSError, AttributeError):  # a lower system limit, or not Linux: only more wake-ups
            pass


def _answer(header: dict, payload: bytes) -> tuple[CleanImage, Preview | None]:
    """The child's answer, checked: it comes from the process that parsed hostile bytes."""
    if not header.get("ok"):
        error = header.get("error")
        raise InvalidImage(error if isinstance(error, str) and error else FAILED)
    types = {content_type: extension for content_type, extension in FORMATS.values()}
    content_type, width, height = header.get("content_type"), header.get("width"), header.get("height")
    if (content_type not in types or not _positive(width) or not _positive(height)):
        raise InvalidImage(FAILED)
    preview = header.get("preview")
    if preview is None:
        return CleanImage(payload, content_type, types[content_type], width, height), None
    sizes = [preview.get(k) if isinstance(preview, dict) else None
             for k in ("image_length", "length", "blur_length", "width", "height")]
    hash_ = preview.get("blurhash") if isinstance(preview, dict) else None
    if (not all(_positive(n) for n in sizes) or sum(sizes[:3]) != len(payload) or not isinstance(hash_, str)
            or not 6 <= len(hash_) <= 100):
        raise InvalidImage(FAILED)
    image_length, preview_length, _, preview_width, preview_height = sizes
    thumb_end = image_length + preview_length
    return (CleanImage(payload[:image_length], content_type, types[content_type], width, height),
            Preview(payload[image_length:thumb_end], preview_width, preview_height, hash_, payload[thumb_end:]))


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
