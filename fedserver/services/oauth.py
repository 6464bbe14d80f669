"""OAuth 2 as Mastodon speaks it: registering apps, authorization codes (with PKCE S256), access
tokens (authorization_code and client_credentials grants), revoking them, and finding who a bearer
token acts for. Codes, tokens and client secrets are random 256-bit strings stored as SHA-256."""
from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from fedserver.clock import iso_from_epoch
from fedserver.context import Context
from fedserver.services import events
from fedserver.services import scopes as scope_rules
from fedserver.store import actors as actor_store
from fedserver.store import oauth as oauth_store
from fedserver.store.actors import Actor, LocalAccount
from fedserver.store.oauth import AuthorizedApp, OAuthApp

log = logging.getLogger(__name__)

OOB_URI = "urn:ietf:wg:oauth:2.0:oob"
# Mastodon (Doorkeeper) keeps codes for 10 minutes; a person reads and pastes an oob code in that time.
CODE_LIFETIME_SECONDS = 600
# last_used_at is written at most this often per token: one write a minute, not one per request.
TOUCH_EVERY_SECONDS = 60
MAX_APP_NAME = 200
MAX_URI = 2000
MAX_REDIRECT_URIS = 10
_PKCE_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
_PKCE_CHALLENGE = re.compile(r"^[A-Za-z0-9\-_]{43}$")


class OAuthError(Exception):
    """An OAuth request that cannot be granted; `error` is the RFC 6749 error code."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


class AppRegistrationError(ValueError):
    """POST /api/v1/apps with parameters that cannot make an app (answered with 422)."""


def secret_hash(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class RegisteredApp:
    app: OAuthApp
    client_secret: str  # shown once, never stored


@dataclass(frozen=True)
class AuthorizationRequest:
    """A checked /oauth/authorize request: what the person is asked to grant."""
    app: OAuthApp
    redirect_uri: str
    scopes: tuple[str, ...]
    code_challenge: str | None

    @property
    def is_oob(self) -> bool:
        return self.redirect_uri == OOB_URI


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    scopes: tuple[str, ...]
    created_at: int


@dataclass(frozen=True)
class Caller:
    """Who a bearer token acts for: the app, and the person unless it is an app-only token."""
    app: OAuthApp
    scopes: frozenset[str]       # expanded: top-level scopes include their granular ones
    granted: tuple[str, ...]     # as granted, for display
    actor: Actor | None
    account: LocalAccount | None


def _valid_redirect_uri(uri: str) -> bool:
    if uri == OOB_URI:
        return True
    if len(uri) > MAX_URI or any(c.isspace() for c in uri) or "#" in uri:
        return False
    parts = urlsplit(uri)
    # Custom schemes are how phone apps get the code back (com.tapbots.Ivory.NNNN:/request_token,
    # oauth2redirect://..., icecubesapp://); only the scheme is required, and javascript:/data:
    # URIs are never a place to send a code.
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.\-]*", parts.scheme or ""):
        return False
    if parts.scheme.lower() in ("javascript", "data", "vbscript", "file"):
        return False
    if parts.scheme.lower() in ("http", "https") and not parts.netloc:
        return False
    return True


async def register_app(ctx: Context, *, name: str, redirect_uris: list[str], scopes: str | None,
                       website: str | None) -> RegisteredApp:
    name = name.strip()
    if not name:
        raise AppRegistrationError("client_name can't be blank")
    if len(name) > MAX_APP_NAME:
        raise AppRegistrationError(f"client_name is too long (at most {MAX_APP_NAME} characters)")
    uris = [uri.strip() for uri in redirect_uris if uri.strip()]
    if not uris:
        raise AppRegistrationError("redirect_uris can't be blank")
    if len(uris) > MAX_REDIRECT_URIS:
        raise AppRegistrationError(f"at most {MAX_REDIRECT_URIS} redirect_uris")
    bad = [uri for uri in uris if not _valid_redirect_uri(uri)]
    if bad:
        raise AppRegistrationError(f"redirect_uris must be absolute URIs: {bad[0][:100]!r} is not")
    try:
        granted = scope_rules.parse(scopes) if (scopes or "").strip() else ()
    except scope_rules.ScopeError as exc:
        raise AppRegistrationError(str(exc)) from None
    website = (website or "").strip() or None
    if website is not None and (len(website) > MAX_URI or urlsplit(website).scheme not in ("http", "https")
                                or not urlsplit(website).netloc):
        raise AppRegistrationError("website must be an http(s) URL")
    client_id, client_secret = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    async with ctx.db.transaction() as tx:
        app_id = await oauth_store.insert_app(tx, client_id=client_id, client_secret_hash=secret_hash(client_secret),
                                              name=name, website=website, redirect_uris=list(dict.fromkeys(uris)),
                                              scopes=" ".join(granted), now=ctx.clock.now_iso())
        app = await oauth_store.get_app(tx, app_id)
    assert app is not None
    log.info("registered OAuth app %d (%r)", app.id, name)
    return RegisteredApp(app=app, client_secret=client_secret)


async def app_for_client(ctx: Context, client_id: str) -> OAuthApp | None:
    return await oauth_store.get_app_by_client_id(ctx.db.reader, client_id) if client_id else None


async def authenticate_client(ctx: Context, client_id: str, client_secret: str) -> OAuthApp:
    app = await app_for_client(ctx, client_id)
    if app is None or not client_secret or not hmac.compare_digest(app.client_secret_hash,
                                                                    secret_hash(client_secret)):
        raise OAuthError("invalid_client", "Client authentication failed due to unknown client, no client "
                                           "authentication included, or unsupported authentication method.")
    return app


async def check_app_and_redirect(ctx: Context, client_id: str, redirect_uri: str) -> OAuthApp:
    """The first checks of an authorization request, whose failure must NOT redirect (RFC 6749
    §4.1.2.1): an unknown app, or a redirect URI the app did not register."""
    app = await app_for_client(ctx, client_id)
    if app is None:
        raise OAuthError("invalid_client", "This app is not known here. Register it again and retry.")
    if redirect_uri not in app.redirect_uri_list:
        raise OAuthError("invalid_redirect_uri", "The redirect URI is not one this app registered.")
    return app


def check_grant_request(app: OAuthApp, redirect_uri: str, *, response_type: str, scope: str | None,
                        code_challenge: str | None, code_challenge_method: str | None) -> AuthorizationRequest:
    """The remaining checks; their OAuthError goes back to the app at its redirect URI."""
    if response_type != "code":
        raise OAuthError("unsupported_response_type", "Only response_type=code is supported.")
    requested = _requested_scopes(app, scope)
    challenge = code_challenge or None
    if challenge is not None:
        if (code_challenge_method or "plain") != "S256":
            raise OAuthError("invalid_request", "Only the S256 code challenge method is supported.")
        if not _PKCE_CHALLENGE.match(challenge):
            raise OAuthError("invalid_request", "The code challenge is not a base64url SHA-256 digest.")
    return AuthorizationRequest(app=app, redirect_uri=redirect_uri, scopes=requested, code_challenge=challenge)


def _requested_scopes(app: OAuthApp, scope: str | None) -> tuple[str, ...]:
    """The scopes asked for (the registered ones by default), each registered or implied by a
    registered one. An app that registered none may ask for any: Tusky registered without scopes
    and relied on the authorization request's (Takahē, TK#162)."""
    try:
        requested = scope_rules.parse(scope, default=" ".join(app.registered_scopes))
    except scope_rules.ScopeError as exc:
        raise OAuthError("invalid_scope", str(exc)) from None
    if app.scopes and not scope_rules.within(requested, app.registered_scopes):
        raise OAuthError("invalid_scope", "The requested scope is not one this app registered.")
    return requested


async def issue_code(ctx: Context, request: AuthorizationRequest, actor: Actor) -> str:
    code = secrets.token_urlsafe(32)
    now = ctx.clock.now()
    async with ctx.db.transaction() as tx:
        await oauth_store.insert_code(tx, code_hash=secret_hash(code), app_id=request.app.id, actor_id=actor.id,
                                      redirect_uri=request.redirect_uri, scopes=" ".join(request.scopes),
                                      code_challenge=request.code_challenge, now=iso_from_epoch(now),
                                      expires_at=iso_from_epoch(now + CODE_LIFETIME_SECONDS))
    log.info("%s authorized OAuth app %d for %s", actor.username, request.app.id, " ".join(request.scopes))
    return code


def _pkce_matches(challenge: str, verifier: str) -> bool:
    if not _PKCE_VERIFIER.match(verifier):
        return False
    digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode()
    return hmac.compare_digest(digest, challenge)


async def exchange_code(ctx: Context, app: OAuthApp, *, code: str, redirect_uri: str,
                        code_verifier: str | None) -> IssuedToken:
    """The authorization_code grant. A code works once, within CODE_LIFETIME_SECONDS, for the app
    and redirect URI it was issued to, and with the PKCE verifier when a challenge was sent. A
    replayed code also revokes the tokens it gave (RFC 6749 §4.1.2: it may have been stolen)."""
    invalid = OAuthError("invalid_grant", "The provided authorization grant is invalid, expired, revoked, does "
                                          "not match the redirection URI used in the authorization request, or "
                                          "was issued to another client.")
    hashed = secret_hash(code or "")
    now_iso = ctx.clock.now_iso()
    async with ctx.db.transaction() as tx:
        found = await oauth_store.get_code(tx, hashed)
        if found is None or found.app_id != app.id:
            raise invalid
        replayed = found.used_at is not None
        if replayed:
            # Committed (no raise inside the transaction, which would roll it back).
            revoked = await oauth_store.delete_tokens_of_code(tx, hashed)
            await events.tokens_revoked(ctx, tx, found.actor_id)
            log.warning("OAuth code of app %d replayed; revoked the %d token(s) it gave", app.id, revoked)
    if replayed:
        raise invalid
    async with ctx.db.transaction() as tx:
        found = await oauth_store.get_code(tx, hashed)
        if found is None or found.used_at is not None:
            raise invalid
        if found.expires_at <= now_iso or found.redirect_uri != redirect_uri:
            raise invalid
        if found.code_challenge is not None and not _pkce_matches(found.code_challenge, code_verifier or ""):
            raise invalid
        if not await oauth_store.mark_code_used(tx, hashed, now_iso):
            raise invalid
        return await _new_token(ctx, tx, app, actor_id=found.actor_id, scopes=tuple(found.scopes.split()),
                                code_hash=hashed)


async def client_credentials(ctx: Context, app: OAuthApp, scope: str | None) -> IssuedToken:
    """A token for the app alone (no person): it can call the endpoints that need no account."""
    requested = _requested_scopes(app, scope)
    async with ctx.db.transaction() as tx:
        return await _new_token(ctx, tx, app, actor_id=None, scopes=requested, code_hash=None)


async def _new_token(ctx: Context, tx, app: OAuthApp, *, actor_id: int | None, scopes: tuple[str, ...],
                     code_hash: str | None) -> IssuedToken:
    token = secrets.token_urlsafe(32)
    await oauth_store.insert_token(tx, token_hash=secret_hash(token), app_id=app.id, actor_id=actor_id,
                                   scopes=" ".join(scopes), code_hash=code_hash, now=ctx.clock.now_iso())
    return IssuedToken(access_token=token, scopes=scopes, created_at=int(ctx.clock.now()))


async def revoke(ctx: Context, app: OAuthApp, token: str) -> None:
    """RFC 7009: revoking an unknown (or another app's) token is not an error the caller hears of."""
    async with ctx.db.transaction() as tx:
        row = await oauth_store.get_token(tx, secret_hash(token or ""))
        if await oauth_store.delete_token(tx, secret_hash(token or ""), app.id):
            await events.tokens_revoked(ctx, tx, row.actor_id if row is not None else None)
            log.info("OAuth app %d revoked one of its tokens", app.id)


async def caller_for_token(ctx: Context, token: str) -> Caller | None:
    """Who the bearer token acts for; None for an unknown or revoked token, or one whose person is
    gone (deleted or suspended accounts cannot use their apps)."""
    row = await oauth_store.get_token(ctx.db.reader, secret_hash(token))
    if row is None:
        return None
    app = await oauth_store.get_app(ctx.db.reader, row.app_id)
    if app is None:
        return None
    actor = account = None
    if row.actor_id is not None:
        actor = await actor_store.get_actor(ctx.db.reader, row.actor_id)
        account = await actor_store.get_local_account_by_actor(ctx.db.reader, row.actor_id)
        if actor is None or account is None or actor.is_gone:
            return None
    now = ctx.clock.now()
    if row.last_used_at is None or row.last_used_at < iso_from_epoch(now - TOUCH_EVERY_SECONDS):
        async with ctx.db.transaction() as tx:
            await oauth_store.touch_token(tx, row.id, iso_from_epoch(now))
    granted = tuple(row.scopes.split())
    return Caller(app=app, scopes=scope_rules.expand(granted), granted=granted, actor=actor, account=account)


async def authorized_apps(ctx: Context, actor: Actor) -> list[AuthorizedApp]:
    apps = await oauth_store.list_authorized_apps(ctx.db.reader, actor.id)
    for app in apps:
        app.scopes = " ".join(dict.fromkeys(app.scopes.split()))
    return apps


async def revoke_app_for(ctx: Context, actor: Actor, app_id: int) -> int:
    """Every token this person gave the app stops working at once."""
    async with ctx.db.transaction() as tx:
        count = await oauth_store.delete_tokens_of_app_for(tx, actor.id, app_id)
        await events.tokens_revoked(ctx, tx, actor.id)
    log.info("%s revoked OAuth app %d (%d token(s))", actor.username, app_id, count)
    return count
