"""One function per Mastodon entity: the API's equivalent of templates. Field lists follow
Mastodon 4.2's documented entities (client-api.md §3); non-nullable fields are always present."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from fedserver import __version__
from fedserver.av_media import MAX_SIDE as MAX_AV_SIDE
from fedserver.api.ids import date_text, datetime_text, encode
from fedserver.activitypub.normalize import host_of
from fedserver.config import InstanceSettings
from fedserver.services.directory import AccountView, RelationshipView
from fedserver.services.followed_tags import DayUse
from fedserver.services.keyword_filters import keyword_pattern
from fedserver.services.instance import InstanceInfo
from fedserver.services.notification_groups import NotificationGroup
from fedserver.services.media_cache import cached_path, remote_picture_path
from fedserver.services.post_details import PageDetails
from fedserver.services.push import ALERT_TYPES
from fedserver.services.timelines import Notification, PostCard
from fedserver.store.actors import Actor
from fedserver.store.attachments import Attachment
from fedserver.store.keyword_filters import FilterStatus, Keyword, KeywordFilter
from fedserver.store.lists import AccountList
from fedserver.services.pins import MAX_PINS
from fedserver.services.posting import MAX_DESCRIPTION, MAX_PICTURE_BYTES, MAX_PICTURES, MAX_POST_CHARS
from fedserver.store.oauth import OAuthApp
from fedserver.store.posting_defaults import PostingDefaults
from fedserver.store.push import PushSubscription
from fedserver.store.uploads import Upload
from fedserver.urls import Urls

# client-api.md §1.1: at >= 4.0 Mastodon.py uses the v2 endpoints and Ice Cubes enables editing;
# 4.3 with api_versions.mastodon 2 turns on grouped notifications (/api/v2/notifications) in
# Phanpy and Mastodon.py, which warns at >= 4.3 without api_versions.
# Never a version after a "+": Mastodon.py would read it as Mastodon's.
MASTODON_VERSION = f"4.3.0 (compatible; fedserver {__version__})"
API_VERSIONS = {"mastodon": 2}
IMAGE_TYPES = ["image/jpeg", "image/png", "image/gif", "image/webp"]
PLACEHOLDER_AVATAR = "/static/api/avatar.png"
PLACEHOLDER_HEADER = "/static/api/header.png"
THUMBNAIL = "/static/api/thumbnail.png"
POLL_LIMITS = {"max_options": 4, "max_characters_per_option": 50, "min_expiration": 300,
               "max_expiration": 7 * 86400}


def poll_limits(settings: InstanceSettings) -> dict[str, int]:
    """The instance's poll limits ([instance] poll_*), as apps read them before offering a poll."""
    return {**POLL_LIMITS, "max_options": settings.poll_max_options, "min_expiration": settings.poll_min_expiry_seconds}


def application(app: OAuthApp, *, with_secrets: dict[str, str] | None = None) -> dict[str, Any]:
    uris = app.redirect_uri_list
    out: dict[str, Any] = {"id": encode(app.id), "name": app.name, "website": app.website,
                           "scopes": list(app.registered_scopes), "redirect_uri": "\n".join(uris), "redirect_uris": uris,
                           "vapid_key": ""}
    if with_secrets:
        out.update(with_secrets)
    return out


def _picture_url(url: str | None, is_local: bool, urls: Urls, size: str = "") -> str | None:
    """A profile picture's address on this server, as the web pages show it (web/media_filters.py
    avatar_src/header_src): our own uploads as they are, other servers' through the media cache
    route, so that apps never load pictures from their origin (which would tell it who reads)."""
    if not url or host_of(url) is None:
        return None
    if is_local:
        return url
    return urls.base + remote_picture_path(url, size)


def field(item: dict[str, Any]) -> dict[str, Any]:
    verified = item.get("verified_at")
    return {"name": str(item.get("name") or ""), "value": str(item.get("value") or ""),
            "verified_at": datetime_text(verified) if verified else None}


def avatar_url(actor: Actor, urls: Urls) -> str:
    """The absolute avatar address apps show for an account (also a push message's icon)."""
    return _picture_url(actor.icon_url, actor.is_local, urls, "small") or urls.base + PLACEHOLDER_AVATAR


def account(view: AccountView, urls: Urls) -> dict[str, Any]:
    actor = view.actor
    avatar = avatar_url(actor, urls)
    header = _picture_url(actor.image_url, actor.is_local, urls) or urls.base + PLACEHOLDER_HEADER
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
        "hide_collections": view.hide_collections,
        "emojis": account_emojis(actor, urls),
        "fields": [field(item) for item in actor.fields if isinstance(item, dict)],
        "roles": [],
    }


def account_emojis(actor: Actor, urls: Urls) -> list[dict[str, Any]]:
    """The custom emoji a remote account's display name and bio use, shown through this server's
    media cache (fetched on first view), never from their server. Local accounts have none: this
    server has no custom emoji of its own (/api/v1/custom_emojis is empty)."""
    text = f"{actor.display_name or ''} {actor.summary_html or ''}"
    return [emoji(shortcode, remote_picture_path(url, "small"), urls)
            for shortcode, url in actor.emojis if f":{shortcode}:" in text]


def credential_account(view: AccountView, urls: Urls, *, bio_source: str, follow_requests: int,
                       defaults: PostingDefaults) -> dict[str, Any]:
    out = account(view, urls)
    actor = view.actor
    out["source"] = {"privacy": VISIBILITY_OUT.get(defaults.visibility, "public"), "sensitive": defaults.sensitive,
                     "language": defaults.language, "note": bio_source,
                     # The fields as typed (their `source`), for the app's edit form.
                     "fields": [{**field(item), "value": str(item.get("source", item.get("value")) or "")}
                                for item in actor.fields if isinstance(item, dict)], "follow_requests_count": follow_requests, "indexable": bool(actor.indexable),
                     "hide_collections": view.hide_collections, "discoverable": bool(actor.discoverable)}
    return out


def relationship(view: RelationshipView) -> dict[str, Any]:
    return {"id": encode(view.target_id), "following": view.following, "showing_reblogs": view.following,
            "notifying": False, "languages": None, "followed_by": view.followed_by, "blocking": view.blocking,
            "blocked_by": view.blocked_by, "muting": view.muting, "muting_notifications": view.muting,
            "requested": view.requested, "requested_by": view.requested_by, "domain_blocking": False,
            "endorsed": False, "note": ""}


# What apps may offer to upload besides pictures, when the server has ffmpeg (av_media.available):
# the containers and codecs av_media.CONTAINERS takes.
AV_TYPES = ["video/mp4", "video/quicktime", "video/webm", "audio/mpeg", "audio/mp3", "audio/ogg", "audio/mp4",
            "audio/x-m4a", "audio/flac", "audio/webm"]
MAX_FRAME_RATE = 120


def _configuration(urls: Urls, image_matrix_limit: int, video_size_limit: int = 0) -> dict[str, Any]:
    return {
        "accounts": {"max_featured_tags": 0, "max_pinned_statuses": MAX_PINS},
        "statuses": {"max_characters": MAX_POST_CHARS, "max_media_attachments": MAX_PICTURES,
                     "characters_reserved_per_url": 23},
        "media_attachments": {"supported_mime_types": IMAGE_TYPES + (AV_TYPES if video_size_limit else []),
                              "image_size_limit": MAX_PICTURE_BYTES, "image_matrix_limit": image_matrix_limit,
                              "video_size_limit": video_size_limit,
                              "video_frame_rate_limit": MAX_FRAME_RATE if video_size_limit else 0,
                              "video_matrix_limit": (MAX_AV_SIDE * MAX_AV_SIDE) if video_size_limit else 0,
                              "description_limit": MAX_DESCRIPTION},
        "polls": POLL_LIMITS,
    }


def streaming_url(urls: Urls) -> str:
    """Where apps open the streaming API's socket: this server, as Mastodon names it (wss://host)."""
    return ("wss://" + urls.base[len("https://"):] if urls.base.startswith("https://")
            else "ws://" + urls.base[len("http://"):])


def instance_v1(info: InstanceInfo, urls: Urls, *, users: int, statuses: int, domains: int,
                contact: dict[str, Any] | None, approval_required: bool, image_matrix_limit: int,
                video_size_limit: int = 0) -> dict[str, Any]:
    return {
        "uri": urls.domain, "title": info.name, "short_description": info.description,
        "description": info.description, "email": "", "version": MASTODON_VERSION,
        "urls": {"streaming_api": streaming_url(urls)},
        "stats": {"user_count": users, "status_count": statuses, "domain_count": domains},
        "thumbnail": urls.base + THUMBNAIL, "languages": ["en"],
        "registrations": info.registrations != "closed", "approval_required": approval_required,
        "invites_enabled": info.registrations == "invite",
        "configuration": _configuration(urls, image_matrix_limit, video_size_limit), "contact_account": contact,
        "rules": [],
    }


def instance_v2(info: InstanceInfo, urls: Urls, *, active_month: int, contact: dict[str, Any] | None,
                approval_required: bool, image_matrix_limit: int, video_size_limit: int = 0) -> dict[str, Any]:
    configuration = _configuration(urls, image_matrix_limit, video_size_limit)
    configuration["urls"] = {"streaming": streaming_url(urls)}
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
        "contact": {"email": "", "account": contact}, "rules": [], "api_versions": API_VERSIONS,
    }


# --- statuses ------------------------------------------------------------------------------

# fedserver's "followers" is Mastodon's "private".
VISIBILITY_OUT = {"public": "public", "unlisted": "unlisted", "followers": "private", "direct": "direct"}
VISIBILITY_IN = {"public": "public", "unlisted": "unlisted", "private": "followers", "direct": "direct"}
_MEDIA_TYPES = {"image": "image", "video": "video", "audio": "audio"}


def mention(actor: Actor, urls: Urls) -> dict[str, Any]:
    return {"id": encode(actor.id), "username": actor.username,
            "acct": actor.username if actor.is_local else f"{actor.username}@{actor.domain}",
            "url": actor.url or (urls.profile(actor.username) if actor.is_local else actor.uri)}


def _size(width: int | None, height: int | None) -> dict[str, Any]:
    if not (width and height):
        return {}
    return {"width": width, "height": height, "size": f"{width}x{height}", "aspect": width / height}


def _meta(original: dict[str, Any], small: dict[str, Any], focus: tuple[float, float] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if original:
        meta["original"] = original
    if small:
        meta["small"] = small
    if focus is not None:
        meta["focus"] = {"x": focus[0], "y": focus[1]}
    return meta


def media_attachment(post_id: int, attachment: Attachment, urls: Urls) -> dict[str, Any]:
    """Served from this server as the web pages show it (web/media_filters.py picture): our own
    uploads with their thumbnail, remote pictures through the media cache, the origin's address in
    remote_url."""
    # Attachments have no id of their own: the post's id and the position (< 8) make a stable,
    # numeric one that sorts with the post.
    url = preview = attachment.url
    remote_url = None
    original = _size(attachment.width, attachment.height)
    small = original
    blurhash = attachment.blurhash
    if attachment.thumb_url:  # a picture posted here
        preview = attachment.thumb_url
        small = _size(attachment.thumb_width, attachment.thumb_height)
    elif attachment.kind == "image" and attachment.cached is not None:
        cached = attachment.cached
        remote_url = attachment.url
        if cached.thumb_name and cached.file_name:
            url, preview = urls.base + cached_path(cached.file_name), urls.base + cached_path(cached.thumb_name)
            original = _size(cached.width, cached.height) or original
            small = _size(cached.thumb_width, cached.thumb_height)
        else:  # not fetched yet: these addresses fetch it into the cache on first view
            url = urls.base + remote_picture_path(attachment.url)
            preview = urls.base + remote_picture_path(attachment.url, "small")
        blurhash = cached.blurhash or attachment.blurhash  # the cache's own, else the sender's
    elif not attachment.url.startswith(urls.base + "/"):
        remote_url = attachment.url
    if attachment.kind in ("video", "audio"):
        original = _played(original, attachment.duration)
        small = small if attachment.thumb_url else {}
    kind = "gifv" if attachment.looping and attachment.kind == "video" else _MEDIA_TYPES.get(attachment.kind, "unknown")
    return {"id": encode(post_id * 8 + attachment.position), "type": kind,
            "url": url, "preview_url": preview, "remote_url": remote_url, "text_url": None,
            "meta": _meta(original, small), "description": attachment.description, "blurhash": blurhash}


def _played(original: dict[str, Any], duration: float | None, frame_rate: str | None = None) -> dict[str, Any]:
    """meta.original of a video or audio file: its size (video), how long it plays and its frame rate."""
    out = dict(original)
    if duration:
        out["duration"] = duration
    if frame_rate:
        out["frame_rate"] = frame_rate
    return out


def upload(item: Upload, urls: Urls) -> dict[str, Any]:
    """An upload not yet (or already) attached, as POST/GET/PUT /api/v1/media answer it. A video or
    audio file still being processed has no url yet (Mastodon answers null until it is ready)."""
    media = f"{urls.base}/media/"
    original = _size(item.width, item.height)
    if item.kind != "image":
        original = _played(original, item.duration, item.frame_rate)
    return {"id": encode(item.id), "type": item.kind, "url": media + item.file_id if item.state == "ready" else None,
            "preview_url": media + item.thumb_id if item.thumb_id else None, "remote_url": None, "text_url": None,
            "meta": _meta(original, _size(item.thumb_width, item.thumb_height), (item.focus_x, item.focus_y)),
            "description": item.description or None, "blurhash": item.blurhash}


def poll(post_id: int, card: PostCard) -> dict[str, Any] | None:
    found = card.poll
    if found is None:
        return None
    # hide_totals: no counts until the poll has ended (Mastodon answers null).
    hidden = found.hide_totals and card.poll_open
    return {"id": encode(post_id), "expires_at": datetime_text(found.ends_at), "expired": not card.poll_open,
            "multiple": found.multiple, "votes_count": found.total_votes, "voters_count": found.voters,
            "options": [{"title": choice.name, "votes_count": None if hidden else choice.votes}
                        for choice in found.choices],
            "emojis": [], "voted": bool(card.my_votes) or card.own, "own_votes": list(card.my_votes)}


def status(card: PostCard, page: PageDetails, urls: Urls, viewer: Actor | None, *,
           with_text: bool = False) -> dict[str, Any]:
    """A post as a Status; a boost on the home timeline wraps the post in `reblog`."""
    inner = _status(card, page, urls, viewer, with_text=with_text)
    if card.boosted_by is None:
        return inner
    booster = card.boosted_by
    return {**inner, "id": encode(card.sort_id), "uri": f"{booster.uri}#boosts/{card.sort_id}", "url": None,
            "created_at": snowflake_time(card.sort_id), "edited_at": None,
            "account": account(page.accounts[booster.id], urls), "content": "", "text": None, "spoiler_text": "",
            "sensitive": False, "media_attachments": [], "mentions": [], "tags": [], "poll": None,
            "in_reply_to_id": None, "in_reply_to_account_id": None, "reblog": inner,
            "replies_count": 0, "reblogs_count": 0, "favourites_count": 0}


def _status(card: PostCard, page: PageDetails, urls: Urls, viewer: Actor | None, *, with_text: bool) -> dict[str, Any]:
    post = card.post
    details = page.posts[post.id]
    parent = details.parent
    out: dict[str, Any] = {
        "id": encode(post.id), "uri": post.uri, "url": post.url or post.uri,
        "created_at": datetime_text(post.published_at), "edited_at": datetime_text(post.edited_at),
        "account": account(page.accounts[card.author.id], urls),
        "content": post.content_html or "", "visibility": VISIBILITY_OUT.get(post.visibility, "direct"),
        "sensitive": bool(post.sensitive), "spoiler_text": post.summary or "",
        "media_attachments": [media_attachment(post.id, a, urls) for a in card.attachments],
        "application": None,
        "mentions": [mention(actor, urls) for actor in details.mentions],
        "tags": [{"name": tag, "url": urls.tag(tag)} for tag in details.tags],
        "emojis": [emoji(code, src, urls) for code, src in sorted(card.emojis.items())],
        "reblogs_count": card.boosts, "favourites_count": card.likes,
        "replies_count": details.replies,
        "in_reply_to_id": encode(parent.id) if parent is not None else None,
        "in_reply_to_account_id": encode(parent.actor_id) if parent is not None else None,
        "reblog": None, "poll": poll(post.id, card), "card": None, "language": post.language,
        "text": (post.source_text or "") if with_text else None,
        "filtered": [filter_result(found, post, urls) for found in card.filtered],
    }
    if viewer is not None:
        out.update({"favourited": card.liked, "reblogged": card.boosted, "muted": False,
                    "bookmarked": post.id in page.bookmarked, "pinned": card.pinned})
    if card.own and post.is_local:
        # fedserver's extension: the author's "keep this post out of the training corpus".
        out["fedserver"] = {"exclude_from_corpus": bool(post.corpus_excluded)}
    return out


def emoji(shortcode: str, src: str, urls: Urls) -> dict[str, Any]:
    """A custom emoji a remote post used, shown from this server (the media cache)."""
    url = src if src.startswith(("http://", "https://")) else urls.base + src
    return {"shortcode": shortcode, "url": url, "static_url": url, "visible_in_picker": False, "category": None}


# --- filters (v2) --------------------------------------------------------------------------

def filter_keyword(found: KeywordFilter, position: int, keyword: Keyword) -> dict[str, Any]:
    return {"id": encode(keyword_id(found.id, position)), "keyword": keyword.keyword,
            "whole_word": bool(keyword.whole_word)}


def keyword_id(filter_id: int, position: int) -> int:
    # Keywords have no id of their own: the filter's (time-ordered) id and the position (< 64,
    # MAX_KEYWORDS is 50) make a stable numeric one.
    return filter_id * 64 + position


def filter_entity(found: KeywordFilter) -> dict[str, Any]:
    return {"id": encode(found.id), "title": found.title, "context": list(found.contexts),
            "expires_at": datetime_text(found.expires_at) if found.expires_at else None,
            "filter_action": found.action,
            "keywords": [filter_keyword(found, i, kw) for i, kw in enumerate(found.keywords)],
            "statuses": [filter_status(item) for item in found.statuses]}


def filter_status(item: FilterStatus) -> dict[str, Any]:
    return {"id": encode(item.id), "status_id": encode(item.post_id)}


def filter_result(found: KeywordFilter, post: Any, urls: Urls) -> dict[str, Any]:
    """Status.filtered: which filter matched, with which of its keywords or because it names the post."""
    text = f"{post.summary or ''} {post.content_html or ''}"
    matched = [kw.keyword for kw in found.keywords
               if (pattern := keyword_pattern([kw])) is not None and pattern.search(text)]
    named = [encode(post.id)] if any(item.post_id == post.id for item in found.statuses) else None
    return {"filter": filter_entity(found), "keyword_matches": matched or None, "status_matches": named}


# --- lists and tags ------------------------------------------------------------------------

def account_list(found: AccountList) -> dict[str, Any]:
    return {"id": encode(found.id), "title": found.title, "replies_policy": found.replies_policy,
            "exclusive": bool(found.exclusive)}


def tag(name: str, urls: Urls, *, following: bool | None = None, history: list[DayUse] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "url": urls.tag(name), "history": [
        {"day": str(day.day_start), "uses": str(day.uses), "accounts": str(day.accounts)} for day in history or ()]}
    if following is not None:
        out["following"] = following
    return out


def snowflake_time(snowflake: int) -> str:
    """The creation time a time-ordered id carries ((unix ms << 16) | sequence)."""
    millis = snowflake >> 16
    moment = datetime.fromtimestamp(millis / 1000, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis % 1000:03d}Z"


# --- notifications -------------------------------------------------------------------------

# fedserver's notification kinds as Mastodon's standard types; other kinds are not shown to apps
# (Elk shows "MISSING notification.type" for vendor types, elk#2043).
NOTIFICATION_TYPES = {"mention": "mention", "reply": "mention", "like": "favourite", "boost": "reblog",
                      "follow": "follow", "follow_request": "follow_request", "poll": "poll"}


def web_push_subscription(subscription: PushSubscription, server_key: str) -> dict[str, Any]:
    on = subscription.alert_types
    return {"id": encode(subscription.id), "endpoint": subscription.endpoint, "standard": bool(subscription.standard),
            "alerts": {name: name in on for name in ALERT_TYPES}, "policy": subscription.policy,
            "server_key": server_key}


def notification(item: Notification, kind: str, page: PageDetails, urls: Urls, viewer: Actor) -> dict[str, Any]:
    return {"id": encode(item.id), "type": kind, "created_at": datetime_text(item.created_at),
            "group_key": item.group_key or f"ungrouped-{item.id}", "account": account(page.accounts[item.from_actor.id], urls),
            "status": status(item.card, page, urls, viewer) if item.card is not None else None}


def partial_account(view: AccountView, urls: Urls) -> dict[str, Any]:
    """PartialAccountWithAvatar: enough for the avatars of a group's other accounts."""
    full = account(view, urls)
    return {name: full[name] for name in ("id", "acct", "url", "avatar", "avatar_static", "locked", "bot")}


def notification_group(group: NotificationGroup, kind: str) -> dict[str, Any]:
    """NotificationGroup (Mastodon 4.3): page_min_id/page_max_id bound the members on this page."""
    newest = group.newest
    card = newest.card
    return {"group_key": group.key, "notifications_count": len(group.items), "type": kind,
            "most_recent_notification_id": encode(newest.id), "page_min_id": encode(group.items[-1].id),
            "page_max_id": encode(newest.id), "latest_page_notification_at": datetime_text(newest.created_at),
            "sample_account_ids": [encode(actor.id) for actor in group.sample_accounts],
            "status_id": encode(card.post.id) if card is not None else None}
