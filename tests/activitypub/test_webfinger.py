"""WebFinger client/server helpers, against a loopback aiohttp server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web

from fedserver.activitypub.fetch import (
    FetchGone,
    FetchHTTPError,
    FetchInvalid,
    FetchNotFound,
    RemoteFetcher,
)
from fedserver.activitypub.webfinger import (
    build_jrd,
    parse_handle,
    resolve_handle,
    self_link,
    verify_round_trip,
)

@pytest.mark.parametrize(
    "handle,expected",
    [
        ("@alice@example.org", ("alice", "example.org")),
        ("alice@example.org", ("alice", "example.org")),
        ("acct:alice@example.org", ("alice", "example.org")),
        ("ACCT:Alice@Example.ORG", ("Alice", "example.org")),
        ("  alice@example.org ", ("alice", "example.org")),
        ("a.b-c_d@sub.example.org", ("a.b-c_d", "sub.example.org")),
        ("alice@127.0.0.1:8080", ("alice", "127.0.0.1:8080")),
        ("alice@[::1]:8080", ("alice", "[::1]:8080")),
        ("alice@bücher.example", ("alice", "xn--bcher-kva.example")),
    ],
)
def test_parse_handle(handle: str, expected: tuple[str, str]) -> None:
    assert parse_handle(handle) == expected


@pytest.mark.parametrize(
    "handle",
    ["", "alice", "@alice", "alice@", "@@example.org", "a@b@c", "al ice@example.org",
     "alice@exa mple.org", "alice@example.org/path", "alice@example.org?x", "a/b@example.org",
     "alice@example.org:99999", "alice@-bad.org", "https://example.org/@alice", "acct:",
     "alice@example.org#frag"],
)
def test_parse_handle_rejects(handle: str) -> None:
    with pytest.raises(ValueError):
        parse_handle(handle)


def test_build_jrd_shape() -> None:
    jrd = build_jrd("alice@example.org", "https://example.org/users/alice",
                    "https://example.org/@alice",
                    ["https://example.org/@alice", "https://example.org/users/alice",
                     "https://example.org/@alice"],
                    subscribe_template="https://example.org/authorize_interaction?uri={uri}")
    assert jrd["subject"] == "acct:alice@example.org"
    assert jrd["aliases"] == ["https://example.org/@alice", "https://example.org/users/alice"]
    selfs = [link for link in jrd["links"] if link["rel"] == "self"]
    assert selfs == [{"rel": "self", "type": "application/activity+json",
                      "href": "https://example.org/users/alice"}]
    assert self_link(jrd) == "https://example.org/users/alice"
    assert build_jrd("acct:a@b", "https://b/a")["subject"] == "acct:a@b"
    assert [link["rel"] for link in build_jrd("acct:a@b", "https://b/a")["links"]] == ["self"]


def test_self_link_requires_as2_type() -> None:
    links: list[dict[str, Any]] = [
        {"rel": "self", "type": "text/html", "href": "https://x/html"},
        {"rel": "self", "href": "https://x/notype"},
        {"rel": "self", "type": 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"',
         "href": "https://x/ld"},
    ]
    assert self_link({"links": links}) == "https://x/ld"
    assert self_link({"links": links[:2]}) is None
    assert self_link({"links": "nope"}) is None


@dataclass
class WF:
    """A loopback server whose WebFinger answers come from ``jrds[resource]``."""

    host: str
    fetcher: RemoteFetcher
    jrds: dict[str, Any] = field(default_factory=dict)  # resource -> JRD dict or status
    seen: list[dict[str, str]] = field(default_factory=list)


@pytest_asyncio.fixture
async def wf() -> AsyncIterator[WF]:
    state = WF(host="", fetcher=RemoteFetcher(allow_private=True, allow_http=True, timeout=2))

    async def webfinger(request: web.Request) -> web.Response:
        state.seen.append(dict(request.headers))
        answer = state.jrds.get(request.query.get("resource", ""), 404)
        if isinstance(answer, int):
            return web.Response(status=answer)
        return web.json_response(answer, content_type="application/jrd+json")

    app = web.Application()
    app.router.add_get("/.well-known/webfinger", webfinger)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.host = f"127.0.0.1:{runner.addresses[0][1]}"
    yield state
    await state.fetcher.close()
    await runner.cleanup()


@pytest.mark.asyncio
async def test_resolve_handle(wf: WF) -> None:
    host, fetcher, jrds = wf.host, wf.fetcher, wf.jrds
    actor = f"http://{host}/users/alice"
    jrds[f"acct:alice@{host}"] = build_jrd(f"acct:alice@{host}", actor, f"http://{host}/@alice")
    assert await resolve_handle(fetcher, f"@alice@{host}", "http") == actor
    assert wf.seen[-1]["Accept"] == "application/jrd+json, application/json"


@pytest.mark.asyncio
async def test_resolve_handle_errors(wf: WF) -> None:
    host, fetcher, jrds = wf.host, wf.fetcher, wf.jrds
    with pytest.raises(FetchNotFound):
        await resolve_handle(fetcher, f"nobody@{host}", "http")
    jrds[f"acct:gone@{host}"] = 410
    with pytest.raises(FetchGone):
        await resolve_handle(fetcher, f"gone@{host}", "http")
    jrds[f"acct:broken@{host}"] = 500
    with pytest.raises(FetchHTTPError):
        await resolve_handle(fetcher, f"broken@{host}", "http")
    jrds[f"acct:noself@{host}"] = {"subject": f"acct:noself@{host}", "links": []}
    with pytest.raises(FetchInvalid):
        await resolve_handle(fetcher, f"noself@{host}", "http")
    jrds[f"acct:js@{host}"] = build_jrd(f"acct:js@{host}", "javascript:alert(1)")
    with pytest.raises(FetchInvalid):
        await resolve_handle(fetcher, f"js@{host}", "http")
    with pytest.raises(ValueError):
        await resolve_handle(fetcher, "not a handle", "http")


@pytest.mark.asyncio
async def test_verify_round_trip(wf: WF) -> None:
    host, fetcher, jrds = wf.host, wf.fetcher, wf.jrds
    actor_id = f"http://{host}/users/alice"
    actor = {"id": actor_id, "type": "Person", "preferredUsername": "alice"}
    jrds[f"acct:alice@{host}"] = build_jrd(f"acct:alice@{host}", actor_id)
    assert await verify_round_trip(fetcher, actor, "http")

    # Impersonation: WebFinger points elsewhere.
    jrds[f"acct:mallory@{host}"] = build_jrd(f"acct:mallory@{host}", f"http://{host}/users/mallory")
    assert not await verify_round_trip(
        fetcher, {**actor, "preferredUsername": "mallory"}, "http")
    assert not await verify_round_trip(fetcher, {**actor, "preferredUsername": "nobody"}, "http")
    assert not await verify_round_trip(fetcher, {"id": actor_id}, "http")
    assert not await verify_round_trip(fetcher, {"preferredUsername": "alice"}, "http")


@pytest.mark.asyncio
async def test_verify_round_trip_split_domain(wf: WF) -> None:
    host, fetcher, jrds = wf.host, wf.fetcher, wf.jrds
    actor_id = f"http://{host}/users/bob"
    # Both "domains" are the same loopback server; the subject names a different account.
    jrds[f"acct:bob@{host}"] = build_jrd(f"acct:robert@{host}", actor_id)
    jrds[f"acct:robert@{host}"] = build_jrd(f"acct:robert@{host}", actor_id)
    actor = {"id": actor_id, "preferredUsername": "bob"}
    assert await verify_round_trip(fetcher, actor, "http")
    # A second hop (subject moves again) is refused.
    jrds[f"acct:robert@{host}"] = build_jrd(f"acct:rob@{host}", actor_id)
    assert not await verify_round_trip(fetcher, actor, "http")


@pytest.mark.asyncio
async def test_verify_round_trip_fep_2c59(wf: WF) -> None:
    host, fetcher, jrds = wf.host, wf.fetcher, wf.jrds
    actor_id = f"http://{host}/users/c"
    jrds[f"acct:carol@{host}"] = build_jrd(f"acct:carol@{host}", actor_id)
    actor = {"id": actor_id, "preferredUsername": "c", "webfinger": f"acct:carol@{host}"}
    assert await verify_round_trip(fetcher, actor, "http")
