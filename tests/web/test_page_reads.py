"""What every page reads about its visitor and the instance (the session with its account, the
instance settings, training choices, profile counts) is current on the very next page, whoever
changed it: nothing of it outlives a request."""
from __future__ import annotations

import asyncio
import re

from fedserver.services import accounts, consent, follows, posting
from fedserver.services.posting import Draft
from tests import engines
from tests.web.browser import Browser, person

KEEP_OUT_BUTTON = "Keep out of the training corpus"
COMPOSE_EXCLUDE = "Keep this post out of the AI training corpus"


def title_of(html: str) -> str:
    match = re.search(r"<title>([^<]*)</title>", html)
    assert match
    return match.group(1)


def counts_of(html: str) -> tuple[int, int, int]:
    """(posts, followers, following) as the profile header shows them."""
    posts = re.search(r"<strong>(\d+)</strong> posts?<", html)
    followers = re.search(r"<strong>(\d+)</strong> followers?<", html)
    following = re.search(r"<strong>(\d+)</strong> following<", html)
    assert posts and followers and following, "no counts on the profile"
    return int(posts.group(1)), int(followers.group(1)), int(following.group(1))


async def write(instance, sql: str, params: tuple = ()) -> None:
    async with instance.ctx.db.transaction() as tx:
        await tx.execute(sql, params)


async def test_a_session_signs_in_only_while_it_is_valid_and_the_account_is_in_good_standing(instances):
    a = await instances("a")
    ann = await person(a, "ann")
    boss = await person(a, "boss", admin=True)
    try:
        home = await ann.get("/home")
        assert home.status == 200 and 'href="/@ann"' in home.text and "Sign out" in home.text
        assert 'href="/admin"' not in home.text
        assert 'href="/admin"' in (await boss.get("/home")).text
        # Suspended or deleted without its sessions removed (as a row changed by another process
        # could be): the session no longer signs anyone in, and does again once restored.
        for column in ("suspended_at", "deleted_at"):
            await write(a, f"UPDATE actors SET {column} = '2026-01-01T00:00:00Z' WHERE username = 'ann'")
            page = await ann.get("/home")
            assert page.url.endswith("/auth/sign_in?next=/home") and "Sign out" not in page.text
            await write(a, f"UPDATE actors SET {column} = NULL WHERE username = 'ann'")
            assert (await ann.get("/home")).url.endswith("/home")
        await write(a, "UPDATE web_sessions SET expires_at = '2000-01-01T00:00:00Z'"
                       " WHERE actor_id = (SELECT id FROM actors WHERE username = 'ann')")
        assert (await ann.get("/home")).url.endswith("/auth/sign_in?next=/home")
        assert (await boss.get("/home")).url.endswith("/home")
    finally:
        await ann.close()
        await boss.close()


async def test_instance_settings_changed_by_another_process_show_on_the_next_page(instances):
    a = await instances("a")
    visitor = Browser(a.base)

    def write_elsewhere(values: dict[str, str]) -> None:
        # Another process (a second server, the admin page served elsewhere) writes the settings;
        # from a thread, so this server's own writers are not held up meanwhile.
        engines.write(engines.target_of(a.settings), "INSERT INTO instance_state (key, value) VALUES (?, ?)"
                      " ON CONFLICT (key) DO UPDATE SET value = excluded.value", list(values.items()), many=True)

    try:
        page = await visitor.get("/")
        assert title_of(page.text) == a.settings.instance.name and 'href="/auth/sign_up"' not in page.text
        await asyncio.to_thread(write_elsewhere, {"instance_name": "Quiet Garden", "registrations": "open"})
        page = await visitor.get("/local")
        assert title_of(page.text).endswith("Quiet Garden") and 'href="/auth/sign_up"' in page.text
        await asyncio.to_thread(write_elsewhere, {"instance_name": "Loud Garden", "registrations": "closed"})
        page = await visitor.get("/local")
        assert title_of(page.text).endswith("Loud Garden") and 'href="/auth/sign_up"' not in page.text
    finally:
        await visitor.close()


async def test_a_training_choice_shows_at_once_on_the_authors_own_thread_page(instances):
    a = await instances("a")
    ann = await person(a, "ann")
    try:
        post = await posting.create_post(a.ctx, "ann", Draft(text="A thought about gardens"))

        async def thread_page() -> tuple[str, str]:
            async with ann.http.get(f"{a.base}/@ann/{post.id}") as resp:
                assert resp.status == 200
                return await resp.text(), resp.headers["Content-Usage"]

        text, usage = await thread_page()
        assert KEEP_OUT_BUTTON not in text and COMPOSE_EXCLUDE not in text and usage == "train-ai=n"
        await consent.set_training_consent(a.ctx, "ann", "allow", license="CC-BY-4.0", scope="all")
        text, usage = await thread_page()
        # The post's own button, the reply form's checkbox and the crawler signals all say yes.
        assert KEEP_OUT_BUTTON in text and COMPOSE_EXCLUDE in text and usage == "train-ai=y"
        assert 'content="noai' not in text
        await consent.set_training_consent(a.ctx, "ann", "deny")
        text, usage = await thread_page()
        assert KEEP_OUT_BUTTON not in text and COMPOSE_EXCLUDE not in text and usage == "train-ai=n"
    finally:
        await ann.close()


async def test_profile_counts_show_what_each_visitor_may_see_and_accepted_follows_only(instances):
    a = await instances("a")
    ann, bob = await person(a, "ann"), await person(a, "bob")
    await accounts.create_account(a.ctx, "carol", password=None)
    await accounts.create_account(a.ctx, "dora", password=None, locked=True)
    visitor = Browser(a.base)
    try:
        for visibility in ("public", "public", "unlisted", "followers"):
            await posting.create_post(a.ctx, "ann", Draft(text=f"A {visibility} post", visibility=visibility))
        await posting.create_post(a.ctx, "ann", Draft(text="@bob only for you", visibility="direct"))
        gone = await posting.create_post(a.ctx, "ann", Draft(text="Soon gone"))
        await posting.delete_post(a.ctx, "ann", gone.uri)
        await follows.follow(a.ctx, "bob", a.handle("ann"))
        await follows.follow(a.ctx, "ann", a.handle("carol"))
        await follows.follow(a.ctx, "ann", a.handle("dora"))  # a request dora has not answered
        # Public and unlisted posts for everyone, followers-only ones for followers and ann herself;
        # direct and deleted posts never.
        assert counts_of((await visitor.get("/@ann")).text) == (3, 1, 1)
        assert counts_of((await bob.get("/@ann")).text) == (4, 1, 1)
        assert counts_of((await ann.get("/@ann")).text) == (4, 1, 1)
        assert counts_of((await visitor.get("/@dora")).text) == (0, 0, 0)
        assert counts_of((await visitor.get("/@bob")).text) == (0, 0, 1)
    finally:
        await ann.close()
        await bob.close()
        await visitor.close()
