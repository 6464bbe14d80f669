"""The people-facing pages of one real instance, driven through real HTTP like a browser without
JavaScript: forms with their CSRF tokens, redirects, cookies."""
from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from fedserver.services import accounts, consent, follows, interactions, posting, profile
from fedserver.services.posting import Draft
from tests.web.browser import Browser, person


@pytest.fixture
async def site(instances):
    a = await instances("a")
    alice = await person(a, "alice")
    yield a, alice
    await alice.close()


async def posts_of(instance, username: str) -> list[tuple]:
    return await instance.query(
        "SELECT p.id, p.content_text, p.visibility, p.summary, p.in_reply_to_uri, p.corpus_excluded FROM posts p"
        " JOIN actors a ON a.id = p.actor_id WHERE a.username = ? AND a.is_local = 1 AND p.deleted_at IS NULL"
        " ORDER BY p.id", (username,))


async def test_signed_out_home_redirects_to_sign_in(instances):
    a = await instances("a")
    anon = Browser(a.base)
    try:
        page = await anon.get("/home", follow=False)
        assert page.status == 303 and page.location == "/auth/sign_in?next=/home"
        landing = await anon.get("/")
        assert landing.status == 200 and 'href="/local"' in landing.text and 'href="/auth/sign_in"' in landing.text
    finally:
        await anon.close()


async def test_signed_in_landing_page_redirects_home(site):
    _, alice = site
    page = await alice.get("/", follow=False)
    assert page.status == 303 and page.location == "/home"


async def test_a_post_from_the_compose_form_shows_on_home_local_and_the_profile(site):
    a, alice = site
    page = await alice.submit("/home", "/posts", {"text": "Hello from the form #garden https://example.org/x",
                                                  "visibility": "public", "back": "/home"})
    assert page.status == 200 and page.url.endswith("/home")
    assert "Your post is published." in page.text
    [(post_id, text, visibility, _, _, _)] = await posts_of(a, "alice")
    assert visibility == "public" and text.startswith("Hello from the form")
    assert f'href="/@alice/{post_id}"' in page.text
    assert '<a href="http://{}/tags/garden" class="mention hashtag"'.format(a.domain) in page.text
    anon = Browser(a.base)
    try:
        for path in ("/local", "/@alice", f"/@alice/{post_id}", "/tags/garden"):
            shown = await anon.get(path)
            assert shown.status == 200 and "Hello from the form" in shown.text, path
    finally:
        await anon.close()


async def test_compose_errors_re_render_the_form_with_the_message(site):
    a, alice = site
    page = await alice.submit("/home", "/posts", {"text": "   ", "visibility": "public", "back": "/home"})
    assert page.status == 400
    assert 'role="alert"' in page.text and "a post needs some text" in page.text
    assert await posts_of(a, "alice") == []


async def test_a_post_without_csrf_token_is_refused_and_nothing_is_stored(site):
    a, alice = site
    page = await alice.post("/posts", {"text": "forged", "visibility": "public"})
    assert page.status == 403
    page = await alice.post("/posts", {"text": "forged", "visibility": "public", "csrf_token": "guessed"})
    assert page.status == 403
    assert await posts_of(a, "alice") == []


async def test_content_warning_and_visibility_are_kept_and_the_warning_hides_the_post(site):
    a, alice = site
    await alice.submit("/home", "/posts", {"text": "spoilers inside", "visibility": "unlisted",
                                           "content_warning": "Film ending", "back": "/home"})
    [(post_id, _, visibility, summary, _, _)] = await posts_of(a, "alice")
    assert (visibility, summary) == ("unlisted", "Film ending")
    page = await alice.get(f"/@alice/{post_id}")
    assert re.search(r"<details><summary>Film ending.*</summary>\s*<p>spoilers inside</p>", page.text)
    assert "Unlisted" in page.text
    local = await alice.get("/local")
    assert "spoilers inside" not in local.text  # unlisted: not on public timelines


async def test_reply_and_like_buttons_create_the_right_rows(site):
    a, alice = site
    bob = await person(a, "bob")
    try:
        original = await posting.create_post(a.ctx, "alice", Draft(text="Question for everyone"))
        thread_path = f"/@alice/{original.id}"
        thread = await bob.get(thread_path)
        assert 'id="reply"' in thread.text and f'name="reply_to" value="{original.id}"' in thread.text
        assert "@alice " in thread.text  # the reply starts by mentioning the author
        page = await bob.submit(thread_path, "/posts", {"text": "@alice an answer", "visibility": "public",
                                                        "reply_to": str(original.id), "back": thread_path})
        assert page.status == 200 and "an answer" in page.text
        [(_, _, _, _, in_reply_to, _)] = await posts_of(a, "bob")
        assert in_reply_to == original.uri

        await bob.submit(thread_path, f"/posts/{original.id}/like", {"back": thread_path})
        assert await a.count("SELECT count(*) FROM likes l JOIN actors x ON x.id = l.actor_id"
                             " WHERE l.post_id = ? AND x.username = 'bob'", (original.id,)) == 1
        liked = await bob.get(thread_path)
        assert "1 like " in liked.text and 'action="/posts/{}/unlike"'.format(original.id) in liked.text
        await bob.submit(thread_path, f"/posts/{original.id}/boost", {"back": thread_path})
        assert await a.count("SELECT count(*) FROM announces WHERE post_id = ?", (original.id,)) == 1

        notes = await alice.get("/notifications")
        for words in ("replied to you", "liked your post", "boosted your post"):
            assert words in notes.text
        assert "an answer" in notes.text
        home = await alice.get("/home")
        assert "Question for everyone" in home.text

        await bob.submit(thread_path, f"/posts/{original.id}/unlike", {"back": thread_path})
        assert await a.count("SELECT count(*) FROM likes WHERE post_id = ?", (original.id,)) == 0
    finally:
        await bob.close()


async def test_boosts_by_followed_people_show_on_home_with_who_boosted(site):
    a, alice = site
    await person(a, "carol")  # wrote the post; alice does not follow her
    bob = await person(a, "bob")
    try:
        post = await posting.create_post(a.ctx, "carol", Draft(text="Worth spreading"))
        await follows.follow(a.ctx, "alice", a.handle("bob"))
        home = await alice.get("/home")
        assert "Worth spreading" not in home.text
        await bob.submit("/local", f"/posts/{post.id}/boost", {"back": "/local"})
        home = await alice.get("/home")
        assert "Worth spreading" in home.text and re.search(r"Boosted by <a href=\"/@bob\">bob</a>", home.text)
    finally:
        await bob.close()


async def test_followers_only_posts_are_hidden_from_people_who_do_not_follow(site):
    a, alice = site
    bob = await person(a, "bob")
    anon = Browser(a.base)
    try:
        secret = await posting.create_post(a.ctx, "alice", Draft(text="Only for my followers", visibility="followers"))
        await posting.create_post(a.ctx, "alice", Draft(text="Open to all"))
        for browser in (anon, bob):
            profile = await browser.get("/@alice")
            assert "Open to all" in profile.text and "Only for my followers" not in profile.text
            assert (await browser.get(f"/@alice/{secret.id}")).status == 404
            assert (await browser.get(f"/posts/{secret.id}")).status == 404
        # Following from the profile page's button shows them.
        await bob.submit("/@alice", "/follow", {"actor_id": str(secret.actor_id), "back": "/@alice"})
        profile = await bob.get("/@alice")
        assert "Only for my followers" in profile.text and "Unfollow" in profile.text
        assert (await bob.get(f"/@alice/{secret.id}")).status == 200
        assert "Only for my followers" in (await bob.get("/home")).text
        assert "Only for my followers" in (await alice.get("/@alice")).text
    finally:
        await bob.close()
        await anon.close()


async def test_direct_posts_are_seen_only_by_the_people_mentioned(site):
    a, alice = site
    bob, carol = await person(a, "bob"), await person(a, "carol")
    try:
        await follows.follow(a.ctx, "bob", a.handle("alice"))
        await follows.follow(a.ctx, "carol", a.handle("alice"))
        await alice.submit("/home", "/posts", {"text": "@bob just between us", "visibility": "direct", "back": "/home"})
        [(post_id, *_)] = await posts_of(a, "alice")
        assert "just between us" in (await bob.get("/home")).text
        assert "just between us" not in (await carol.get("/home")).text
        assert (await carol.get(f"/@alice/{post_id}")).status == 404
        assert "just between us" in (await bob.get("/notifications")).text
    finally:
        await bob.close()
        await carol.close()


async def test_paging_links_lead_to_older_posts_on_every_list(site):
    a, alice = site
    for number in range(25):
        await posting.create_post(a.ctx, "alice", Draft(text=f"numbered post {number:02d} #count"))
    for path in ("/home", "/local", "/@alice", "/tags/count"):
        first = await alice.get(path)
        assert "numbered post 24" in first.text and "numbered post 04" not in first.text, path
        older = first.link_with_text("Older posts")
        assert older.startswith(f"{path}?max_id="), older
        second = await alice.get(older)
        assert "numbered post 04" in second.text and "numbered post 00" in second.text, path
        assert "numbered post 24" not in second.text and "Older posts" not in second.text, path
        assert second.link_with_text("Newest") == path


async def test_notifications_page_pages_too(site):
    a, alice = site
    await accounts.create_account(a.ctx, "bob")
    for number in range(22):
        post = await posting.create_post(a.ctx, "alice", Draft(text=f"liked post {number:02d}"))
        await interactions.like(a.ctx, "bob", post.uri)
    first = await alice.get("/notifications")
    assert "liked post 21" in first.text and "liked post 00" not in first.text
    second = await alice.get(first.link_with_text("Older notifications"))
    assert "liked post 00" in second.text and "liked post 21" not in second.text


async def test_edit_and_delete_own_posts_with_a_confirmation_step(site):
    a, alice = site
    post = await posting.create_post(a.ctx, "alice", Draft(text="Frist post"))
    form = await alice.get(f"/posts/{post.id}/edit")
    assert ">Frist post</textarea>" in form.text
    page = await alice.submit(f"/posts/{post.id}/edit", f"/posts/{post.id}/edit",
                              {"text": "First post", "content_warning": ""})
    assert page.status == 200 and "First post" in page.text and "edited" in page.text
    confirm = await alice.get(f"/posts/{post.id}/delete")
    assert "Delete this post?" in confirm.text and "First post" in confirm.text
    assert await posts_of(a, "alice") != []  # looking at the confirmation deletes nothing
    page = await alice.submit(f"/posts/{post.id}/delete", f"/posts/{post.id}/delete", {})
    assert page.status == 200 and "Your post was deleted." in page.text
    assert await posts_of(a, "alice") == []
    assert (await alice.get(f"/@alice/{post.id}")).status == 410


async def test_others_cannot_edit_or_delete_my_posts(site):
    a, alice = site
    bob = await person(a, "bob")
    try:
        post = await posting.create_post(a.ctx, "alice", Draft(text="Mine"))
        assert (await bob.get(f"/posts/{post.id}/edit")).status == 404
        page = await bob.submit("/home", f"/posts/{post.id}/delete", {})
        assert page.status == 404
        assert len(await posts_of(a, "alice")) == 1
    finally:
        await bob.close()


async def test_corpus_exclusion_is_offered_only_after_consent(site):
    a, alice = site
    home = await alice.get("/home")
    assert "Keep this post out of the AI training corpus" not in home.text
    await consent.set_training_consent(a.ctx, "alice", "allow", license="CC-BY-4.0", scope="future")
    home = await alice.get("/home")
    assert "Keep this post out of the AI training corpus" in home.text
    await alice.submit("/home", "/posts", {"text": "Not this one", "visibility": "public",
                                           "exclude_from_corpus": "1", "back": "/home"})
    await alice.submit("/home", "/posts", {"text": "This one is fine", "visibility": "public", "back": "/home"})
    rows = {text: excluded for _, text, _, _, _, excluded in await posts_of(a, "alice")}
    assert rows == {"Not this one": 1, "This one is fine": 0}
    fine_id = next(pid for pid, text, *_ in await posts_of(a, "alice") if text == "This one is fine")
    await alice.submit("/home", f"/posts/{fine_id}/corpus", {"exclude": "1", "back": "/home"})
    assert {text: excluded for _, text, _, _, _, excluded in await posts_of(a, "alice")}["This one is fine"] == 1
    page = await alice.get("/home")
    assert "Let it into the training corpus" in page.text


async def test_follow_requests_of_a_locked_account_are_approved_from_the_page(site):
    a, alice = site
    dora = await person(a, "dora", locked=True)
    try:
        profile = await alice.get("/@dora")
        assert "Request to follow" in profile.text
        await alice.submit("/@dora", "/follow", {"actor_id": re.search(r'name="actor_id" value="(\d+)"',
                                                                       profile.text).group(1), "back": "/@dora"})
        assert "Cancel follow request" in (await alice.get("/@dora")).text
        requests = await dora.get("/follow_requests")
        assert "alice" in requests.text and "Approve" in requests.text
        assert "asked to follow you" in (await dora.get("/notifications")).text
        alice_id = re.search(r'name="actor_id" value="(\d+)"', requests.text).group(1)
        page = await dora.submit("/follow_requests", "/follow_requests/answer",
                                 {"actor_id": alice_id, "decision": "approve"})
        assert "alice follows you now." in page.text and "No one is waiting." in page.text
        assert "Unfollow" in (await alice.get("/@dora")).text
    finally:
        await dora.close()


async def test_profile_page_links_the_actor_and_carries_opengraph_and_rel_me(site):
    a, alice = site
    await profile.update_profile(a.ctx, "alice", display_name="Alice <A.>", bio="Gardener. https://alice.example",
                                 locked=False)
    anon = Browser(a.base)
    page = await anon.get("/@alice")
    await anon.close()
    assert f'<link rel="alternate" type="application/activity+json" href="{a.actor_uri("alice")}">' in page.text
    assert '<meta property="og:type" content="profile">' in page.text
    assert f'<meta property="og:url" content="{a.base}/@alice">' in page.text
    assert '<meta property="og:title" content="Alice &lt;A.&gt; (@alice@' in page.text
    assert '<meta property="og:description" content="Gardener. https://alice.example">' in page.text
    assert re.search(r'<a href="https://alice.example"[^>]* rel="me nofollow noopener noreferrer"', page.text)
    assert "<h1 id=\"profile-name\">Alice &lt;A.&gt;</h1>" in page.text


async def test_unknown_pages_answer_404(site):
    _, alice = site
    for path in ("/@nobody", "/@alice/123", "/@alice/abc", "/posts/999", "/remote/999", "/tags/no%20spaces"):
        assert (await alice.get(path)).status == 404, path


class FormAudit(HTMLParser):
    """Collects what a screen-reader user and the CSRF check depend on: ids, labels, form fields."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: list[str] = []
        self.label_for: set[str] = set()
        self.fields: list[str] = []
        self.forms: list[dict] = []
        self.landmarks: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.append(a["id"])
        if tag in ("main", "nav", "header", "footer"):
            self.landmarks.add(tag)
        if tag == "label" and a.get("for"):
            self.label_for.add(a["for"])
        if tag == "form":
            self.forms.append({"method": (a.get("method") or "get").lower(), "csrf": False})
        if tag == "input" and a.get("name") == "csrf_token" and self.forms:
            self.forms[-1]["csrf"] = True
        if tag in ("textarea", "select") or (tag == "input" and a.get("type") not in ("hidden", "submit")):
            self.fields.append(a.get("id") or f"<{tag} name={a.get('name')}> without id")


async def test_pages_have_unique_ids_labelled_fields_landmarks_and_csrf_on_every_post_form(site):
    a, alice = site
    post = await posting.create_post(a.ctx, "alice", Draft(text="Audit me #audit"))
    await consent.set_training_consent(a.ctx, "alice", "allow", license="CC-BY-4.0", scope="future")
    for path in ("/home", "/local", "/@alice", f"/@alice/{post.id}", "/tags/audit", "/notifications", "/search",
                 "/follow_requests", f"/posts/{post.id}/edit", f"/posts/{post.id}/delete", "/"):
        page = await alice.get(path)
        assert page.status == 200, path
        audit = FormAudit()
        audit.feed(page.text)
        assert len(audit.ids) == len(set(audit.ids)), (path, sorted(audit.ids))
        assert {"main", "nav", "header"} <= audit.landmarks, path
        assert all(field in audit.label_for for field in audit.fields), (path, audit.fields, audit.label_for)
        assert all(form["csrf"] for form in audit.forms if form["method"] == "post"), path
