"""Run: PYTHONPATH=. python bench/media_cache_loop_cost.py (PROF=1 for a profile). Event-loop cost of caching one 2 MB remote picture and its thumbnail: a real fedserver context,
a real aiohttp server on loopback serving the picture, and a ticker measuring the loop's lag."""
import asyncio, io, os, sys, tempfile, time
from pathlib import Path
from aiohttp import web
from PIL import Image

async def main():
    from fedserver.config import Settings, DatabaseSettings, FederationSettings, InstanceSettings, with_overrides
    from fedserver.context import open_context, close_context
    from fedserver.services import media_cache
    from fedserver.store import remote_media
    import random
    rnd = random.Random(1)
    img = Image.frombytes("RGB", (1400, 1000), bytes(rnd.getrandbits(8) for _ in range(1400 * 1000 * 3)))
    out = io.BytesIO(); img.save(out, "JPEG", quality=97); data = out.getvalue()
    print("picture bytes", len(data))
    import socket, subprocess
    served = Path(tempfile.mkdtemp()); (served / "p.jpg").write_bytes(data)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0)); port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)], cwd=served,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port)).close(); break
        except OSError:
            await asyncio.sleep(0.05)
    d = Path(tempfile.mkdtemp())
    s = Settings(base_dir=d, instance=InstanceSettings(domain="127.0.0.1:1", scheme="http"),
                 federation=FederationSettings(allow_private_addresses=True))
    ctx = await open_context(s)
    # warm the image worker
    async with ctx.db.transaction() as tx:
        await remote_media.note_urls(tx, [(f"http://127.0.0.1:{port}/p.jpg?warm", "attachment"), (f"http://127.0.0.1:{port}/p.jpg", "attachment")], state="absent", now="x")
    warm = await remote_media.by_hash(ctx.db.reader, remote_media.url_hash(f"http://127.0.0.1:{port}/p.jpg?warm"))
    await media_cache.cache(ctx, warm)
    row = await remote_media.by_hash(ctx.db.reader, remote_media.url_hash(f"http://127.0.0.1:{port}/p.jpg"))
    lags = []; stop = False
    async def ticker():
        while not stop:
            t = time.perf_counter(); await asyncio.sleep(0.001); lags.append(time.perf_counter() - t - 0.001)
    task = asyncio.create_task(ticker()) if os.environ.get("TICK") else None
    loop = asyncio.get_running_loop()
    cpu0 = time.thread_time()
    import cProfile, pstats
    prof = cProfile.Profile() if os.environ.get("PROF") else None
    if prof: prof.enable()
    t0 = time.perf_counter(); cached = await media_cache.cache(ctx, row); wall = time.perf_counter() - t0
    if prof:
        prof.disable(); pstats.Stats(prof).sort_stats("tottime").print_stats(14)
    cpu = time.thread_time() - cpu0
    stop = True
    if task: await task
    print("cached", cached.state, cached.width, cached.thumb_width, "wall %.1f ms" % (wall * 1000))
    print("event-loop thread CPU during caching: %.1f ms (the picture's server is another process)" % (cpu * 1000))
    lags = lags or [0]; print("worst loop stall %.2f ms, sum of stalls > 1 ms: %.2f ms" % (max(lags) * 1000, sum(l for l in lags if l > 0.001) * 1000))
    await close_context(ctx); server.kill()
asyncio.run(main())
