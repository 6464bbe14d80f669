"""One function per Mastodon entity: the API's equivalent of templates. Field lists follow
Mastodon 4.2's documented entities (client-api.md §3); non-nullable fields are always present."""
from __future__ import annotations

from typing import Any

from fedserver import __version__
from fedserver.api.ids import date_text, datetime_text, encode
from fedserver.services.directory import AccountView, RelationshipView
from fedserver.services.instance import InstanceInfo
from fedserver.services.posting import MAX_DESCRIPTION, MAX_PICTURE_BYTES, MAX_PICTURES, MAX_POST_CHARS
from fedserver.store.oauth import OAuthApp
from fedserver.urls import Urls

# client-api.md §1.1: at >= 4.0 Mastodon.py uses the v2 endpoints and Ice Cubes enables editing;
# below 4.3 and without api_versions, Phanpy stays on v1 notifications and Mastodon.py does not warn.
# Never a version after a "+": Mastodon.py would read it as Mastodon's.
MASTODON_VERSION = f"4.2.0 (compatible; fedserver {__version__})"
IMAGE_TYPES = ["image/jpeg", "image/png", "image/gif", "image/webp"]
PLACEHOLDER_AVATAR = "/static/api/avatar.png"
PLACEHOLDER_HEADER = "/static/api/header.png"
THUMBNAIL = "/static/api/thumbnail.png"
POLL_LIMITS = {"max_options": 4, "max_characters_per_option": 50, "min_expiration": 300,
               "max_expiration": 2_629_746}


def application(app: OAuthApp, *, with_secrets: dict[str, str] | None = None) -> dict[str, Any]:
    uris = app.redirect_uri_list
    out: dict[str, Any] = {"id": encode(app.id), "name": app.name, "website": app.website,
                           "scopes": app.scopes.split(), "redirect_uri": "\n".join(uris), "redirect_uris": uris,
                           "vapid_key": ""}
    if with_secrets:
        out.update(with_secrets)
    return out


def account(view: AccountView, urls: Urls) -> dict[str, Any]:
    actor = view.actor
    avatar = actor.icon_url or urls.base + PLACEHOLDER_AVATAR
    header = urls.base + PLACEHOLDER_HEADER
    return {
        "id": encode(actor.id),
        "username": actor.username,
        "acct": actor.username if actor.is_local else f"{actor.username}@{actor.domain}",
        "display_name": actor.display_name or "",
        "locked": bool(actor.manually_approves_followers),
        "bot": actor.actor_type in ("Service", "Application"),
        "group": actor.actor_type == "Group",
        "discoverable": bool(actor.discoverable),
        "indexable": bool(actor.indexable),
        "noindex": not bool(actor.indexable),
        "created_at": datetime_text(actor.created_at),
        "note": actor.summary_html or "",
        "url": actor.url or (urls.profile(actor.username) if actor.is_local else actor.uri),
        "uri": actor.uri,
        "avatar": avatar,
        "avatar_static": avatar,
        "header": header,
        "header_static": header,
        "followers_count": view.followers_count,
        "following_count": view.following_count,
        "statuses_count": view.statuses_count,
        "last_status_at": date_text(view.last_status_at),
        "hide_collections": False,
        "emojis": [],
        "fields": [],
        "roles": [],
    }


def credential_account(view: AccountView, urls: Urls, *, bio_source: str, follow_requests: int) -> dict[str, Any]:
    out = account(view, urls)
    actor = view.actor
    out["source"] = {"privacy": "public", "sensitive": False, "language": None, "note": bio_source,
                     "fields": [], "follow_requests_count": follow_requests, "indexable": bool(actor.indexable),
                     "hide_collections": False, "discoverable": bool(actor.discoverable)}
    return out


def relationship(view: RelationshipView) -> dict[str, Any]:
    return {"id": encode(view.target_id), "following": view.following, "showing_reblogs": view.following,
            "notifying": False, "languages": None, "followed_by": view.followed_by, "blocking": view.blocking,
            "blocked_by": view.blocked_by, "muting": view.muting, "muting_notifications": view.muting,
            "requested": view.requested, "requested_by": view.requested_by, "domain_blocking": False,
            "endorsed": False, "note": ""}


def _configuration(urls: Urls) -> dict[str, Any]:
    return {
        "accounts": {"max_featured_tags": 0, "max_pinned_statuses": 0},
        "statuses": {"max_characters": MAX_POST_CHARS, "max_media_attachments": MAX_PICTURES,
                     "characters_reserved_per_url": 23},
        "media_attachments": {"supported_mime_types": IMAGE_TYPES, "image_size_limit": MAX_PICTURE_BYTES,
                              "image_matrix_limit": 40_000_000, "video_size_limit": 0,
                              "video_frame_rate_limit": 0, "video_matrix_limit": 0,
                              "description_limit": MAX_DESCRIPTION},
        "polls": POLL_LIMITS,
    }


def instance_v1(info: InstanceInfo, urls: Urls, *, users: int, statuses: int, domains: int,
                contact: dict[str, Any] | None, approval_required: bool) -> dict[str, Any]:
    return {
        "uri": urls.domain, "title": info.name, "short_description": info.description,
        "description": info.description, "email": "", "version": MASTODON_VERSION,
        # No streaming_api: apps poll instead of opening a socket that would fail (§2, streaming).
        "urls": {},
        "stats": {"user_count": users, "status_count": statuses, "domain_count": domains},
        "thumbnail": urls.base + THUMBNAIL, "languages": ["en"],
        "registrations": info.registrations != "closed", "approval_required": approval_required,
        "invites_enabled": info.registrations == "invite",
        "configuration": _configuration(urls), "contact_account": contact, "rules": [],
    }


def instance_v2(info: InstanceInfo, urls: Urls, *, active_month: int, contact: dict[str, Any] | None,
                approval_required: bool) -> dict[str, Any]:
    configuration = _configuration(urls)
    configuration["urls"] = {}
    configuration["translation"] = {"enabled": False}
    configuration["vapid"] = {"public_key": ""}
    configuration["accounts"]["max_display_name_length"] = 100
    return {
        "domain": urls.domain, "title": info.name, "version": MASTODON_VERSION,
        # No public repository address is known to the server; its own address stands in.
        "source_url": urls.base, "description": info.description,
        "usage": {"users": {"active_month": active_month}},
        "thumbnail": {"url": urls.base + THUMBNAIL, "blurhash": None, "versions": {}},
        "icon": [], "languages": ["en"], "configuration": configuration,
        "registrations": {"enabled": info.registrations != "closed", "approval_required": approval_required,
                          "message": None, "url": None},
        "contact": {"email": "", "account": contact}, "rules": [],
    }
