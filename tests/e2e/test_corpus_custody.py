"""Where a person's posts went and proof that researchers applied removals, on a real server over
loopback HTTP: per-author receipts on the consent page, removal acknowledgements through the API
and for offline releases, the deadline past which a researcher gets no new data, and scrubbed API
records."""
from __future__ import annotations

import asyncio
import html
import re
import time
from pathlib import Path

import aiohttp
import pytest

from fedserver.cli import main
from fedserver.clock import Clock
from fedserver.config import render_default_config
from fedserver.corpus.export import export_release
from fedserver.corpus.terms import CONSENT_TERMS
from fedserver.services import accounts, posting, researchers
from fedserver.services.consent import set_training_consent
from fedserver.services.corpus_custody import CustodyError
from fedserver.services.posting import Draft
from tests.conftest import Instance
from tests.e2e.processes import set_config_keys
from tests.e2e.test_corpus_api import ResearcherClient
from tests.web.browser import Browser, person

DAY = 86_400


class ShiftedClock(Clock):
    """Real time plus an offset the test moves forward (days pass in a moment)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def world(instances):
    """Instance a on a clock the test moves; alice (signed in, consenting, two public posts) and
    bob (never consents, one post)."""
    a = await instances("a")
    clock = ShiftedClock()
    a.ctx.clock = clock
    alice = await person(a, "alice")
    await accounts.create_account(a.ctx, "bob", password="bob's long password")
    await set_training_consent(a.ctx, "alice", "allow", license="CC-BY-4.0", scope="all")
    for text in ("alice one", "alice two"):
        await posting.create_post(a.ctx, "alice", Draft(text=text))
    await posting.create_post(a.ctx, "bob", Draft(text="bob's words"))
    yield a, clock, alice
    await alice.close()


async def register(a: Instance, session: aiohttp.ClientSession, name: str = "lab", **options) -> ResearcherClient:
    _, token = await researchers.add_researcher(a.ctx, name, contact="data@lab.example", organisation="Example Lab",
                                                purpose="language model research", **options)
    client = ResearcherClient(a, session, token)
    await client.accept_terms()
    return client


async def withdraw(alice: Browser) -> None:
    page = await alice.submit("/settings/consent", "/settings/consent",
                              {"train_ai": "deny", "terms_version": CONSENT_TERMS.version})
    assert page.status == 200 and "will not be used" in page.text


async def sign_in_again(a: Instance, username: str) -> Browser:
    """A fresh session (moving the clock a month on ends the old one, as it would in real life)."""
    browser = Browser(a.base)
    await browser.sign_in(username)
    return browser


def cells(page_text: str, row_class: str) -> list[dict[str, str]]:
    """The table rows of a class on the consent page, as {cell class: text}."""
    rows = re.findall(rf'<tr class="{row_class}"[^>]*>(.*?)</tr>', page_text, re.S)
    out = []
    for row in rows:
        found = re.findall(r'<td(?: class="([^"]*)")?>(.*?)</td>', row, re.S)
        out.append({cls or str(i): html.unescape(re.sub(r"<[^>]+>", " ", text)).strip()
                    for i, (cls, text) in enumerate(found)})
    return out


async def test_a_researcher_past_the_removal_deadline_gets_403_until_they_acknowledge(world, session):
    a, clock, alice = world
    lab = await register(a, session)
    records, cursor = await lab.records()
    assert len(records) == 2  # alice's two posts; bob never consented

    # alice's page names the researcher, what they agreed to, and what they received.
    page = await alice.get("/settings/consent")
    [row] = cells(page.text, "recipient")
    assert row["0"].startswith("lab") and "Example Lab" in row["1"] and "data@lab.example" in row["1"]
    assert row["2"] == "language model research"
    assert row["records"] == "2" and row["channels"] == "the API"

    await withdraw(alice)
    changes = await lab.all_changes(cursor)
    assert {c["record_id"] for c in changes if c["action"] == "removed"} == {r["record_id"] for r in records}
    assert (await lab.get("records"))[0] == 200  # within the deadline: still served

    clock.offset = 31 * DAY
    status, body, _ = await lab.get("records")
    assert status == 403
    assert body["reason"] == "removals_overdue"
    overdue = body["oldest_overdue_removal"]
    assert overdue["record_id"] in {r["record_id"] for r in records} and overdue["reason"] == "consent_withdrawn"
    assert overdue["record_id"] in body["error"]
    assert (await lab.get("changes", cursor=cursor))[0] == 403
    # What they must apply stays readable.
    status, removals, _ = await lab.get("removals", cursor=cursor)
    assert status == 200 and {r["record_id"] for r in removals["removals"]} == {r["record_id"] for r in records}

    alice = await sign_in_again(a, "alice")
    [removal] = cells((await alice.get("/settings/consent")).text, "removal")
    assert removal["overdue"] == "lab" and removal["confirmed"] == "—"
    boss = await person(a, "boss", admin=True)
    admin_page = (await boss.get("/admin")).text
    assert re.search(r'id="overdue-researchers".*?<li>lab: removal ' + overdue["record_id"], admin_page, re.S)

    status, ack, _ = await lab.post("removals/ack", {"cursor": removals["next_cursor"]})
    assert status == 200, ack
    assert ack["acknowledged_cursor"] == removals["next_cursor"] and ack["oldest_overdue_removal"] is None
    status, after, _ = await lab.get("records")
    assert status == 200 and after == []  # pulls work again; alice's posts are gone

    [removal] = cells((await alice.get("/settings/consent")).text, "removal")
    assert removal["confirmed"] == "lab" and removal["overdue"] == "—"
    assert "No researcher is past a removal deadline" in (await boss.get("/admin")).text
    # bob's page says nothing about other people's records.
    bob = Browser(a.base)
    await bob.sign_in("bob", "bob's long password")
    bob_page = (await bob.get("/settings/consent")).text
    assert "No researcher has received any of your posts" in bob_page and "Example Lab" not in bob_page
    for browser in (alice, boss, bob):
        await browser.close()


async def test_an_acknowledgement_cannot_name_a_cursor_outside_the_feed(world, session):
    a, _, _ = world
    lab = await register(a, session)
    for bad in (-1, 10_000, "7", True, None):
        status, body, _ = await lab.post("removals/ack", {"cursor": bad})
        assert status == 400, (bad, body)
    assert (await lab.post("removals/ack", {"release": "0.0.0-none"}))[0] == 400
    assert (await lab.post("removals/ack", {}))[0] == 400


def cli(config: Path, *args: str) -> int:
    return main(["--config", str(config), *args])


async def test_an_offline_release_holder_past_the_deadline_gets_nothing_new_until_the_admin_records_the_ack(
        world, session, tmp_path, capsys):
    a, clock, alice = world
    config = a.settings.base_dir / "cli.toml"
    config.write_text(render_default_config(domain=a.domain, scheme="http", port=a.settings.server.port),
                      encoding="utf-8")
    set_config_keys(config, url=a.settings.database.url)  # the server's database, on either engine
    lab = await register(a, session)
    # The admin writes a release for the lab (the CLI records who it was given to).
    assert await asyncio.to_thread(cli, config, "corpus", "export", "--out", str(tmp_path / "r1"), "--for", "lab") == 0
    assert "recorded as given to researcher lab" in capsys.readouterr().out
    [row] = cells((await alice.get("/settings/consent")).text, "recipient")
    assert row["records"] == "2" and row["channels"] == "an offline release"

    await withdraw(alice)
    second = await export_release(a.ctx, tmp_path / "r2", recipients=["lab"])
    assert second.removals == 2

    clock.offset = 31 * DAY
    with pytest.raises(CustodyError, match="has not confirmed removal"):
        await export_release(a.ctx, tmp_path / "r3", recipients=["lab"])
    status, body, _ = await lab.get("records")
    assert status == 403 and body["reason"] == "removals_overdue"
    alice = await sign_in_again(a, "alice")
    [removal] = cells((await alice.get("/settings/consent")).text, "removal")
    assert removal["overdue"] == "lab"

    assert await asyncio.to_thread(cli, config, "researcher", "ack-release", "lab", second.version) == 0
    assert f"lab applied release {second.version}" in capsys.readouterr().out
    assert (await lab.get("records"))[0] == 200
    third = await export_release(a.ctx, tmp_path / "r3", recipients=["lab"])
    assert third.records == 0
    [removal] = cells((await alice.get("/settings/consent")).text, "removal")
    assert removal["confirmed"] == "lab" and removal["overdue"] == "—"
    assert await asyncio.to_thread(cli, config, "researcher", "ack-release", "lab", "9.9.9") == 1
    await alice.close()


async def test_a_scrubbing_researcher_gets_api_records_without_other_peoples_contacts_and_terms_saying_so(
        world, session):
    a, _, _ = world
    await posting.create_post(a.ctx, "alice", Draft(text="write to me at alice@mail.example or @bob, call +44 20 7946 0958"))
    plain = await register(a, session, "plain-lab")
    scrubbed = await register(a, session, "scrub-lab", scrub=True)
    plain_terms = (await plain.get("terms"))[1]
    scrub_terms = (await scrubbed.get("terms"))[1]
    assert "Records reach you as written" in plain_terms["text"] and plain_terms["records_form"] == "as written"
    assert "Records reach you scrubbed" in scrub_terms["text"] and scrub_terms["records_form"] == "scrubbed"
    assert "within\n   30 days" in scrub_terms["text"] and scrub_terms["removal_deadline_days"] == 30

    def text_of(records):
        return next(r["text"] for r in records if "write to me" in r["text"])
    plain_records, _ = await plain.records()
    scrub_records, _ = await scrubbed.records()
    assert "alice@mail.example" in text_of(plain_records) and "@bob" in text_of(plain_records)
    scrubbed_text = text_of(scrub_records)
    assert "[EMAIL]" in scrubbed_text and "[HANDLE]" in scrubbed_text and "[PHONE]" in scrubbed_text
    assert "alice@mail.example" not in scrubbed_text and "7946" not in scrubbed_text
    changes = await scrubbed.all_changes(0)
    [entry] = [c for c in changes if c.get("record") and "write to me" in c["record"]["text"]]
    assert "[EMAIL]" in entry["record"]["text"] and "[HANDLE]" in entry["record"]["html"]


async def test_switching_a_researcher_to_scrubbed_records_asks_them_to_accept_the_terms_again(world, session):
    a, _, _ = world
    lab = await register(a, session)
    assert (await lab.get("records"))[0] == 200
    boss = await person(a, "boss", admin=True)
    page = await boss.submit("/admin", "/admin/researchers/scrub", {"name": "lab", "scrub": "on"})
    assert page.status == 200 and "now receives records scrubbed" in page.text
    status, body, _ = await lab.get("records")
    assert status == 403 and "terms" in body["error"]
    await lab.accept_terms()
    assert (await lab.get("terms"))[1]["records_form"] == "scrubbed"
    assert (await lab.get("records"))[0] == 200
    await boss.close()
