"""Settings → Your data as a person uses it in Chromium, against real `fedserver serve` processes:
the archive downloads as a file that holds their posts (the zip is opened here), and a blocks CSV
chosen in the file picker blocks the accounts it names on another server."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser.test_browser_flows import PASSWORD, new_person, write_post
from tests.e2e.processes import ServerProcess, wait_for


def create_accounts(server: ServerProcess, *names: str) -> None:
    secret = server.directory / "browser-password"
    secret.write_text(PASSWORD)
    for name in names:
        server.run("user", "create", name, "--password-file", str(secret), check=True)


def test_the_downloaded_archive_holds_the_persons_posts(page: Page, servers, tmp_path: Path):
    here, _ = servers
    username = new_person(page, here)
    write_post(page, "My first post, kept in the archive")
    expect(page.get_by_text("My first post, kept in the archive")).to_be_visible()
    write_post(page, "A second one")
    expect(page.get_by_text("A second one")).to_be_visible()

    page.goto(f"{here.base}/settings/profile")
    page.get_by_role("navigation", name="Settings").get_by_role("link", name="Your data").click()
    expect(page.get_by_role("heading", name="Your archive")).to_be_visible()
    with page.expect_download() as downloading:
        page.get_by_role("link", name="Download your archive").click()
    download = downloading.value
    assert download.suggested_filename.startswith("archive-") and download.suggested_filename.endswith(
        f"-{username}.zip"), download.suggested_filename
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)

    with zipfile.ZipFile(saved) as archive:
        assert archive.testzip() is None
        outbox = json.loads(archive.read("outbox.json"))
        actor = json.loads(archive.read("actor.json"))
    contents = [item["object"]["content"] for item in outbox["orderedItems"]]
    assert outbox["totalItems"] == 2 and len(contents) == 2, contents
    assert "My first post, kept in the archive" in contents[0] and "A second one" in contents[1]
    assert actor["preferredUsername"] == username and actor["outbox"] == "outbox.json"


def test_importing_a_blocks_csv_blocks_those_accounts(page: Page, servers, tmp_path: Path):
    here, there = servers
    create_accounts(there, "spammer1", "spammer2")
    new_person(page, here)
    blocks = tmp_path / "blocked_accounts.csv"
    blocks.write_text(f"spammer1@{there.domain}\nspammer2@{there.domain}\nnobody@{there.domain}\n")

    page.goto(f"{here.base}/settings/data")
    page.get_by_label("Accounts to block").check()
    page.get_by_label("CSV file").set_input_files(blocks)
    page.get_by_role("button", name="Import").click()

    summary = page.locator("#import-summary")
    expect(summary).to_contain_text("Blocked 2 accounts of the 3 in the file")
    expect(summary.get_by_role("listitem")).to_have_text([f"nobody@{there.domain}"])
    # Blocked as if from their profiles: on the list with Unblock, and their server was told.
    page.get_by_role("navigation", name="Settings").get_by_role("link", name="Blocked accounts").click()
    for name in ("spammer1", "spammer2"):
        expect(page.get_by_role("button", name=f"Unblock @{name}@{there.domain}")).to_be_visible()
    wait_for(lambda: there.value("SELECT count(*) FROM blocks b JOIN actors t ON t.id = b.target_id"
                                 " WHERE t.username IN ('spammer1', 'spammer2') AND t.domain = ?",
                                 (there.domain,)) == 2, what="the Blocks to reach the other server")
