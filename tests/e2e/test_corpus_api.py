"""The researcher API (/api/corpus/v1/) on a real server over loopback HTTP: token auth, the terms
gate, snapshots, the changes feed, compliance, statistics, rate limiting and the pull log; and the
`fedserver researcher` commands that hand out and revoke tokens."""
from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from fedserver.cli import main
from fedserver.config import render_default_config, with_overrides
from fedserver.corpus.terms import Terms, researcher_terms
from fedserver.services import accounts, posting, researchers
from fedserver.services.consent import set_training_consent
from fedserver.services.posting import Draft
from tests.conftest import Instance
from tests.e2e.processes import set_config_keys

API = "/api/corpus/v1"
# The terms a researcher registered with the defaults accepts: 30 days to confirm removals,
# records as written.
RESEARCHER_TERMS = researcher_terms(30, False)

pytestmark = pytest.mark.usefixtures("fast_accounts")


class ResearcherClient:
    """A researcher's HTTP client for one instance."""

    def __init__(self, instance: Instance, session: aiohttp.ClientSession, token: str | None) -> None:
        self.instance, self.session, self.token = instance, session, token

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def call(self, method: str, path: str, *, json_body: Any = None,
                   params: dict[str, Any] | None = None) -> tuple[int, Any, aiohttp.typedefs.LooseHeaders]:
        async with self.session.request(method, f"{self.instance.base}{API}/{path}", headers=self._headers(),
                                        json=json_body, params=params) as response:
            text = await response.text()
            if response.content_type == "application/x-ndjson":
                body: Any = [json.loads(line) for line in text.splitlines() if line]
            else:
                body = json.loads(text) if text else None
            return response.status, body, response.headers

    async def get(self, path: str, **params: Any) -> tuple[int, Any, Any]:
        return await self.call("GET", path, params=params or None)

    async def post(self, path: str, body: Any) -> tuple[int, Any, Any]:
        return await self.call("POST", path, json_body=body)

    async def accept_terms(self) -> None:
        status, terms, _ = await self.get("terms")
        assert status == 200, terms
        status, body, _ = await self.post("terms", {"version": terms["version"], "sha256": terms["sha256"],
                                                    "accept": True})
        assert status == 200, body

    async def records(self) -> tuple[list[dict[str, Any]], int]:
        status, body, headers = await self.get("records")
        assert status == 200, body
        return body, int(headers["Corpus-Cursor"])

    async def changes(self, cursor: int, limit: int | None = None) -> dict[str, Any]:
        params = {"cursor": cursor, **({"limit": limit} if limit else {})}
        status, body, _ = await self.get("changes", **params)
        assert status == 200, body
        return body

    async def all_changes(self, cursor: int = 0, limit: int = 1000) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        while True:
            page = await self.changes(cursor, limit)
            entries += page["changes"]
            cursor = page["next_cursor"]
            if not page["has_more"]:
                return entries


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def server(instances) -> Instance:
    """Instance a with alice (who will consent) and bob (who never does)."""
    a = await instances("a")
    await accounts.create_account(a.ctx, "alice")
    await accounts.create_account(a.ctx, "bob")
    return a


async def register(instance: Instance, session: aiohttp.ClientSession, name: str = "lab", *,
                   accept: bool = True) -> ResearcherClient:
    _, token = await researchers.add_researcher(instance.ctx, name)
    client = ResearcherClient(instance, session, token)
    if accept:
        await client.accept_terms()
    return client


async def post(instance: Instance, user: str, text: str, visibility: str = "public",
               language: str | None = "en") -> str:
    created = await posting.create_post(instance.ctx, user, Draft(text=text, visibility=visibility, language=language))
    return created.uri


async def consent(instance: Instance, user: str = "alice", license: str = "CC-BY-4.0") -> None:
    await set_training_consent(instance.ctx, user, "allow", license=license, scope="all")


async def pulls(instance: Instance, name: str = "lab") -> list[tuple]:
    return await instance.query(
        "SELECT p.endpoint, p.params, p.status, p.records FROM researcher_pulls p"
        " JOIN researchers r ON r.id = p.researcher_id WHERE r.name = ? ORDER BY p.id", (name,))


# --- authentication and the terms gate -----------------------------------------------------------

async def test_request_without_a_token_is_refused_with_401_and_a_bearer_challenge(server, session):
    status, body, headers = await ResearcherClient(server, session, None).get("records")
    assert status == 401
    assert body == {"error": "a bearer token is required"}
    assert headers["WWW-Authenticate"].startswith("Bearer")


async def test_request_with_an_unknown_token_is_refused_with_401(server, session):
    await register(server, session)
    status, body, headers = await ResearcherClient(server, session, "fsr_not-a-real-token").get("stats")
    assert status == 401
    assert "error" in body
    assert 'error="invalid_token"' in headers["WWW-Authenticate"]


async def test_revoked_token_is_refused_with_401_and_the_attempt_is_logged(server, session):
    client = await register(server, session)
    assert (await client.get("stats"))[0] == 200
    await researchers.revoke_researcher(server.ctx, "lab")

    status, body, headers = await client.get("stats")
    assert status == 401
    assert body == {"error": "this token's access was revoked"}
    assert "WWW-Authenticate" in headers
    assert (await pulls(server))[-1][:3] == ("GET stats", "", 401)


async def test_corpus_endpoints_refuse_with_403_until_the_terms_are_accepted(server, session):
    client = await register(server, session, accept=False)
    for method, path, body in (("GET", "records", None), ("GET", "changes", None), ("GET", "stats", None),
                               ("POST", "compliance", {"ids": []})):
        status, answer, _ = await client.call(method, path, json_body=body)
        assert status == 403, path
        assert "terms" in answer["error"]
    await client.accept_terms()
    assert (await client.get("records"))[0] == 200


async def test_terms_give_the_agreement_text_with_its_version_and_hash(server, session):
    client = await register(server, session, accept=False)
    status, terms, _ = await client.get("terms")
    assert status == 200
    assert terms["text"] == RESEARCHER_TERMS.text
    assert terms["version"] == RESEARCHER_TERMS.version
    assert terms["sha256"] == hashlib.sha256(terms["text"].encode("utf-8")).hexdigest()
    assert terms["accepted"] is None


async def test_accepting_terms_records_time_version_and_hash(server, session):
    client = await register(server, session)
    status, terms, _ = await client.get("terms")
    assert terms["accepted"]["version"] == RESEARCHER_TERMS.version
    assert terms["accepted"]["current"] is True
    rows = await server.query("SELECT terms_version, terms_hash, terms_accepted_at FROM researchers WHERE name = 'lab'")
    assert rows[0][:2] == (RESEARCHER_TERMS.version, RESEARCHER_TERMS.sha256)
    assert rows[0][2] is not None


async def test_accepting_the_same_terms_again_keeps_the_first_acceptance(server, session):
    client = await register(server, session)
    first = (await client.get("terms"))[1]["accepted"]["at"]
    await client.accept_terms()
    assert (await client.get("terms"))[1]["accepted"]["at"] == first


async def test_a_new_version_of_the_terms_must_be_accepted_before_the_next_pull(server, session, monkeypatch):
    client = await register(server, session)
    assert (await client.get("stats"))[0] == 200
    monkeypatch.setattr(researchers, "researcher_terms", lambda *args: Terms(version="dua-2027-01-v2", text="New terms.\n"))

    status, body, _ = await client.get("stats")
    assert status == 403
    assert "dua-2027-01-v2" in body["error"]
    terms = (await client.get("terms"))[1]
    assert terms["accepted"]["current"] is False
    await client.accept_terms()
    assert (await client.get("stats"))[0] == 200


async def test_accepting_a_stale_version_or_a_different_text_is_rejected(server, session):
    client = await register(server, session, accept=False)
    terms = RESEARCHER_TERMS
    status, body, _ = await client.post("terms", {"version": "dua-2020-01-v0", "sha256": terms.sha256, "accept": True})
    assert status == 409
    assert terms.version in body["error"]
    status, _, _ = await client.post("terms", {"version": terms.version, "sha256": "0" * 64, "accept": True})
    assert status == 409
    status, _, _ = await client.post("terms", {"version": terms.version, "sha256": terms.sha256, "accept": False})
    assert status == 400
    status, _, _ = await client.call("POST", "terms", json_body=["not", "an", "object"])
    assert status == 400
    assert (await client.get("records"))[0] == 403
    rows = await server.query("SELECT terms_accepted_at FROM researchers WHERE name = 'lab'")
    assert rows == [(None,)]


# --- what the corpus holds ------------------------------------------------------------------------

async def test_records_stream_as_json_lines_with_a_cursor_after_acceptance(server, session):
    await consent(server)
    uri = await post(server, "alice", "hello corpus")
    client = await register(server, session)
    async with session.get(f"{server.base}{API}/records", headers=client._headers()) as response:
        assert response.status == 200
        assert response.content_type == "application/x-ndjson"
        assert int(response.headers["Corpus-Cursor"]) >= 1
        lines = [json.loads(line) for line in (await response.text()).splitlines()]
    assert [r["post_url"] for r in lines] == [uri]
    assert lines[0]["text"] == "hello corpus"
    assert lines[0]["license"] == "CC-BY-4.0"
    assert lines[0]["record_id"].startswith("r_")


async def test_a_snapshot_larger_than_one_batch_streams_every_record_once_in_post_order(server, session,
                                                                                        monkeypatch):
    monkeypatch.setattr(researchers, "SNAPSHOT_BATCH", 2)
    await consent(server)
    uris = [await post(server, "alice", f"number {i}") for i in range(5)]
    client = await register(server, session)
    records, _ = await client.records()
    assert [r["post_url"] for r in records] == uris
    assert (await pulls(server))[-1] == ("GET records", "", 200, 5)


async def test_a_consenting_authors_public_posts_enter_and_followers_only_and_direct_posts_never_do(server, session):
    await consent(server)
    public = await post(server, "alice", "public words")
    await post(server, "alice", "for my followers", visibility="followers")
    await post(server, "alice", "a secret", visibility="direct")
    await post(server, "alice", "quietly", visibility="unlisted")
    await post(server, "bob", "bob never agreed")
    client = await register(server, session)

    records, _ = await client.records()
    assert [r["post_url"] for r in records] == [public]
    assert all(r["visibility"] == "public" for r in records)
    entries = await client.all_changes()
    assert {e["record"]["post_url"] for e in entries} == {public}


async def test_a_non_consenting_authors_posts_never_appear(server, session):
    await post(server, "bob", "bob's public post")
    client = await register(server, session)
    records, cursor = await client.records()
    assert records == []
    assert (await client.changes(0))["changes"] == []
    assert cursor == 0


async def test_changes_from_cursor_zero_list_each_addition_with_its_record(server, session):
    await consent(server)
    first = await post(server, "alice", "one")
    second = await post(server, "alice", "two")
    client = await register(server, session)

    page = await client.changes(0)
    assert [(e["action"], e["record"]["post_url"]) for e in page["changes"]] == [("added", first), ("added", second)]
    assert all(e["superseded"] is False and e["reason"] is None for e in page["changes"])
    assert page["has_more"] is False
    assert page["next_cursor"] == page["changes"][-1]["seq"]
    assert (await client.changes(page["next_cursor"]))["changes"] == []


async def test_withdrawal_shows_up_as_removals_with_reason_consent_withdrawn(server, session):
    await consent(server)
    uris = [await post(server, "alice", f"post {i}") for i in range(3)]
    client = await register(server, session)
    records, cursor = await client.records()
    assert [r["post_url"] for r in records] == uris
    record_ids = {r["record_id"] for r in records}

    await set_training_consent(server.ctx, "alice", "deny")

    page = await client.changes(cursor)
    assert {(e["action"], e["record_id"], e["reason"]) for e in page["changes"]} == \
        {("removed", rid, "consent_withdrawn") for rid in record_ids}
    assert (await client.records())[0] == []
    # The additions before the removals no longer carry the posts.
    earlier = await client.all_changes()
    assert all(e["record"] is None and e["superseded"] for e in earlier if e["action"] == "added")
    assert {e["record_id"] for e in earlier if e["action"] == "added"} == record_ids


async def test_deleting_a_post_removes_it_with_reason_post_deleted(server, session):
    await consent(server)
    kept = await post(server, "alice", "stays")
    gone = await post(server, "alice", "goes")
    client = await register(server, session)
    records, cursor = await client.records()
    gone_id = next(r["record_id"] for r in records if r["post_url"] == gone)

    await posting.delete_post(server.ctx, "alice", gone)

    page = await client.changes(cursor)
    assert [(e["action"], e["record_id"], e["reason"]) for e in page["changes"]] == \
        [("removed", gone_id, "post_deleted")]
    assert [r["post_url"] for r in (await client.records())[0]] == [kept]


async def test_an_edit_is_an_update_carrying_the_new_text_and_supersedes_the_addition(server, session):
    await consent(server)
    uri = await post(server, "alice", "first draft")
    client = await register(server, session)
    _, cursor = await client.records()

    await posting.edit_post(server.ctx, "alice", uri, Draft(text="second draft"))

    page = await client.changes(cursor)
    assert [(e["action"], e["record"]["text"]) for e in page["changes"]] == [("updated", "second draft")]
    added = (await client.changes(0))["changes"][0]
    assert (added["action"], added["superseded"], added["record"]) == ("added", True, None)


async def test_a_snapshot_plus_the_changes_after_its_cursor_give_the_current_corpus(server, session):
    await consent(server)
    await post(server, "alice", "before the snapshot")
    client = await register(server, session)
    records, cursor = await client.records()
    later = await post(server, "alice", "after the snapshot")

    page = await client.changes(cursor)
    held = {r["record_id"]: r for r in records}
    for entry in page["changes"]:
        if entry["action"] == "removed":
            held.pop(entry["record_id"], None)
        elif not entry["superseded"]:
            held[entry["record_id"]] = entry["record"]
    now, _ = await client.records()
    assert held == {r["record_id"]: r for r in now}
    assert later in {r["post_url"] for r in now}


async def test_changes_paged_with_a_small_limit_match_one_big_page_and_repeat_identically(server, session):
    await consent(server)
    uris = [await post(server, "alice", f"note {i}") for i in range(7)]
    await posting.delete_post(server.ctx, "alice", uris[2])
    await posting.edit_post(server.ctx, "alice", uris[4], Draft(text="edited"))
    client = await register(server, session)

    big = await client.changes(0, limit=1000)
    assert big["has_more"] is False
    small = await client.all_changes(0, limit=2)
    assert small == big["changes"]
    assert [e["seq"] for e in small] == sorted(e["seq"] for e in small)
    assert await client.changes(3, limit=2) == await client.changes(3, limit=2)
    assert (await client.changes(0, limit=2))["has_more"] is True


async def test_an_invalid_cursor_or_limit_is_rejected_with_400(server, session):
    client = await register(server, session)
    for params in ({"cursor": "abc"}, {"cursor": "-1"}, {"cursor": "999999"}, {"cursor": "0", "limit": "0"},
                   {"cursor": "0", "limit": "x"}):
        status, body, _ = await client.get("changes", **params)
        assert status == 400, params
        assert "error" in body


async def test_compliance_reports_present_removed_and_unknown_ids_in_the_order_asked(server, session):
    await consent(server)
    kept = await post(server, "alice", "kept")
    gone = await post(server, "alice", "deleted later")
    bobs = await post(server, "bob", "never in the corpus")
    client = await register(server, session)
    records, _ = await client.records()
    ids = {r["post_url"]: r["record_id"] for r in records}
    await posting.delete_post(server.ctx, "alice", gone)

    asked = [ids[gone], kept, "r_0000", bobs, ids[kept], gone, "nonsense"]
    status, body, _ = await client.post("compliance", {"ids": asked})
    assert status == 200
    assert [(r["id"], r["status"], r["reason"], r["record_id"]) for r in body["results"]] == [
        (ids[gone], "removed", "post_deleted", ids[gone]),
        (kept, "present", None, ids[kept]),
        ("r_0000", "unknown", None, None),
        (bobs, "unknown", None, None),
        (ids[kept], "present", None, ids[kept]),
        (gone, "removed", "post_deleted", ids[gone]),
        ("nonsense", "unknown", None, None),
    ]


async def test_compliance_refuses_more_than_1000_ids_and_malformed_bodies(server, session):
    client = await register(server, session)
    status, body, _ = await client.post("compliance", {"ids": [f"r_{i}" for i in range(1001)]})
    assert status == 413
    assert "1000" in body["error"]
    for bad in ({"ids": "r_1"}, {"ids": [1, 2]}, {}):
        assert (await client.post("compliance", bad))[0] == 400, bad
    async with session.post(f"{server.base}{API}/compliance", data=b"{not json", headers=client._headers()) as response:
        assert response.status == 400
        assert "error" in await response.json()


async def test_stats_count_posts_authors_languages_licences_and_removals(server, session):
    await accounts.create_account(server.ctx, "carol")
    await consent(server, "alice", "CC-BY-4.0")
    await consent(server, "carol", "CC0-1.0")
    await post(server, "alice", "hello", language="en")
    await post(server, "alice", "hallo", language="de")
    gone = await post(server, "alice", "bye", language="en")
    await post(server, "carol", "salut", language="fr")
    await post(server, "bob", "not counted", language="en")
    client = await register(server, session)
    assert (await client.get("stats"))[1]["posts"] == 4
    await posting.delete_post(server.ctx, "alice", gone)

    status, stats, _ = await client.get("stats")
    assert status == 200
    assert stats["posts"] == 3
    assert stats["authors"] == 2
    assert stats["languages"] == {"de": 1, "en": 1, "fr": 1}
    assert stats["licenses"] == {"CC-BY-4.0": 2, "CC0-1.0": 1}
    assert stats["removed"] == 1
    assert stats["date_range"]["first"] <= stats["date_range"]["last"]
    records, cursor = await client.records()
    assert stats["date_range"] == {"first": min(r["created_at"] for r in records),
                                   "last": max(r["created_at"] for r in records)}
    assert stats["cursor"] == cursor


# --- rate limit and pull log ----------------------------------------------------------------------

async def test_requests_over_the_rate_limit_get_429_with_retry_after(server, session, monkeypatch):
    server.ctx.settings = with_overrides(server.ctx.settings, corpus={"rate_limit_per_minute": 3})
    client = await register(server, session, accept=False)
    statuses = [(await client.get("terms"))[0] for _ in range(3)]
    assert statuses == [200, 200, 200]
    status, body, headers = await client.get("terms")
    assert status == 429
    assert "rate limit" in body["error"]
    assert 1 <= int(headers["Retry-After"]) <= 60
    # Another researcher has a budget of their own.
    other = await register(server, session, "other-lab", accept=False)
    assert (await other.get("terms"))[0] == 200


async def test_rate_limit_counts_the_last_minute_only(server, session, monkeypatch):
    server.ctx.settings = with_overrides(server.ctx.settings, corpus={"rate_limit_per_minute": 2})
    client = await register(server, session, accept=False)
    assert [(await client.get("terms"))[0] for _ in range(3)] == [200, 200, 429]
    # Age the logged pulls by a minute, as if the researcher had waited.
    async with server.ctx.db.transaction() as tx:
        await tx.execute("UPDATE researcher_pulls SET created_ms = created_ms - 61000")
    assert (await client.get("terms"))[0] == 200


async def test_concurrent_requests_cannot_exceed_the_rate_limit(server, session, monkeypatch):
    server.ctx.settings = with_overrides(server.ctx.settings, corpus={"rate_limit_per_minute": 5})
    client = await register(server, session, accept=False)
    statuses = await asyncio.gather(*(client.get("terms") for _ in range(12)))
    assert sorted(s for s, _, _ in statuses).count(200) == 5


async def test_every_pull_is_logged_with_endpoint_params_status_and_record_count(server, session):
    await consent(server)
    await post(server, "alice", "one")
    await post(server, "alice", "two")
    client = await register(server, session, accept=False)
    await client.get("records")
    await client.accept_terms()
    await client.get("records")
    await client.get("changes", cursor=0, limit=1)
    await client.post("compliance", {"ids": ["r_x", "r_y", "r_z"]})
    await client.get("stats")
    await client.get("changes", cursor="zz")

    assert await pulls(server) == [
        ("GET records", "", 403, 0),
        ("GET terms", "", 200, 0),
        ("POST terms", "", 200, 0),
        ("GET records", "", 200, 2),
        ("GET changes", "cursor=0&limit=1", 200, 1),
        ("POST compliance", "", 200, 3),
        ("GET stats", "", 200, 0),
        ("GET changes", "cursor=zz", 400, 0),
    ]


@pytest.mark.skipif(not researchers.croissant_available(), reason="fedserver.corpus.croissant is not there yet")
async def test_croissant_json_is_served_when_the_croissant_module_exists(server, session):
    client = await register(server, session)
    status, doc, headers = await client.get("croissant.json")
    assert status == 200
    assert headers["Content-Type"].startswith("application/ld+json")
    assert doc["@type"] == "sc:Dataset"
    assert (await pulls(server))[-1][:3] == ("GET croissant.json", "", 200)


# --- the researcher commands ------------------------------------------------------------------

def cli(config: Path, *args: str) -> int:
    return main(["--config", str(config), *args])


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "fedserver.toml"
    assert cli(path, "init", "--domain", "social.example") == 0
    return path


def test_researcher_add_prints_a_token_once_and_stores_only_its_hash(config, capsys):
    capsys.readouterr()
    assert cli(config, "researcher", "add", "lab", "--contact", "lab@uni.example") == 0
    out = capsys.readouterr().out
    token = next(line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("token: "))
    assert token.startswith("fsr_") and len(token) > 40
    with sqlite3.connect(config.parent / "fedserver.sqlite3") as db:
        row = db.execute("SELECT token_hash, contact FROM researchers WHERE name = 'lab'").fetchone()
        dump = "\n".join(db.iterdump())
    assert row == (hashlib.sha256(token.encode()).hexdigest(), "lab@uni.example")
    assert token not in dump


def test_researcher_add_twice_fails_with_a_clear_message(config, capsys):
    assert cli(config, "researcher", "add", "lab") == 0
    capsys.readouterr()
    assert cli(config, "researcher", "add", "lab") == 1
    assert capsys.readouterr().err.strip() == "error: researcher lab already exists"
    assert cli(config, "researcher", "add", "no spaces please") == 1


def test_researcher_list_shows_terms_revocation_and_pulls(config, capsys):
    assert cli(config, "researcher", "list") == 0
    assert capsys.readouterr().out.strip() == "no researchers"
    cli(config, "researcher", "add", "alpha")
    cli(config, "researcher", "add", "beta")
    cli(config, "researcher", "revoke", "beta")
    capsys.readouterr()
    assert cli(config, "researcher", "list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["alpha", "beta"]
    assert lines[0].split("\t")[2:] == ["terms not accepted", "active", "pulls 0", "removals confirmed to 0"]
    assert lines[1].split("\t")[3].startswith("revoked ")


def test_researcher_revoke_of_an_unknown_name_fails_with_exit_1(config, capsys):
    assert cli(config, "researcher", "revoke", "nobody") == 1
    assert capsys.readouterr().err.strip() == "error: no researcher named nobody"


async def test_token_printed_by_the_cli_opens_the_api_and_cli_revoke_closes_it(server, session, capsys):
    config = server.settings.base_dir / "cli.toml"
    config.write_text(render_default_config(domain=server.domain, scheme="http", port=server.settings.server.port),
                      encoding="utf-8")
    set_config_keys(config, url=server.settings.database.url)  # the server's database, on either engine
    assert await asyncio.to_thread(cli, config, "researcher", "add", "cli-lab") == 0
    token = capsys.readouterr().out.split("token: ", 1)[1].split()[0]
    client = ResearcherClient(server, session, token)
    await client.accept_terms()
    assert (await client.get("stats"))[0] == 200

    assert await asyncio.to_thread(cli, config, "researcher", "revoke", "cli-lab") == 0
    assert (await client.get("stats"))[0] == 401
    assert await asyncio.to_thread(cli, config, "researcher", "list") == 0
    line = capsys.readouterr().out.splitlines()[-1]
    assert f"terms {RESEARCHER_TERMS.version} accepted" in line
    assert "pulls 4" in line  # GET terms, POST terms, GET stats, then the refused GET stats


async def test_a_rotated_token_keeps_the_researchers_terms_and_history_and_the_old_one_is_refused(
        server, session, capsys):
    config = server.settings.base_dir / "cli.toml"
    config.write_text(render_default_config(domain=server.domain, scheme="http", port=server.settings.server.port),
                      encoding="utf-8")
    set_config_keys(config, url=server.settings.database.url)  # the server's database, on either engine
    assert await asyncio.to_thread(cli, config, "researcher", "add", "rotating-lab") == 0
    old = ResearcherClient(server, session, capsys.readouterr().out.split("token: ", 1)[1].split()[0])
    await old.accept_terms()
    assert (await old.get("stats"))[0] == 200

    assert await asyncio.to_thread(cli, config, "researcher", "rotate-token", "rotating-lab") == 0
    out = capsys.readouterr().out
    assert out.startswith("new token for researcher rotating-lab; the old one no longer works")
    new = ResearcherClient(server, session, out.split("token: ", 1)[1].split()[0])
    assert (await old.get("stats"))[0] == 401
    assert (await new.get("stats"))[0] == 200  # no second acceptance of the terms needed
    # The history stays the researcher's: the pulls before the new token and the one after (the old
    # token is unknown now, so its refused try belongs to nobody).
    assert [row[0] for row in await pulls(server, "rotating-lab")] == ["GET terms", "POST terms", "GET stats",
                                                                     "GET stats"]
    assert await asyncio.to_thread(cli, config, "researcher", "rotate-token", "nobody") == 1
    assert capsys.readouterr().err.strip() == "error: no researcher named nobody"
