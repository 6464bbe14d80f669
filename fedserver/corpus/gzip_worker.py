"""The compressor process of `corpus export`: gzip and SHA-256 of the JSON Lines shards on the second
core, fed through a pipe by the exporting process, which builds and encodes the records.

A thread would share the exporting process's GIL: every return from zlib or hashlib waits for the
busy record loop to let go of it, so the two took turns instead of running side by side. Here the
exporting process only copies each chunk into the pipe.

Protocol on stdin, each message a kind byte, a 4-byte big-endian length and that many bytes:
O path (open a shard), D data (records of the open shard), C (close it), E (end). At E it answers
on stdout, one line per shard in order, "RECORDS_SHA256 FILE_SHA256 BYTES", then the SHA-256 of all
records (all at the end, so neither side ever waits for the other to read). Standard library only:
it starts in a few milliseconds."""
from __future__ import annotations

import hashlib
import sys
import zlib
from typing import Any, BinaryIO

OPEN, DATA, CLOSE, END = b"O", b"D", b"C", b"E"


class _Shard:
    """One gzip file being written: the records' digest, and the file's own digest and size (so the
    exporting process need not read the file again for the manifest)."""

    def __init__(self, path: str, level: int) -> None:
        self.out = open(path, "wb")
        # wbits 31: zlib writes the gzip header (mtime 0, no file name) and the trailer itself.
        self.deflate = zlib.compressobj(level, zlib.DEFLATED, 31)
        self.records, self.file, self.size = hashlib.sha256(), hashlib.sha256(), 0

    def write(self, data: bytes) -> None:
        self.records.update(data)
        self._emit(self.deflate.compress(data))

    def close(self) -> bytes:
        self._emit(self.deflate.flush())
        self.out.close()
        return f"{self.records.hexdigest()} {self.file.hexdigest()} {self.size}".encode("ascii")

    def _emit(self, compressed: bytes) -> None:
        if compressed:
            self.file.update(compressed)
            self.size += len(compressed)
            self.out.write(compressed)


def serve(level: int, source: BinaryIO, answers: BinaryIO) -> None:
    # Until the first shard closes, the release's records are that shard's: its digest is copied
    # then rather than computed twice (hashing is a third of this process's work; most releases
    # have one shard).
    release: Any = None
    closed: list[bytes] = []
    shard: _Shard | None = None
    while True:
        header = source.read(5)
        if len(header) < 5:
            raise SystemExit("corpus gzip worker: the exporting process went away")
        kind, size = header[:1], int.from_bytes(header[1:], "big")
        payload = source.read(size)
        if len(payload) < size:
            raise SystemExit("corpus gzip worker: message cut short")
        if kind in (DATA, CLOSE) and shard is None:
            raise SystemExit(f"corpus gzip worker: message {kind!r} before a shard was opened")
        if kind == DATA:
            if release is not None:
                release.update(payload)
            shard.write(payload)  # type: ignore[union-attr]
        elif kind == OPEN:
            shard = _Shard(payload.decode("utf-8"), level)
        elif kind == CLOSE:
            if release is None:
                release = shard.records.copy()  # type: ignore[union-attr]
            closed.append(shard.close())  # type: ignore[union-attr]
            shard = None
        elif kind == END:
            digest = (release or hashlib.sha256()).hexdigest()
            answers.write(b"".join(line + b"\n" for line in [*closed, digest.encode("ascii")]))
            answers.flush()
            return
        else:
            raise SystemExit(f"corpus gzip worker: unknown message {kind!r}")


def main() -> None:
    level = int(sys.argv[1])
    serve(level, sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    main()
