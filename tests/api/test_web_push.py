"""Web Push as a phone gets it: an app subscribes with Mastodon.py (or a JSON body, as masto.js
sends), another server's people like and answer, and a real push service on loopback checks each
push's VAPID signature against the instance's key and decrypts it with the subscriber's private
key, so these tests read what the phone would show."""
from __future__ import annotations

import time
from typing import Iterator

import pytest
import requests
from mastodon import Mastodon
from playwright.sync_api import Page

from tests.api.conftest import PASSWORD
from tests.api.entities import assert_entity
from tests.api.oauth_flow import OOB, SCOPES, api, approve, new_app, user_token
from tests.api.push_service import PushService, Subscriber
from tests.e2e.processes import ProcessGroup, ServerProcess, serving_with_users, wait_for

PUSH_TIMEOUT = 6.0
# Two attempts: a retry after a back-off, then the push is dropped. Each attempt at the hanging
# service waits out PUSH_TIMEOUT, so every further attempt made the slow-service test 6 s longer.
MAX_ATTEMPTS = 2


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """`here` (alice, bob) pushes to apps; `there` (carol) likes and answers."""
    group = ProcessGroup(tmp_path_factory.mktemp("api-push"))
    # Pushes to the loopback push service are allowed only because these instances switch on
    # allow_private_addresses (ServerProcess.init), as tests must.
    here = group("here", push_timeout_seconds=PUSH_TIMEOUT, push_max_attempts=MAX_ATTEMPTS)
    there = group("there")
    with serving_with_users(group, PASSWORD, [(here, ("alice", "bob")), (there, ("carol",))]):
        yield here, there


@pytest.fixture(scope="module")
def pushes(pair) -> Iterator[PushService]:
    here, _ = pair
    service = PushService().start()
    service.vapid_key = requests.get(f"{here.base}/api/v2/instance", timeout=10).json()[
        "configuration"]["vapid"]["public_key"]
    try:
        yield service
    finally:
        service.close()


@pytest.fixture(scope="module")
def carol_follows_alice(pair) -> None:
    here, there = pair
    there.run("follow", "carol", here.handle("alice"), check=True)
    wait_for(lambda: there.value("SELECT state FROM follows f JOIN actors a ON a.id = f.followee_id"
                                 " WHERE a.username = 'alice'") == "accepted", what="alice's server to accept",
             timeout=30)


def _app_for(page: Page, server: ServerProcess, username: str) -> tuple[Mastodon, str]:
    """A new app and its token for username (signed in afresh: the page may hold someone else)."""
    page.context.clear_cookies()
    client_id, client_secret = new_app(server)
    app = Mastodon(client_id=client_id, client_secret=client_secret, api_base_url=server.base)
    code = approve(page, app.auth_request_url(redirect_uris=OOB, scopes=SCOPES, allow_http=True), username=username)
    token = app.log_in(code=code, redirect_uri=OOB, scopes=SCOPES, allow_http=True)
    return app, token


def _token_for(page: Page, server: ServerProcess, username: str, **kw) -> str:
    page.context.clear_cookies()
    return user_token(server, page, username=username, **kw)


def _all_events(**overrides: bool) -> dict[str, bool]:
    events = dict(follow_events=True, favourite_events=True, reblog_events=True, mention_events=True,
                  poll_events=True, follow_request_events=True, status_events=True, update_events=True)
    events.update(overrides)
    return events


def _subscribe_json(server: ServerProcess, token: str, pushes: PushService, sub: Subscriber, *,
                    standard: bool = True, policy: str = "all") -> requests.Response:
    """As masto.js sends it: a JSON body, keys in base64url, `standard` for RFC 8291."""
    return api(server, token, "POST", "/api/v1/push/subscription", json={
        "subscription": {"endpoint": pushes.endpoint(sub.name), "standard": standard,
                         "keys": {"p256dh": sub.public_key_b64.replace("+", "-").replace("/", "_").rstrip("="),
                                  "auth": sub.auth_b64url}},
        "data": {"policy": policy, "alerts": {"mention": True, "favourite": True, "follow": True}}})


def _post_there(server: ServerProcess, there: ServerProcess, app: Mastodon, text: str) -> str:
    """alice posts; returns the post's id on carol's server once it has arrived there."""
    app.status_post(text)
    return wait_for(lambda: there.value("SELECT uri FROM posts WHERE content_text LIKE ?", (f"%{text}%",)),
                    what="alice's post on carol's server", timeout=30)


def _queue_empty(server: ServerProcess) -> bool:
    return server.value("SELECT count(*) FROM push_deliveries") == 0


def test_a_like_and_a_reply_from_another_server_arrive_as_encrypted_pushes(page: Page, pair, pushes,
                                                                            carol_follows_alice):
    here, there = pair
    app, token = _app_for(page, here, "alice")
    phone = pushes.subscriber("alice-phone")
    vapid_key = app.app_verify_credentials()["vapid_key"]
    assert vapid_key == pushes.vapid_key and len(vapid_key) > 80

    subscription = app.push_subscription_set(pushes.endpoint(phone.name),
                                             {"pubkey": phone.public_key_raw, "auth": phone.auth}, **_all_events())
    raw = api(here, token, "GET", "/api/v1/push/subscription").json()
    assert_entity("WebPushSubscription", raw)
    assert raw["id"] == str(subscription.id) and raw["endpoint"] == pushes.endpoint(phone.name)
    assert raw["server_key"] == vapid_key and raw["policy"] == "all" and raw["standard"] is False
    assert raw["alerts"] == {"mention": True, "status": True, "reblog": True, "follow": True, "follow_request": True,
                             "favourite": True, "poll": True, "update": True, "admin.sign_up": False,
                             "admin.report": False}

    likes_before = len(app.notifications(types=["favourite"]))
    post_there = _post_there(here, there, app, "a post carol will like and answer")
    there.run("like", "carol", post_there, check=True)
    there.run("post", "carol", f"@alice@{here.domain} nice one", "--reply-to", post_there, check=True)
    received = wait_for(lambda: pushes.received(phone.name) if len(pushes.received(phone.name)) >= 2 else None,
                        what="two pushes on alice's phone", timeout=30)
    assert phone.rejected == []
    by_type = {push["notification_type"]: push for push in received}
    assert set(by_type) == {"favourite", "mention"}
    like, reply = by_type["favourite"], by_type["mention"]
    assert like["title"] == "carol favorited your post"
    assert like["body"] == "a post carol will like and answer"
    assert reply["title"] == "You were mentioned by carol" and "nice one" in reply["body"]
    notifications = {n.type: n for n in app.notifications(types=["favourite", "mention"])}
    for push in (like, reply):
        # What an app does with a push: match its account by token, fetch the notification by id.
        assert push["access_token"] == token and push["preferred_locale"] == "en"
        assert str(push["notification_id"]) == str(notifications[push["notification_type"]].id)
        assert push["icon"].startswith(here.base + "/")
        # Mastodon.py (like apps before Mastodon 4.4) did not ask for `standard`: the legacy aesgcm
        # encoding with Crypto-Key and Encryption headers and a WebPush JWT, which is what they decrypt.
        headers = push["_headers"]
        assert headers["Content-Encoding"] == "aesgcm" and headers["Authorization"].startswith("WebPush ")
        assert headers["TTL"] == "172800" and headers["Urgency"] == "normal"

    # Favourites switched off: the next like is not pushed, the next reply is.
    updated = app.push_subscription_update(**_all_events(favourite_events=False))
    assert updated.alerts["favourite"] is False and updated.alerts["mention"] is True
    second = _post_there(here, there, app, "a second post to like")
    there.run("like", "carol", second, check=True)
    there.run("post", "carol", f"@alice@{here.domain} and an answer", "--reply-to", second, check=True)
    wait_for(lambda: len(pushes.received(phone.name)) >= 3, what="the second reply's push", timeout=30)
    wait_for(lambda: len(app.notifications(types=["favourite"])) == likes_before + 2, what="the second like",
             timeout=30)
    wait_for(lambda: _queue_empty(here), what="the push queue to empty", timeout=15)
    assert [p["notification_type"] for p in pushes.received(phone.name)[2:]] == ["mention"]


def test_the_followed_policy_pushes_only_what_followed_accounts_do(page: Page, pair, pushes, carol_follows_alice):
    here, there = pair
    app, token = _app_for(page, here, "alice")
    phone = pushes.subscriber("alice-tablet")
    response = _subscribe_json(here, token, pushes, phone, policy="followed")
    assert response.status_code == 200, response.text
    assert response.json()["standard"] is True and response.json()["policy"] == "followed"
    before = len(app.notifications(types=["favourite"]))
    first = _post_there(here, there, app, "liked by someone alice does not follow")
    there.run("like", "carol", first, check=True)
    wait_for(lambda: len(app.notifications(types=["favourite"])) == before + 1, what="the like", timeout=30)
    wait_for(lambda: _queue_empty(here), what="the push queue to empty", timeout=15)
    assert pushes.received(phone.name) == []

    carol = app.search_v2(f"@carol@{there.domain}", resolve=True, result_type="accounts").accounts[0]
    app.account_follow(carol.id)
    wait_for(lambda: app.account_relationships([carol.id])[0].following, what="carol's server to accept",
             timeout=30)
    second = _post_there(here, there, app, "liked by someone alice follows")
    there.run("like", "carol", second, check=True)
    received = wait_for(lambda: pushes.received(phone.name), what="the push of the followed account's like",
                        timeout=30)
    assert [(p["notification_type"], p["body"]) for p in received] == [("favourite", "liked by someone alice follows")]
    # `standard`: RFC 8291 aes128gcm and an RFC 8292 `vapid t=..., k=...` header.
    headers = received[0]["_headers"]
    assert headers["Content-Encoding"] == "aes128gcm" and headers["Authorization"].startswith("vapid t=")
    assert phone.rejected == []
    app.account_unfollow(carol.id)


def test_a_410_from_the_push_service_removes_the_subscription(page: Page, pair, pushes):
    here, _ = pair
    alice_token = _token_for(page, here, "alice")
    bob_app, bob_token = _app_for(page, here, "bob")
    gone = pushes.subscriber("bob-old-phone", behaviour="gone")
    assert _subscribe_json(here, bob_token, pushes, gone).status_code == 200
    post = bob_app.status_post("bob's post")
    assert api(here, alice_token, "POST", f"/api/v1/statuses/{post.id}/favourite").status_code == 200
    wait_for(lambda: api(here, bob_token, "GET", "/api/v1/push/subscription").status_code == 404,
             what="the subscription to be removed", timeout=15)
    assert len(pushes.requests_to(gone.name)) == 1
    assert here.value("SELECT count(*) FROM push_subscriptions s JOIN push_deliveries d"
                      " ON d.subscription_id = s.id") == 0


def test_a_slow_or_failing_push_service_holds_up_nothing_else(page: Page, pair, pushes):
    here, _ = pair
    # bob on three devices (three apps): one push service hangs, one fails, one works.
    alice_token = _token_for(page, here, "alice")
    bob_app, slow_token = _app_for(page, here, "bob")
    fail_token = user_token(here, page, username="bob", signed_in=True)
    ok_token = user_token(here, page, username="bob", signed_in=True)
    slow = pushes.subscriber("bob-slow", behaviour="slow")
    failing = pushes.subscriber("bob-failing", behaviour="fail")
    working = pushes.subscriber("bob-working")
    for token, sub in ((slow_token, slow), (fail_token, failing), (ok_token, working)):
        assert _subscribe_json(here, token, pushes, sub).status_code == 200
    posts = [bob_app.status_post(f"bob's post {n}") for n in range(3)]
    started = time.monotonic()
    for post in posts:
        assert api(here, alice_token, "POST", f"/api/v1/statuses/{post.id}/favourite").status_code == 200
    wait_for(lambda: len(pushes.received(working.name)) == 3, what="the working phone's pushes", timeout=15)
    took = time.monotonic() - started
    # The slow service holds each of its pushes for PUSH_TIMEOUT seconds; the working phone's
    # pushes do not wait for that, and the API stays quick meanwhile.
    assert took < PUSH_TIMEOUT / 2, took
    assert len(pushes.requests_to(slow.name)) >= 1
    probe = time.monotonic()
    assert api(here, alice_token, "GET", "/api/v1/timelines/home").status_code == 200
    assert time.monotonic() - probe < 1.0
    # The failing service is tried MAX_ATTEMPTS times per push (with back-off), then the push is dropped.
    wait_for(lambda: len(pushes.requests_to(failing.name)) == 3 * MAX_ATTEMPTS, what="retries to the failing service",
             timeout=30)
    wait_for(lambda: _queue_empty(here), what="failed and timed-out pushes dropped",
             timeout=PUSH_TIMEOUT * MAX_ATTEMPTS + 20)
    assert len(pushes.requests_to(failing.name)) == 3 * MAX_ATTEMPTS
    # Failing is not gone: the subscription stays.
    assert api(here, fail_token, "GET", "/api/v1/push/subscription").status_code == 200


def test_subscriptions_need_the_push_scope_and_end_with_their_token(page: Page, pair, pushes):
    here, _ = pair
    read_only = _token_for(page, here, "bob", scope="read write", app_scopes=SCOPES)
    phone = pushes.subscriber("bob-no-scope")
    assert _subscribe_json(here, read_only, pushes, phone).status_code == 403
    assert api(here, read_only, "GET", "/api/v1/push/subscription").status_code == 403
    assert api(here, None, "GET", "/api/v1/push/subscription").status_code == 401

    client_id, client_secret = new_app(here)
    code = approve(page, f"{here.base}/oauth/authorize?client_id={client_id}&redirect_uri={OOB}"
                         "&response_type=code&scope=read+push")
    token = requests.post(f"{here.base}/oauth/token", timeout=10, data={
        "grant_type": "authorization_code", "client_id": client_id, "client_secret": client_secret, "code": code,
        "redirect_uri": OOB}).json()["access_token"]
    assert api(here, token, "GET", "/api/v1/push/subscription").status_code == 404
    bad_key = api(here, token, "POST", "/api/v1/push/subscription", data={
        "subscription[endpoint]": pushes.endpoint(phone.name), "subscription[keys][p256dh]": "bm90IGEga2V5",
        "subscription[keys][auth]": phone.auth_b64url})
    assert bad_key.status_code == 422 and "p256dh" in bad_key.json()["error"]
    not_web = api(here, token, "POST", "/api/v1/push/subscription", data={
        "subscription[endpoint]": "ftp://127.0.0.1/push", "subscription[keys][p256dh]": phone.public_key_b64,
        "subscription[keys][auth]": phone.auth_b64url})
    assert not_web.status_code == 422
    assert _subscribe_json(here, token, pushes, phone).status_code == 200
    changed = api(here, token, "PUT", "/api/v1/push/subscription", data={"data[policy]": "follower",
                                                                         "data[alerts][follow]": "false"})
    assert changed.json()["policy"] == "follower" and changed.json()["alerts"]["follow"] is False
    assert changed.json()["alerts"]["mention"] is True
    assert here.value("SELECT count(*) FROM push_subscriptions WHERE endpoint = ?", (pushes.endpoint(phone.name),)) == 1

    # Revoking the token ends its subscription.
    assert requests.post(f"{here.base}/oauth/revoke", timeout=10, data={
        "client_id": client_id, "client_secret": client_secret, "token": token}).status_code == 200
    assert here.value("SELECT count(*) FROM push_subscriptions WHERE endpoint = ?", (pushes.endpoint(phone.name),)) == 0
    assert api(here, token, "GET", "/api/v1/push/subscription").status_code == 401


def test_with_production_defaults_a_private_push_endpoint_is_refused(page: Page, tmp_path, pushes):
    group = ProcessGroup(tmp_path)
    # The default: no requests to loopback or private addresses (SSRF), pushes included.
    strict = group("strict", allow_private_addresses=False)
    secret = strict.directory / "password.txt"
    secret.write_text(PASSWORD, encoding="utf-8")
    strict.run("user", "create", "erin", "--password-file", str(secret), check=True)
    try:
        strict.start()
        token = _token_for(page, strict, "erin")
        phone = pushes.subscriber("erin-phone")
        refused = _subscribe_json(strict, token, pushes, phone)
        assert refused.status_code == 422 and "not allowed" in refused.json()["error"], refused.text
        for endpoint in ("http://localhost/push", "http://[::1]:8080/push", "http://10.0.0.8/push",
                         "http://2130706433/push"):
            response = api(strict, token, "POST", "/api/v1/push/subscription", data={
                "subscription[endpoint]": endpoint, "subscription[keys][p256dh]": phone.public_key_b64,
                "subscription[keys][auth]": phone.auth_b64url})
            assert response.status_code == 422, (endpoint, response.text)
        assert strict.value("SELECT count(*) FROM push_subscriptions") == 0
    finally:
        group.close()


def test_a_push_queued_while_the_server_is_down_is_sent_when_it_is_back_with_the_same_key(page: Page, pair,
                                                                                            pushes):
    here, _ = pair
    bob_app, bob_token = _app_for(page, here, "bob")
    phone = pushes.subscriber("bob-durable")
    assert _subscribe_json(here, bob_token, pushes, phone).status_code == 200
    post = bob_app.status_post("liked while the server is down")
    here.kill()
    # Another process (the CLI) makes the notification: its push is queued with it, in the database.
    here.run("like", "alice", post.uri, check=True)
    assert here.value("SELECT count(*) FROM push_deliveries d JOIN push_subscriptions s ON s.id = d.subscription_id"
                      " WHERE s.endpoint = ?", (pushes.endpoint(phone.name),)) == 1
    here.start()
    received = wait_for(lambda: pushes.received(phone.name), what="the queued push", timeout=20)
    assert [(p["notification_type"], p["body"]) for p in received] == [("favourite", "liked while the server is down")]
    # Signed with the key made on first start (the push service checked it against that one).
    assert phone.rejected == []
    assert requests.get(f"{here.base}/api/v2/instance", timeout=10).json()[
        "configuration"]["vapid"]["public_key"] == pushes.vapid_key
