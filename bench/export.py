"""Corpus export benchmark: records per second and peak RSS of `fedserver corpus export --out DIR`
(the real CLI, as an admin runs it) on databases seeded with consenting posts.

    python -m bench.seed --posts 100000 --corpus --dir /tmp/fedserver-corpus-100k
    python -m bench.seed --posts 1000000 --corpus --dir /tmp/fedserver-corpus-1m
    python -m bench.export --dir /tmp/fedserver-corpus-100k --dir /tmp/fedserver-corpus-1m

Each round exports into a new directory; the figures are the medians of --rounds. Peak RSS is the
export process's ru_maxrss, cross-checked by sampling /proc while it runs. It is read by a small
launcher process (LAUNCHER below), not by this script: Linux folds the spawning process's own peak
RSS into a child's ru_maxrss at exec (vfork shares its memory map), so a child of this script,
which has grown while measuring the ceiling loops, reported this script's peak (118 MiB at 1M,
"a spike outside the streaming loop", in the first RESULTS.md), not its own (82 MiB). The export
runs its gzip compressor as a child process (fedserver/corpus/gzip_worker.py); ru_maxrss counts the
larger of the two, so the compressor's own peak is sampled and printed beside it.

Then, per database: one export at each of --levels (gzip level: size and speed), and the ceilings,
bare loops over the same rows (fedserver's RECORD_SELECT, as dicts): the old format path (stdlib
json + gzip-6 on one thread, the ratio earlier results used), orjson + gzip-1 on one thread, and
the method the export now uses, orjson here with gzip-1 and the SHA-256 in a second process fed
through a pipe (the ratio to compare with now).
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import fedserver_command, header, machine, median, rss_mib


# Runs argv[2:] and writes "exit_code ru_maxrss_kib" of it to argv[1]; its own memory map is small,
# so the child's ru_maxrss is the child's. The child's pid goes first to argv[1] + ".pid" (sampling).
LAUNCHER = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
with open(sys.argv[1] + ".pid", "w") as f:
    f.write(str(child.pid))
_, status, usage = os.wait4(child.pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(f"{os.waitstatus_to_exitcode(status)} {usage.ru_maxrss}")
"""


def children_of(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []


def export_once(directory: Path, timeout: float, extra: tuple[str, ...] = ()) -> dict:
    out = Path(tempfile.mkdtemp(prefix="fedserver-bench-export-")) / "release"
    report = out.parent / "launcher.out"
    log = directory / "export.log"
    start = time.perf_counter()
    with open(log, "ab") as sink:
        proc = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(report), *fedserver_command(), "--config",
                                 str(directory / "fedserver.toml"), "corpus", "export", "--out", str(out), *extra],
                                cwd=directory, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    sampled = helpers = 0.0
    deadline = start + timeout
    child: int | None = None
    try:
        while proc.poll() is None:
            if child is None and Path(f"{report}.pid").exists():
                child = int(Path(f"{report}.pid").read_text() or 0) or None
            try:
                if child is not None:
                    sampled = max(sampled, rss_mib(child)[0])
                    for helper in children_of(child):  # the gzip compressor process
                        helpers = max(helpers, rss_mib(helper)[1])
            except OSError:
                pass
            if time.perf_counter() > deadline:
                if child is not None:
                    os.kill(child, 9)
                proc.kill()
                proc.wait()
                raise RuntimeError(f"export did not finish in {timeout}s")
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    elapsed = time.perf_counter() - start
    code, maxrss_kib = (int(x) for x in report.read_text().split())
    if proc.returncode != 0 or code != 0:
        raise RuntimeError(f"export failed ({code}):\n{log.read_text()[-3000:]}")
    shards = sorted((out / "data").glob("train-*"))
    records = 0
    for shard in shards:
        with gzip.open(shard, "rb") as f:
            records += sum(1 for _ in f)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    shard_bytes = sum(p.stat().st_size for p in shards)
    shutil.rmtree(out.parent, ignore_errors=True)
    return {"records": records, "seconds": elapsed, "rate": records / elapsed, "peak_rss": maxrss_kib / 1024,
            "sampled_rss": sampled, "compressor_rss": helpers, "shards": len(shards), "bytes": size,
            "shard_bytes": shard_bytes}


def _present_record_pages(conn: Any, page: int, limit: int | None) -> Iterator[list[dict]]:
    """fedserver's RECORD_SELECT rows of present records in post order, as dicts, `page` at a time
    (keyset paging on post_id), stopping after `limit` records if given."""
    from fedserver.store.corpus import RECORD_SELECT

    records, last = 0, 0
    while True:
        cur = conn.execute(f"{RECORD_SELECT} WHERE r.state = 'present' AND r.post_id > ? ORDER BY r.post_id"
                           f" LIMIT {int(page)}", (last,))
        names = [d[0] for d in cur.description]
        rows = cur.fetchall()
        if not rows:
            return
        yield [dict(zip(names, row)) for row in rows]
        records += len(rows)
        last = rows[-1][names.index("post_id")]
        if limit and records >= limit:
            return


def bare_ceiling(directory: Path, level: int = 6, limit: int | None = None, fast_json: bool = False) -> dict:
    """The same rows (fedserver's RECORD_SELECT, present records in post order) read with plain
    sqlite3 in 10,000-row pages, each row turned into a dict and written as sorted-key JSON Lines to
    gzip at the same level: what the format itself costs on this machine, single-threaded."""
    import sqlite3

    out = Path(tempfile.mkdtemp(prefix="fedserver-bench-ceiling-"))
    conn = sqlite3.connect(directory / "fedserver.sqlite3")
    start = time.perf_counter()
    records = 0
    with gzip.GzipFile(out / "x.jsonl.gz", "wb", compresslevel=level, mtime=0) as gz:
        for batch in _present_record_pages(conn, 10_000, limit):
            if fast_json:
                import orjson

                gz.write(b"".join(orjson.dumps(record, option=orjson.OPT_SORT_KEYS) + b"\n" for record in batch))
            else:
                gz.write("".join(json.dumps(record, sort_keys=True, ensure_ascii=False,
                                            separators=(",", ":")) + "\n" for record in batch).encode())
            records += len(batch)
    elapsed = time.perf_counter() - start
    conn.close()
    shutil.rmtree(out, ignore_errors=True)
    return {"records": records, "seconds": elapsed, "rate": records / elapsed}


def bare_two_process_ceiling(directory: Path, level: int = 1, limit: int | None = None) -> dict:
    """The export's method without fedserver's record building: the same rows as dicts, encoded with
    orjson (sorted keys) here, compressed (gzip, one stream) and hashed by fedserver's compressor
    process fed through a pipe, as the export does: the two cores' ceiling for this format."""
    import sqlite3

    import orjson

    from fedserver.corpus import gzip_worker

    out = Path(tempfile.mkdtemp(prefix="fedserver-bench-ceiling-"))
    conn = sqlite3.connect(directory / "fedserver.sqlite3")
    worker = subprocess.Popen([sys.executable, "-I", "-S", gzip_worker.__file__, str(level)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE)
    assert worker.stdin is not None

    def send(kind: bytes, payload: bytes = b"") -> None:
        worker.stdin.write(kind + len(payload).to_bytes(4, "big"))
        worker.stdin.write(payload)

    start = time.perf_counter()
    send(gzip_worker.OPEN, str(out / "x.jsonl.gz").encode())
    records = 0
    options = orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE
    for batch in _present_record_pages(conn, 5000, limit):
        send(gzip_worker.DATA, b"".join([orjson.dumps(record, option=options) for record in batch]))
        records += len(batch)
    send(gzip_worker.CLOSE)
    send(gzip_worker.END)
    worker.communicate()
    elapsed = time.perf_counter() - start
    conn.close()
    shutil.rmtree(out, ignore_errors=True)
    return {"records": records, "seconds": elapsed, "rate": records / elapsed}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dir", type=Path, action="append", required=True, help="a directory made by bench.seed --corpus")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--levels", default="1,3,6", help="gzip levels to export at once each (empty: none)")
    p.add_argument("--timeout", type=float, default=900)
    args = p.parse_args()
    header("corpus export (fedserver corpus export --out DIR)")
    print(machine())
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    summary = {}
    for directory in args.dir:
        meta = json.loads((directory / "seed.json").read_text())
        rows = [export_once(directory, args.timeout) for _ in range(args.rounds)]
        for i, r in enumerate(rows):
            print(f"{meta['posts']} posts / {meta['corpus_records']} corpus records, round {i + 1}: {r['records']}"
                  f" records in {r['seconds']:.1f}s = {r['rate']:.0f} records/s, peak RSS {r['peak_rss']:.0f} MiB"
                  f" (sampled {r['sampled_rss']:.0f}; compressor process {r['compressor_rss']:.0f}), {r['shards']}"
                  f" shards, {r['bytes'] / 2**20:.0f} MiB written")
        m = {k: median([r[k] for r in rows]) for k in rows[0]}
        print(f"  median: {m['rate']:.0f} records/s, peak RSS {m['peak_rss']:.0f} MiB (target >= 100,000/s, flat RSS)")
        levels = {}
        for level in [int(x) for x in args.levels.split(",") if x.strip()]:
            r = export_once(directory, args.timeout, ("--gzip-level", str(level)))
            levels[level] = r
            print(f"  --gzip-level {level}: {r['rate']:.0f} records/s, shards {r['shard_bytes'] / 2**20:.1f} MiB"
                  f" ({r['shard_bytes'] / max(r['records'], 1):.0f} bytes/record), peak RSS {r['peak_rss']:.0f} MiB")
        m["levels"] = {str(k): {"rate": v["rate"], "shard_bytes": v["shard_bytes"]} for k, v in levels.items()}
        ceiling = bare_ceiling(directory, limit=200_000)
        m["ceiling_rate"] = ceiling["rate"]
        m["ratio"] = m["rate"] / ceiling["rate"]
        print(f"  bare sqlite3 + json + gzip-6 loop, one thread (the old format path; first {ceiling['records']}):"
              f" {ceiling['rate']:.0f} records/s -> ratio {m['ratio']:.2f}")
        try:
            fast = bare_ceiling(directory, level=1, limit=200_000, fast_json=True)
            m["orjson_gzip1_rate"] = fast["rate"]
            print(f"  the same loop with orjson and gzip level 1, one thread: {fast['rate']:.0f} records/s")
            two = bare_two_process_ceiling(directory, level=1, limit=200_000)
            m["two_process_ceiling_rate"] = two["rate"]
            m["two_process_ratio"] = m["rate"] / two["rate"]
            print(f"  orjson here, gzip-1 + SHA-256 in fedserver's compressor process (the export's method):"
                  f" {two['rate']:.0f} records/s -> ratio {m['two_process_ratio']:.2f}")
        except ImportError:
            pass
        summary[str(meta["corpus_records"])] = m
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("JSON " + json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
