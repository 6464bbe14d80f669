"""What an admin needs in the first week, against the real `fedserver serve` and the real CLI:
reserved usernames, sign-ups that wait for approval, password resets, admin rights, and the
confirmation steps before blocking an account and before deleting one."""
from __future__ import annotations

import html
import os
import re
import subprocess
from pathlib import Path

import aiohttp

from fedserver.app import build_app
from fedserver.services.reserved_names import is_reserved
from tests.conftest import loopback_settings
from tests.e2e.processes import FEDSERVER, ServerProcess, set_config_keys
from tests.web.browser import PASSWORD, Browser

AS2 = "application/activity+json"


def password_file(server: ServerProcess) -> str:
    path = server.directory / "password.txt"
    path.write_text(PASSWORD + "\n", encoding="utf-8")
    return str(path)


def create(server: ServerProcess, name: str, *options: str) -> None:
    server.run("user", "create", name, "--password-file", password_file(server), *options, check=True)


async def status_of(url: str, *, accept: str = AS2) -> int:
    async with aiohttp.ClientSession() as http:
        async with http.get(url, headers={"Accept": accept}, allow_redirects=False) as resp:
            return resp.status


async def sign_up(server: ServerProcess, username: str, **fields: str):
    visitor = Browser(server.base)
    try:
        return await visitor.submit("/auth/sign_up", "/auth/sign_up", {
            "username": username, "password": PASSWORD, "password_confirm": PASSWORD, **fields})
    finally:
        await visitor.close()


async def try_sign_in(server: ServerProcess, username: str, password: str = PASSWORD):
    visitor = Browser(server.base)
    try:
        return await visitor.submit("/auth/sign_in", "/auth/sign_in",
                                    {"username": username, "password": password, "next": "/home"})
    finally:
        await visitor.close()


async def signed_in(server: ServerProcess, username: str, password: str = PASSWORD) -> Browser:
    browser = Browser(server.base)
    await browser.sign_in(username, password)  # asserts it lands on /home
    return browser


async def can_sign_in(server: ServerProcess, username: str, password: str = PASSWORD) -> None:
    await (await signed_in(server, username, password)).close()


def local_accounts(server: ServerProcess) -> list[str]:
    return [row[0] for row in server.query("SELECT username FROM local_accounts WHERE is_instance_actor = 0")]


# --- reserved usernames -----------------------------------------------------------------------

async def test_reserved_usernames_are_refused_on_the_sign_up_form_and_by_user_create(fedserver_processes):
    server = fedserver_processes("a")
    # The instance actor is named after the host: give the instance a host name that is a valid username.
    set_config_keys(server.config, registrations="open", domain=f"fedhost:{server.port}",
                    sign_ups_per_address_per_hour=1000)  # these tests are not about that limit
    await server.astart()
    # A handful on the web (sign-up is rate-limited per address), more through the CLI.
    for name in ("admin", "Root", "abuse", "settings", "well_known", "FedHost"):
        page = await sign_up(server, name)
        assert page.status == 400, (name, page.status)
        assert f"the username “{name.lower()}” is reserved; choose another one" in html.unescape(page.text)
    assert local_accounts(server) == []
    ok = await sign_up(server, "rootbeer")  # only whole names are reserved
    assert ok.status == 200 and ok.url.endswith("/home")

    for name in ("Admin", "SUPPORT", "postmaster", "webmaster", "security", "noreply", "api", "users", "inbox",
                 "follow_requests", "fedhost"):
        refused = await server.arun("user", "create", name)
        assert refused.returncode == 1
        assert refused.stderr.strip() == f"error: the username “{name.lower()}” is reserved; choose another one"
    assert local_accounts(server) == ["rootbeer"]
    allowed = await server.arun("user", "create", "support", "--allow-reserved")
    assert allowed.returncode == 0, allowed.stderr
    assert sorted(local_accounts(server)) == ["rootbeer", "support"]


def test_no_username_can_be_the_first_segment_of_a_route(tmp_path: Path):
    """Every first path segment the app routes is reserved (a new route must add its name)."""
    app = build_app(loopback_settings(tmp_path, 8080), run_workers=False)
    segments = set()
    for resource in app.router.resources():
        path = resource.canonical
        first = path.strip("/").split("/")[0]
        if first and not first.startswith(("@", "{")):
            segments.add(first)
    assert {"admin", "api", "auth", "settings", ".well-known", "users", "inbox", "nodeinfo"} <= segments
    assert [s for s in sorted(segments) if not is_reserved(s, domain="social.example")] == []


# --- sign-ups waiting for approval ----------------------------------------------------------

async def test_approval_sign_up_waits_for_an_admin_and_approving_on_the_admin_page_lets_it_sign_in(
        fedserver_processes):
    server = fedserver_processes("a")
    set_config_keys(server.config, registrations="approval", sign_ups_per_address_per_hour=1000)
    create(server, "boss", "--admin")
    await server.astart()
    visitor = Browser(server.base)
    assert 'name="reason"' in (await visitor.get("/auth/sign_up")).text
    async with visitor.http.get(f"{server.base}/nodeinfo/2.1") as resp:
        assert (await resp.json(content_type=None))["openRegistrations"] is True  # as Mastodon says it
    await visitor.close()

    no_reason = await sign_up(server, "newbie", reason="  ")
    assert no_reason.status == 400 and "reason" in no_reason.text
    waiting = await sign_up(server, "Newbie", reason="I run the <b>chess club</b> and want to post our games.")
    assert waiting.status == 200 and "waiting for approval" in waiting.text
    assert "Newbie" not in local_accounts(server) and "newbie" not in local_accounts(server)
    taken = await sign_up(server, "newbie", reason="again")
    assert taken.status == 400 and "is taken" in html.unescape(taken.text)

    # Not federated, not visible: no actor, no WebFinger, no profile.
    assert await status_of(f"{server.base}/users/newbie") == 404
    assert await status_of(f"{server.base}/.well-known/webfinger?resource=acct:newbie@{server.domain}",
                           accept="application/jrd+json") == 404
    assert await status_of(f"{server.base}/@newbie", accept="text/html") == 404

    refused = await try_sign_in(server, "newbie")
    assert refused.status == 401 and "waiting for approval" in refused.text
    wrong = await try_sign_in(server, "newbie", "not the password")
    assert wrong.status == 401 and "waiting for approval" not in wrong.text

    listed = await server.arun("user", "pending", check=True)
    assert listed.stdout.startswith("newbie\t") and "chess club" in listed.stdout

    boss = await signed_in(server, "boss")
    admin = await boss.get("/admin")
    assert "@newbie" in admin.text and "I run the &lt;b&gt;chess club&lt;/b&gt;" in admin.text
    approved = await boss.submit("/admin", "/admin/signups", {"name": "newbie", "decision": "approve"})
    assert "@newbie is approved" in approved.text and "No sign-ups are waiting." in approved.text
    await boss.close()

    await can_sign_in(server, "newbie")
    assert await status_of(f"{server.base}/users/newbie") == 200
    assert (await server.arun("user", "pending", check=True)).stdout == ""


async def test_rejecting_a_sign_up_deletes_it_on_the_admin_page_and_with_the_cli(fedserver_processes):
    server = fedserver_processes("a")
    set_config_keys(server.config, registrations="approval", sign_ups_per_address_per_hour=1000)
    create(server, "boss", "--admin")
    await server.astart()
    for name in ("spammer", "other"):
        assert (await sign_up(server, name, reason="buy my pills")).status == 200

    boss = await signed_in(server, "boss")
    rejected = await boss.submit("/admin", "/admin/signups", {"name": "spammer", "decision": "reject"})
    assert "sign-up of @spammer was rejected" in rejected.text and "@spammer" not in (await boss.get("/admin")).text
    await boss.close()
    cli = await server.arun("user", "reject", "other")
    assert cli.returncode == 0 and cli.stdout.strip() == "rejected the sign-up of other"

    assert server.value("SELECT count(*) FROM pending_signups") == 0
    for name in ("spammer", "other"):
        page = await try_sign_in(server, name)
        assert page.status == 401 and "wrong username or password" in page.text
        assert await status_of(f"{server.base}/users/{name}") == 404
    again = await server.arun("user", "approve", "spammer")
    assert again.returncode == 1 and "no sign-up is waiting for approval" in again.stderr

    # The name is free again; the CLI approves too.
    assert (await sign_up(server, "other", reason="second try")).status == 200
    approved = await server.arun("user", "approve", "other")
    assert approved.returncode == 0, approved.stderr
    assert approved.stdout.strip() == f"approved {server.handle('other')} ({server.actor_uri('other')})"
    await can_sign_in(server, "other")


async def test_sign_ups_waiting_for_approval_are_bounded(fedserver_processes):
    server = fedserver_processes("a")
    set_config_keys(server.config, registrations="approval", sign_ups_per_address_per_hour=1000)
    await server.astart()
    assert (await sign_up(server, "first", reason="hello")).status == 200
    # A flood already waits (written straight into the database: hashing a thousand passwords
    # through the form would only make the test slow).
    server.write_many("INSERT INTO pending_signups (username, password_hash, reason, created_at)"
                      " VALUES (?, 'x', 'spam', '2026-01-01T00:00:00Z')", [(f"bot{i}",) for i in range(999)])
    refused = await sign_up(server, "latecomer", reason="hello")
    assert refused.status == 400 and "too many sign-ups are waiting for approval" in refused.text
    assert server.value("SELECT count(*) FROM pending_signups") == 1000
    assert (await server.arun("user", "reject", "bot1")).returncode == 0  # room comes back
    assert (await sign_up(server, "latecomer", reason="hello")).status == 200


# --- passwords and admin rights -------------------------------------------------------------

async def test_reset_password_prints_a_password_that_works_and_ends_the_old_sessions(fedserver_processes):
    server = fedserver_processes("a")
    create(server, "carol")
    create(server, "dora")
    create(server, "boss", "--admin")
    await server.astart()
    carol = await signed_in(server, "carol")
    assert (await carol.get("/home", follow=False)).status == 200

    result = await server.arun("user", "reset-password", "carol")
    assert result.returncode == 0, result.stderr
    match = re.fullmatch(r"new password for carol \(its sessions were ended\): (\S{16,})", result.stdout.strip())
    assert match, result.stdout
    new_password = match.group(1)
    assert (await carol.get("/home", follow=False)).status == 303  # the old cookie no longer signs in
    assert (await try_sign_in(server, "carol")).status == 401
    await can_sign_in(server, "carol", new_password)
    await carol.close()

    # The same from the admin page: the new password is shown once, never cached.
    dora = await signed_in(server, "dora")
    boss = await signed_in(server, "boss")
    page = await boss.submit("/admin", "/admin/accounts/reset_password", {"name": "dora"})
    assert page.status == 200 and "no-store" in page.headers.get("Cache-Control", "")
    shown = re.search(r'<code id="new-password">([^<]+)</code>', page.text)
    assert shown
    assert shown.group(1) not in (await boss.get("/admin")).text
    assert (await dora.get("/home", follow=False)).status == 303
    await can_sign_in(server, "dora", html.unescape(shown.group(1)))
    await dora.close()
    await boss.close()


async def test_set_admin_on_and_off_changes_access_to_the_admin_page(fedserver_processes):
    server = fedserver_processes("a")
    create(server, "dave")
    create(server, "erin")
    create(server, "boss", "--admin")
    await server.astart()
    dave = await signed_in(server, "dave")
    assert (await dave.get("/admin")).status == 403

    on = await server.arun("user", "set-admin", "dave", "--on")
    assert on.returncode == 0 and on.stdout.strip() == "dave is an admin now"
    assert (await dave.get("/admin")).status == 200
    assert f"{server.handle('dave')}\t{server.actor_uri('dave')}\tadmin" in (await server.arun("user", "list")).stdout
    off = await server.arun("user", "set-admin", "dave", "--off")
    assert off.returncode == 0 and off.stdout.strip() == "dave is no longer an admin"
    assert (await dave.get("/admin")).status == 403
    neither = await server.arun("user", "set-admin", "dave")
    assert neither.returncode == 2 and "one of the arguments --on --off is required" in neither.stderr
    await dave.close()

    # From the admin page.
    erin = await signed_in(server, "erin")
    boss = await signed_in(server, "boss")
    made = await boss.submit("/admin", "/admin/accounts/admin", {"name": "erin", "admin": "on"})
    assert "@erin is an admin now" in made.text
    assert (await erin.get("/admin")).status == 200
    removed = await boss.submit("/admin", "/admin/accounts/admin", {"name": "erin", "admin": "off"})
    assert "@erin is no longer an admin" in removed.text
    assert (await erin.get("/admin")).status == 403
    await erin.close()
    await boss.close()


# --- confirmations ----------------------------------------------------------------------------

async def test_blocking_an_account_asks_for_confirmation_and_happens_only_on_confirm(fedserver_processes):
    server = fedserver_processes("a")
    create(server, "alice")
    create(server, "bob")
    await server.astart()
    bob_id = server.value("SELECT id FROM actors WHERE username = 'bob' AND is_local = 1")
    alice = await signed_in(server, "alice")
    profile = await alice.get("/@bob")
    # The profile's Block button is a plain GET form to the confirmation page.
    assert re.search(r'<form class="inline" method="get" action="/block">', profile.text)

    confirm = await alice.get(f"/block?actor_id={bob_id}&back=/@bob")
    assert confirm.status == 200 and "Block bob?" in confirm.text
    assert "you stop following each other" in confirm.text and '<a href="/@bob">Cancel</a>' in confirm.text
    assert server.value("SELECT count(*) FROM blocks") == 0

    # A form that skipped the confirmation gets the confirmation page, not a block.
    skipped = await alice.post("/block", {"csrf_token": confirm.csrf, "actor_id": str(bob_id), "back": "/@bob"})
    assert skipped.status == 200 and "Block bob?" in skipped.text
    forged = await alice.post("/block", {"actor_id": str(bob_id), "back": "/@bob", "confirm": "yes"})
    assert forged.status == 403
    assert server.value("SELECT count(*) FROM blocks") == 0

    done = await alice.submit(f"/block?actor_id={bob_id}&back=/@bob", "/block",
                              {"actor_id": str(bob_id), "back": "/@bob", "confirm": "yes"})
    assert done.url.endswith("/@bob") and "You blocked" in done.text and ">Unblock</button>" in done.text
    assert server.value("SELECT count(*) FROM blocks") == 1
    await alice.close()


async def test_user_delete_needs_the_typed_name_or_yes(fedserver_processes):
    server = fedserver_processes("a")
    for name in ("fay", "gus"):
        create(server, name)
    await server.astart()

    refused = await server.arun("user", "delete", "fay")  # stdin is not a terminal
    assert refused.returncode == 1
    assert refused.stderr.strip() == ("error: refusing to delete fay without confirmation: run this in a terminal "
                                      "and type the username when asked, or pass --yes")
    assert server.value("SELECT deleted_at FROM actors WHERE username = 'fay' AND is_local = 1") is None
    assert await status_of(f"{server.base}/users/fay") == 200

    mistyped = run_in_terminal(server, ["user", "delete", "fay"], typed="gus\n")
    assert mistyped.returncode == 1 and "the typed name does not match; fay was not deleted" in mistyped.stderr
    assert server.value("SELECT deleted_at FROM actors WHERE username = 'fay' AND is_local = 1") is None

    typed = run_in_terminal(server, ["user", "delete", "fay"], typed="fay\n")
    assert typed.returncode == 0, typed.stderr
    assert "Type the username (fay) to confirm" in typed.stdout and "deleted fay" in typed.stdout
    assert await status_of(f"{server.base}/users/fay") == 410

    forced = await server.arun("user", "delete", "gus", "--yes")
    assert forced.returncode == 0 and forced.stdout.strip() == "deleted gus"
    assert await status_of(f"{server.base}/users/gus") == 410


def run_in_terminal(server: ServerProcess, args: list[str], *, typed: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI with a pseudo-terminal as its stdin (what a person at a shell has) and type into it."""
    controller, terminal = os.openpty()
    try:
        proc = subprocess.Popen([*FEDSERVER, "--config", str(server.config), *args], cwd=server.directory,
                                stdin=terminal, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        os.write(controller, typed.encode())
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        os.close(terminal)
        os.close(controller)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
