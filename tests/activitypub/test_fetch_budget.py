"""RemoteFetcher's budgets against real aiohttp servers on 127.0.0.1: fetches per origin are capped,
failed URLs are remembered for a while (then fetched again), and an origin that keeps failing is
paused without pausing the others."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
import pytest_asyncio
from aiohttp import web

from fedserver.activitypub.fetch import FetchGone, FetchHTTPError, FetchTimeout, FetchUnavailable, RemoteFetcher

AS = "https://www.w3.org/ns/activitystreams"


@dataclass
class Origin:
    base: str = ""
    hits: Counter = field(default_factory=Counter)
    healthy: set[str] = field(default_factory=set)  # paths answered with a document from now on
    in_flight: int = 0
    most_in_flight: int = 0
    release: asyncio.Event = field(default_factory=asyncio.Event)


async def start_origin() -> tuple[Origin, web.AppRunner]:
    origin = Origin()

    async def handle(request: web.Request) -> web.StreamResponse:
        kind = request.match_info["kind"]
        origin.hits[request.path] += 1
        origin.in_flight += 1
        origin.most_in_flight = max(origin.most_in_flight, origin.in_flight)
        try:
            if request.path in origin.healthy or kind in ("ok", "slow"):
                if kind == "slow":
                    await asyncio.sleep(0.2)
                body = json.dumps({"@context": AS, "id": f"{origin.base}{request.path}", "type": "Note"})
                return web.Response(body=body, content_type="application/activity+json")
            if kind == "gone":
                return web.json_response({"error": "gone"}, status=410)
            if kind == "hang":
                await origin.release.wait()
            return web.json_response({"error": "down"}, status=503)
        finally:
            origin.in_flight -= 1

    app = web.Application()
    app.router.add_get("/{kind}/{n}", handle)
    runner = web.AppRunner(app, shutdown_timeout=0.2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    origin.base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    return origin, runner


@pytest_asyncio.fixture
async def origins() -> AsyncIterator[tuple[Origin, Origin]]:
    (a, runner_a), (b, runner_b) = await start_origin(), await start_origin()
    yield a, b
    for origin in (a, b):
        origin.release.set()
    await runner_a.cleanup()
    await runner_b.cleanup()


def budgeted(**options: float) -> RemoteFetcher:
    return RemoteFetcher(allow_private=True, allow_http=True, **{"timeout": 2.0, "failure_ttl": 0.5, **options})


@pytest.mark.asyncio
async def test_a_failed_url_is_not_fetched_again_until_its_failure_expires(origins) -> None:
    a, _ = origins
    url = f"{a.base}/fail/1"
    async with budgeted() as fetcher:
        for _ in range(3):
            with pytest.raises(FetchHTTPError) as err:
                await fetcher.fetch_object(url)
            assert err.value.status == 503
        assert a.hits["/fail/1"] == 1
        a.healthy.add("/fail/1")
        await asyncio.sleep(0.6)
        assert (await fetcher.fetch_object(url))["id"] == url
        assert a.hits["/fail/1"] == 2


@pytest.mark.asyncio
async def test_a_remembered_410_is_still_a_410(origins) -> None:
    a, _ = origins
    async with budgeted() as fetcher:
        for _ in range(2):
            with pytest.raises(FetchGone):
                await fetcher.fetch_object(f"{a.base}/gone/1")
        assert a.hits["/gone/1"] == 1


@pytest.mark.asyncio
async def test_an_origin_failing_three_times_in_a_row_is_paused_and_others_are_not(origins) -> None:
    a, b = origins
    async with budgeted(timeout=0.3) as fetcher:
        for n in range(3):
            with pytest.raises(FetchTimeout):
                await fetcher.fetch_object(f"{a.base}/hang/{n}")
        with pytest.raises(FetchUnavailable):
            await fetcher.fetch_object(f"{a.base}/hang/9")
        assert a.hits["/hang/9"] == 0
        assert fetcher.origin_paused_for(f"{a.base}/x") > 0
        assert (await fetcher.fetch_object(f"{b.base}/ok/1"))["type"] == "Note"
        await asyncio.sleep(0.6)
        assert fetcher.origin_paused_for(f"{a.base}/x") == 0
        assert (await fetcher.fetch_object(f"{a.base}/ok/2"))["type"] == "Note"


@pytest.mark.asyncio
async def test_fetches_per_origin_are_capped(origins) -> None:
    a, b = origins
    async with budgeted(fetches_per_origin=2) as fetcher:
        docs = await asyncio.gather(*(fetcher.fetch_object(f"{a.base}/slow/{n}") for n in range(6)),
                                    *(fetcher.fetch_object(f"{b.base}/slow/{n}") for n in range(2)))
    assert len(docs) == 8
    assert a.most_in_flight == 2
    assert b.most_in_flight == 2


@pytest.mark.asyncio
async def test_json_lookups_share_the_origins_budget_and_pause_and_an_answer_is_asked_again(origins) -> None:
    # WebFinger (get_json) to a host that hangs: paused like actor fetches, so a list of addresses
    # there costs a few timeouts, not one each; capped per origin like them; and a 404 is not
    # remembered, nor a 410 (an account looked up before it exists is found once it does).
    a, b = origins
    async with budgeted(timeout=0.3) as fetcher:
        for n in range(3):
            with pytest.raises(FetchTimeout):
                await fetcher.get_json(f"{a.base}/hang/{n}")
        with pytest.raises(FetchUnavailable):
            await fetcher.get_json(f"{a.base}/hang/9")
        assert a.hits["/hang/9"] == 0
    async with budgeted(fetches_per_origin=2) as fetcher:
        docs = await asyncio.gather(*(fetcher.get_json(f"{b.base}/slow/{n}") for n in range(5)))
        assert len(docs) == 5 and b.most_in_flight == 2
        for _ in range(2):
            with pytest.raises(FetchGone):
                await fetcher.get_json(f"{b.base}/gone/1")
        assert b.hits["/gone/1"] == 2
