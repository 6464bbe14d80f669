"""Web Push subscriptions: the rules for creating, changing and removing an access token's
subscription, and the instance's VAPID key pair (made once, on first need, and kept)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Mapping

from fedserver.activitypub.netpolicy import BlockedAddressError, check_url
from fedserver.webpush import WebPushKeyError, check_subscriber_keys, new_vapid_key_pair
from fedserver.context import Context
from fedserver.services.oauth import secret_hash
from fedserver.store import oauth as oauth_store
from fedserver.store import push as push_store
from fedserver.store.actors import Actor, LocalAccount
from fedserver.store.push import PushSubscription, VapidKey

log = logging.getLogger(__name__)

# Mastodon's notification types a subscription can switch on (Web::PushSubscription alerts).
ALERT_TYPES = ("mention", "status", "reblog", "follow", "follow_request", "favourite", "poll", "update",
               "admin.sign_up", "admin.report")
ADMIN_ALERTS = ("admin.sign_up", "admin.report")
POLICIES = ("all", "followed", "follower", "none")
MAX_ENDPOINT_LENGTH = 2048


class PushError(Exception):
    """A subscription request that cannot be honoured; the message says why."""


@dataclass(frozen=True)
class SubscriptionView:
    subscription: PushSubscription
    server_key: str


async def vapid_key(ctx: Context) -> VapidKey:
    """The instance's VAPID key pair, made and stored the first time it is needed. Every process
    reads the same row, so all sign with the key apps were given."""
    cached = ctx.__dict__.get("_vapid_key")
    if cached is not None:
        return cached
    key = await push_store.get_vapid_key(ctx.db.reader)
    if key is None:
        private_pem, public_key = new_vapid_key_pair()
        async with ctx.db.transaction() as tx:
            await push_store.insert_vapid_key(tx, private_key_pem=private_pem, public_key=public_key,
                                              now=ctx.clock.now_iso())
            key = await push_store.get_vapid_key(tx)
        assert key is not None
        log.info("made the instance's VAPID key pair (public key %s)", key.public_key)
    ctx.__dict__["_vapid_key"] = key
    return key


async def public_vapid_key(ctx: Context) -> str:
    return (await vapid_key(ctx)).public_key


def _check_endpoint(ctx: Context, endpoint: str) -> str:
    endpoint = endpoint.strip()
    if not endpoint or len(endpoint) > MAX_ENDPOINT_LENGTH:
        raise PushError("subscription[endpoint] must be an https URL")
    # The same rules as every outbound request (checked again, with DNS, when a push is sent):
    # https only, unless the instance itself runs on plain http (tests, local demos); no private
    # addresses unless allow_private_addresses.
    fed = ctx.settings.federation
    schemes = ("http", "https") if ctx.settings.instance.scheme == "http" else ("https",)
    try:
        check_url(endpoint, fed.allow_private_addresses, schemes)
    except BlockedAddressError as exc:
        raise PushError(f"subscription[endpoint] is not allowed: {exc}") from None
    return endpoint


def _alerts_text(alerts: Mapping[str, bool], account: LocalAccount | None) -> str:
    chosen = [name for name in ALERT_TYPES if alerts.get(name)]
    # Mastodon keeps admin alerts only for people who may see them.
    if account is None or not account.is_admin:
        chosen = [name for name in chosen if name not in ADMIN_ALERTS]
    return " ".join(chosen)


def _check_policy(policy: str | None) -> str:
    policy = (policy or "all").strip()
    if policy not in POLICIES:
        raise PushError(f"policy must be one of {', '.join(POLICIES)}")
    return policy


async def _token_id(ctx: Context, token: str) -> int:
    row = await oauth_store.get_token(ctx.db.reader, secret_hash(token))
    if row is None:  # revoked between authentication and here
        raise PushError("The access token is invalid")
    return row.id


async def subscribe(ctx: Context, *, token: str, actor: Actor, account: LocalAccount | None, endpoint: str,
                    p256dh: str, auth: str, alerts: Mapping[str, bool], policy: str | None,
                    standard: bool) -> SubscriptionView:
    """Create the token's subscription, replacing one it had (Mastodon: one per token)."""
    endpoint = _check_endpoint(ctx, endpoint)
    try:
        check_subscriber_keys(p256dh, auth)
    except WebPushKeyError as exc:
        raise PushError(f"subscription keys are not usable: {exc}") from None
    token_id = await _token_id(ctx, token)
    key = await vapid_key(ctx)
    async with ctx.db.transaction() as tx:
        await push_store.put_subscription(
            tx, token_id=token_id, actor_id=actor.id, access_token=token, endpoint=endpoint,
            key_p256dh=p256dh.strip(), key_auth=auth.strip(), alerts=_alerts_text(alerts, account),
            policy=_check_policy(policy), standard=standard, now=ctx.clock.now_iso())
        subscription = await push_store.get_subscription_of_token(tx, token_id)
    assert subscription is not None
    log.info("%s subscribed token %d to Web Push", actor.username, token_id)
    return SubscriptionView(subscription, key.public_key)


async def subscription_of(ctx: Context, token: str) -> SubscriptionView | None:
    subscription = await push_store.get_subscription_of_token(ctx.db.reader, await _token_id(ctx, token))
    if subscription is None:
        return None
    return SubscriptionView(subscription, (await vapid_key(ctx)).public_key)


async def change(ctx: Context, *, token: str, account: LocalAccount | None, alerts: Mapping[str, bool],
                 policy: str | None) -> SubscriptionView | None:
    """PUT: the alerts and policy change; alerts not named keep their value (Mastodon merges them)."""
    token_id = await _token_id(ctx, token)
    async with ctx.db.transaction() as tx:
        current = await push_store.get_subscription_of_token(tx, token_id)
        if current is None:
            return None
        merged = {name: name in current.alert_types for name in ALERT_TYPES}
        merged.update(alerts)
        await push_store.update_subscription_data(
            tx, token_id, alerts=_alerts_text(merged, account),
            policy=_check_policy(policy) if policy is not None else current.policy, now=ctx.clock.now_iso())
        subscription = await push_store.get_subscription_of_token(tx, token_id)
    assert subscription is not None
    return SubscriptionView(subscription, (await vapid_key(ctx)).public_key)


async def unsubscribe(ctx: Context, token: str) -> None:
    token_id = await _token_id(ctx, token)
    async with ctx.db.transaction() as tx:
        await push_store.delete_subscription_of_token(tx, token_id)
