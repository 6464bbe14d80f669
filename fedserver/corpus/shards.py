"""A release's data files: the record stream split into numbered shards, written as gzip JSON Lines
(or Parquet), with a digest of the records themselves beside each file's checksum.

The exporting process encodes the records; for JSON Lines, a compressor process (gzip_worker.py)
hashes, compresses and writes them, fed small chunks through a pipe whose size bounds memory, so
the second core compresses while the first builds records. Everything written is a function of the
records and the settings: no time and no file name in the gzip header."""
from __future__ import annotations

import hashlib
import logging
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

from fedserver.corpus import card, gzip_worker
from fedserver.corpus.card import RECORD_FIELDS
from fedserver.corpus.defaults import DEFAULT_GZIP_LEVEL

log = logging.getLogger(__name__)

# Records go to the compressor encoded in slices of this many (~256 KiB for posts of ~1 KB); the
# pipe (raised to Linux's default pipe-max-size) holds a few, so handing one over rarely waits for
# the compressor. Measured on a million records: ~256 KiB a chunk beat 1 MiB by a few percent.
ENCODE_SLICE = 250
PIPE_BYTES = 1 << 20
PARQUET_ROW_GROUP = 10_000
SUFFIXES = {"jsonl": ".jsonl.gz", "parquet": ".parquet"}
_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE


class ShardError(Exception):
    """The shards cannot be written as announced (clear message for the admin)."""


def encode_records(records: list[dict[str, Any]]) -> bytes:
    """Records as JSON Lines: sorted keys, no spaces, UTF-8 unescaped, one record and "\\n" a line.
    The same bytes as json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    (tests/corpus compare them), about five times faster."""
    dumps = orjson.dumps
    return b"".join([dumps(record, option=_OPTIONS) for record in records])


def worker_command(level: int) -> list[str]:
    # Run as a file, not a module: it needs nothing but the standard library, whatever sys.path is.
    return [sys.executable, "-I", "-S", gzip_worker.__file__, str(level)]


class _GzipProcess:
    """The parent's side of gzip_worker: one process for all shards of an export, in order."""

    def __init__(self, level: int) -> None:
        self._proc = subprocess.Popen(worker_command(level), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE)
        try:
            import fcntl

            fcntl.fcntl(self._proc.stdin.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)  # type: ignore[union-attr]
        except (ImportError, AttributeError, OSError):
            pass  # not Linux, or a lower limit: the default pipe works, with more waiting

    def send(self, kind: bytes, payload: bytes = b"") -> None:
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(kind + len(payload).to_bytes(4, "big"))
            self._proc.stdin.write(payload)
        except BrokenPipeError:
            raise ShardError(f"the compressor process failed: {self._failure()}") from None

    def finish(self) -> list[str]:
        """End the stream; the lines it answers (see gzip_worker)."""
        self.send(gzip_worker.END)
        try:
            out, err = self._proc.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            self.kill()
            raise ShardError("the compressor process did not finish") from None
        if self._proc.returncode != 0:
            raise ShardError(f"the compressor process failed: {self._last_line(err)}")
        return out.decode("ascii").splitlines()

    def _failure(self) -> str:
        self.kill()
        assert self._proc.stderr is not None
        return self._last_line(self._proc.stderr.read())

    def _last_line(self, err: bytes) -> str:
        lines = err.decode("utf-8", "replace").strip().splitlines()
        return lines[-1] if lines else f"exit status {self._proc.returncode}"

    def kill(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()


class JsonlShard:
    """Records of one gzip JSON Lines shard, handed to the compressor as they are encoded."""

    def __init__(self, path: Path, gzip: _GzipProcess) -> None:
        self._gzip = gzip
        gzip.send(gzip_worker.OPEN, str(path).encode("utf-8"))

    def write(self, records: list[dict[str, Any]]) -> None:
        for start in range(0, len(records), ENCODE_SLICE):
            self._gzip.send(gzip_worker.DATA, encode_records(records[start:start + ENCODE_SLICE]))

    def close(self) -> None:
        self._gzip.send(gzip_worker.CLOSE)


class ParquetShard:
    """Parquet with an explicit schema (the same columns in the same order every time)."""

    def __init__(self, path: Path, release_digest: Any) -> None:
        import pyarrow.parquet as pq

        self._schema = parquet_schema()
        self._writer = pq.ParquetWriter(str(path), self._schema, compression="zstd")
        self._rows: list[dict[str, Any]] = []
        self.digest = hashlib.sha256()
        self._release = release_digest

    def write(self, records: list[dict[str, Any]]) -> None:
        # The digests are of the records as JSON Lines, so they are the same for either format.
        data = encode_records(records)
        self.digest.update(data)
        self._release.update(data)
        self._rows.extend(records)
        if len(self._rows) >= PARQUET_ROW_GROUP:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        if self._rows:
            self._writer.write_table(pa.Table.from_pylist(self._rows, schema=self._schema))
            self._rows = []

    def close(self) -> None:
        self._flush()
        self._writer.close()

    def abort(self) -> None:
        try:
            self._writer.close()
        except Exception:  # noqa: BLE001 - the error being handled is the one to report
            log.debug("closing an aborted Parquet shard failed", exc_info=True)


def parquet_schema():
    import pyarrow as pa

    atomic = {"sc:Text": pa.string(), "sc:URL": pa.string(), "sc:DateTime": pa.string(),
              "sc:Integer": pa.int64(), "sc:Boolean": pa.bool_()}

    def arrow_type(field: card.Field):
        if field.sub_fields:
            kind = pa.struct([pa.field(sub.name, arrow_type(sub)) for sub in field.sub_fields])
        else:
            kind = atomic[field.data_type]
        return pa.list_(kind) if field.is_array else kind

    return pa.schema([pa.field(f.name, arrow_type(f)) for f in RECORD_FIELDS])


class ShardSet:
    """Splits the record stream into shards of shard_size, named as the Hugging Face Hub expects.
    After close(), files describes each shard (path, records, records_sha256, and for JSON Lines
    sha256 and bytes of the file) and records_sha256 is that of all records. records_sha256 is the
    SHA-256 of the records as JSON Lines in order (`zcat` of the shards), so it names the content
    whatever the format and compression (and, for all records, the shard size)."""

    def __init__(self, root: Path, format: str, shard_size: int, total: int, *,
                 gzip_level: int = DEFAULT_GZIP_LEVEL) -> None:
        suffix = SUFFIXES[format]
        self.count = max(1, math.ceil(total / shard_size))
        self.paths = [f"data/train-{i:05d}-of-{self.count:05d}{suffix}" for i in range(self.count)]
        self.records = [0] * self.count
        self.files: list[dict[str, Any]] = []
        self.records_sha256 = ""
        self._root, self._format, self._size = root, format, shard_size
        self._index = 0
        self._writer: JsonlShard | ParquetShard | None = None
        self._checked = False
        self._release = hashlib.sha256()
        (root / "data").mkdir()
        self._gzip = _GzipProcess(gzip_level) if format == "jsonl" else None

    def write(self, records: list[dict[str, Any]]) -> None:
        if not self._checked and records:
            _check_fields(records[0])
            self._checked = True
        while records:
            if self._writer is None:
                self._open()
            room = self._size - self.records[self._index]
            if room == 0:
                self._next()
                continue
            part, records = records[:room], records[room:]
            assert self._writer is not None
            self._writer.write(part)
            self.records[self._index] += len(part)

    def _open(self) -> None:
        if self._index >= self.count:
            raise ShardError("the corpus grew during the export; export again")
        path = self._root / self.paths[self._index]
        self._writer = JsonlShard(path, self._gzip) if self._gzip else ParquetShard(path, self._release)

    def _next(self) -> None:
        assert self._writer is not None
        self._writer.close()
        entry = {"path": self.paths[self._index], "records": self.records[self._index]}
        if isinstance(self._writer, ParquetShard):
            entry["records_sha256"] = self._writer.digest.hexdigest()
        self.files.append(entry)
        self._writer = None
        self._index += 1

    def close(self) -> None:
        """Finish every announced shard (an empty corpus still has its one empty shard) and wait
        for the compressor: the files are complete when this returns."""
        while self._index < self.count:
            if self._writer is None:
                self._open()
            self._next()
        if self._gzip is not None:
            *shards, self.records_sha256 = self._gzip.finish()
            self._gzip = None
            if len(shards) != self.count:
                raise ShardError(f"the compressor reported {len(shards)} shards of {self.count}")
            for entry, line in zip(self.files, shards):
                records_sha256, sha256, size = line.split()
                entry.update(records_sha256=records_sha256, sha256=sha256, bytes=int(size))
        else:
            self.records_sha256 = self._release.hexdigest()

    def abort(self) -> None:
        """After an error: the compressor process is stopped, an open Parquet file closed."""
        if self._gzip is not None:
            self._gzip.kill()
            self._gzip = None
        if isinstance(self._writer, ParquetShard):
            self._writer.abort()
        self._writer = None


def _check_fields(record: dict[str, Any]) -> None:
    expected = {f.name for f in RECORD_FIELDS}
    if set(record) != expected:
        raise ShardError(f"record keys and the documented fields differ: {sorted(set(record) ^ expected)}")
