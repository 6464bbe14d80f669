"""Mastodon's OAuth scopes: which exist, which a scope implies, and how they read in plain words
(Mastodon's docs, api/oauth-scopes.md)."""
from __future__ import annotations

READ_SCOPES = ("read:accounts", "read:blocks", "read:bookmarks", "read:favourites", "read:filters",
               "read:follows", "read:lists", "read:mutes", "read:notifications", "read:search",
               "read:statuses")
WRITE_SCOPES = ("write:accounts", "write:blocks", "write:bookmarks", "write:conversations", "write:favourites",
                "write:filters", "write:follows", "write:lists", "write:media", "write:mutes",
                "write:notifications", "write:reports", "write:statuses")
# `follow` (deprecated since Mastodon 3.5) still grants what it always did.
FOLLOW_SCOPES = ("read:blocks", "read:follows", "read:mutes", "write:blocks", "write:follows", "write:mutes")
TOP_LEVEL = ("read", "write", "follow", "push", "profile")
ALL_SCOPES = frozenset((*TOP_LEVEL, *READ_SCOPES, *WRITE_SCOPES))
DEFAULT_SCOPES = "read"

_IMPLIED: dict[str, tuple[str, ...]] = {"read": READ_SCOPES, "write": WRITE_SCOPES, "follow": FOLLOW_SCOPES}

DESCRIPTIONS = {
    "read": "see everything in your account: posts, timelines, notifications, follows, blocks and mutes",
    "write": "change everything in your account: post, delete, like, boost, follow, block and edit your profile",
    "follow": "see and change whom you follow, block and mute",
    "push": "receive your notifications as push messages",
    "profile": "see your profile (name, picture, bio)",
    "read:accounts": "see profiles and your account's details",
    "read:blocks": "see whom you block",
    "read:bookmarks": "see your bookmarks",
    "read:favourites": "see the posts you liked",
    "read:filters": "see your filters",
    "read:follows": "see whom you follow",
    "read:lists": "see your lists",
    "read:mutes": "see whom you mute",
    "read:notifications": "see your notifications",
    "read:search": "search on your behalf",
    "read:statuses": "see posts and your timelines",
    "write:accounts": "change your profile",
    "write:blocks": "block and unblock accounts",
    "write:bookmarks": "bookmark posts",
    "write:conversations": "mute and delete conversations",
    "write:favourites": "like posts",
    "write:filters": "create and change filters",
    "write:follows": "follow and unfollow accounts",
    "write:lists": "create and change lists",
    "write:media": "upload pictures and other media",
    "write:mutes": "mute and unmute accounts",
    "write:notifications": "dismiss your notifications",
    "write:reports": "report accounts and posts",
    "write:statuses": "post, delete, like and boost posts in your name",
}


class ScopeError(ValueError):
    """A scope that does not exist, or one the app did not register."""


def parse(text: str | None, *, default: str = DEFAULT_SCOPES) -> tuple[str, ...]:
    """Space- (or, leniently, plus- and comma-) separated scopes, deduplicated in order; unknown
    scopes raise ScopeError."""
    names = (text or "").replace("+", " ").replace(",", " ").split()
    if not names:
        names = default.split()
    unknown = [name for name in names if name not in ALL_SCOPES]
    if unknown:
        raise ScopeError(f"unknown scope {unknown[0]!r}")
    return tuple(dict.fromkeys(names))


def expand(scopes: tuple[str, ...] | list[str]) -> frozenset[str]:
    """The scopes and everything they imply (a top-level scope grants its granular children)."""
    out = set(scopes)
    for scope in scopes:
        out.update(_IMPLIED.get(scope, ()))
    return frozenset(out)


def satisfies(granted: frozenset[str], required: tuple[str, ...]) -> bool:
    """Does a token holding `granted` (expanded) meet a route's requirement (any one of `required`)?"""
    return any(scope in granted for scope in required)


def within(requested: tuple[str, ...], registered: tuple[str, ...]) -> bool:
    """May an app that registered `registered` ask for `requested`? Each requested scope must be
    registered or implied by a registered one."""
    allowed = expand(registered)
    return all(scope in allowed for scope in requested)


def describe(scopes: tuple[str, ...]) -> list[tuple[str, str]]:
    """(scope, plain words) for the authorization page, leaving out granular scopes a requested
    top-level scope already covers."""
    covered = expand([s for s in scopes if s in _IMPLIED]) - set(_IMPLIED)
    return [(scope, DESCRIPTIONS[scope]) for scope in scopes if scope not in covered or scope in _IMPLIED]
