"""Reading remote actor and key documents into the fields we store, with Mastodon's validity rules."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from fedserver.activitypub.notes import emojis_of
from fedserver.activitypub.normalize import as_list, first_type, host_of, id_of, ids_of, string_or_none
from fedserver.activitypub.vocab import ACTOR_TYPES, MAX_ID_LENGTH, has_as_context


class InvalidActor(ValueError):
    """The document is not an actor we can use (wrong type, no inbox, no usable key...)."""


@dataclass(frozen=True)
class PublicKeyRef:
    key_id: str
    owner: str | None
    pem: str


def is_actor_document(doc: dict[str, Any]) -> bool:
    return any(t in ACTOR_TYPES for t in as_list(doc.get("type")))


def public_keys_of(doc: dict[str, Any]) -> list[PublicKeyRef]:
    """`publicKey` may be one object or a list (bovine publishes a list)."""
    keys = []
    for entry in as_list(doc.get("publicKey")):
        if not isinstance(entry, dict):
            continue
        key_id, pem = entry.get("id"), entry.get("publicKeyPem")
        if isinstance(key_id, str) and isinstance(pem, str) and "PUBLIC KEY" in pem:
            keys.append(PublicKeyRef(key_id=key_id, owner=id_of(entry.get("owner")), pem=pem))
    return keys


def key_document(doc: dict[str, Any]) -> PublicKeyRef | None:
    """A standalone key document (GoToSocial-style key URL) answering a key id."""
    pem, key_id = doc.get("publicKeyPem"), doc.get("id")
    if isinstance(pem, str) and isinstance(key_id, str):
        return PublicKeyRef(key_id=key_id, owner=id_of(doc.get("owner") or doc.get("controller")), pem=pem)
    return None


def _image_url(value: Any) -> tuple[str | None, str | None]:
    for entry in as_list(value):
        if isinstance(entry, str):
            return entry, None
        if isinstance(entry, dict):
            url = entry.get("url")
            if isinstance(url, dict):  # Link object (Mastodon 4.2.8+)
                url = url.get("href")
            if isinstance(url, list) and url:
                url = id_of(url[0]) if isinstance(url[0], dict) else url[0]
            if isinstance(url, str):
                return url, string_or_none(entry.get("mediaType"), 100)
    return None, None


def actor_profile(doc: dict[str, Any], *, key_id: str | None = None) -> dict[str, Any]:
    """Stored columns for a remote actor document; raises InvalidActor when unusable."""
    if not has_as_context(doc):
        raise InvalidActor("actor document lacks the ActivityStreams @context")
    actor_id = doc.get("id")
    if not isinstance(actor_id, str) or host_of(actor_id) is None:
        raise InvalidActor("actor has no http(s) id")
    actor_type = next((t for t in as_list(doc.get("type")) if t in ACTOR_TYPES), None)
    if actor_type is None:
        raise InvalidActor(f"type {first_type(doc)!r} is not an actor type")
    inbox = doc.get("inbox")
    if not isinstance(inbox, str) or host_of(inbox) is None:
        raise InvalidActor("actor has no inbox")
    # A key counts only when its id lives under the actor's own id (actor#main-key, GoToSocial's
    # actor/main-key); otherwise an actor could claim another actor's key id and make our key
    # look-ups return it (key-id squatting). A key id elsewhere on the host is accepted only when the
    # caller resolved it from the key document's owner and checked both directions (key_id given).
    keys = [k for k in public_keys_of(doc)
            if k.key_id.split("#", 1)[0] == actor_id or k.key_id.startswith(actor_id.rstrip("/") + "/")
            or (key_id is not None and k.key_id == key_id and host_of(k.key_id) == host_of(actor_id))]
    chosen = next((k for k in keys if key_id is None or k.key_id == key_id), None)
    if chosen is None:
        raise InvalidActor("actor publishes no usable public key" if key_id is None
                           else f"actor does not publish key {key_id}")
    if chosen.owner is not None and chosen.owner != actor_id:
        raise InvalidActor("the key's owner is not this actor")
    endpoints = doc.get("endpoints") if isinstance(doc.get("endpoints"), dict) else {}
    shared_inbox = endpoints.get("sharedInbox") if isinstance(endpoints.get("sharedInbox"), str) else None
    username = string_or_none(doc.get("preferredUsername"), 200)
    if not username:
        # Some servers publish actors without preferredUsername; fall back to the id's last segment.
        username = urlsplit(actor_id).path.rstrip("/").rsplit("/", 1)[-1] or host_of(actor_id) or "unknown"
    icon_url, icon_type = _image_url(doc.get("icon"))
    image_url, image_type = _image_url(doc.get("image"))
    image_url = image_url if host_of(image_url) is not None and len(image_url or "") <= MAX_ID_LENGTH else None
    url = doc.get("url")
    url = id_of(url) if not isinstance(url, dict) else string_or_none(url.get("href"))
    # Links we will put into pages and posts: http(s) only, never javascript: or data: URLs.
    url = url if host_of(url) is not None else None
    icon_url = icon_url if host_of(icon_url) is not None else None
    moved_to = id_of(doc.get("movedTo"))
    _check_id_lengths(actor_id=actor_id, inbox=inbox, shared_inbox=shared_inbox, key_id=chosen.key_id)
    if len(chosen.pem) > MAX_PUBLIC_KEY_PEM_LENGTH:
        raise InvalidActor(f"actor's public key is longer than {MAX_PUBLIC_KEY_PEM_LENGTH} characters")
    # Links shown on pages, not ids: an overlong one is dropped rather than the actor refused.
    url = url if url is None or len(url) <= MAX_ID_LENGTH else None
    icon_url = icon_url if icon_url is None or len(icon_url) <= MAX_ID_LENGTH else None
    moved_to = moved_to if moved_to is None or len(moved_to) <= MAX_ID_LENGTH else None
    return {
        "username": username,
        "domain": host_of(actor_id),
        "actor_type": actor_type,
        "display_name": string_or_none(doc.get("name"), 500) or "",
        "summary_html": string_or_none(doc.get("summary"), 20_000) or "",
        "url": url if isinstance(url, str) else None,
        "inbox_url": inbox,
        "shared_inbox_url": shared_inbox,
        "outbox_url": string_or_none(doc.get("outbox"), 2000),
        "followers_url": string_or_none(doc.get("followers"), 2000),
        "following_url": string_or_none(doc.get("following"), 2000),
        "featured_url": string_or_none(id_of(doc.get("featured")), 2000),
        "icon_url": icon_url,
        "icon_media_type": icon_type,
        "image_url": image_url,
        "image_media_type": image_type if image_url else None,
        "key_id": chosen.key_id,
        "public_key_pem": chosen.pem,
        "manually_approves_followers": int(doc.get("manuallyApprovesFollowers") is True),
        "discoverable": int(doc.get("discoverable") is True),
        # FEP-5feb: a missing indexable means false.
        "indexable": int(doc.get("indexable") is True),
        "raw_json": stored_document(doc),
        # Shown as a link on the profile: http(s) only.
        "moved_to_uri": moved_to if host_of(moved_to) is not None and moved_to != actor_id else None,
        # Still raw HTML values: the caller cleans them (services.profile_fields.clean_remote_fields).
        "fields_json": json.dumps(profile_fields(doc), separators=(",", ":")),
        # Custom emoji of the name and bio ([shortcode, url] each), as a post's are read.
        "emojis_json": json.dumps(emojis_of(doc), separators=(",", ":")),
    }


# Profile fields kept per remote actor: Mastodon allows 4 by default and up to a configured few more.
MAX_PROFILE_FIELDS = 16
MAX_FIELD_NAME = 255
MAX_FIELD_VALUE = 2047


def profile_fields(doc: dict[str, Any]) -> list[dict[str, str]]:
    """The actor's PropertyValue attachments (Mastodon's profile fields) as {"name", "value"}: name
    plain text, value HTML as sent (to be sanitized before it is stored). Anything else in
    attachment is ignored; overlong names and values are cut."""
    fields = []
    for entry in as_list(doc.get("attachment")):
        if not isinstance(entry, dict) or "PropertyValue" not in as_list(entry.get("type")):
            continue
        name, value = entry.get("name"), entry.get("value")
        if not isinstance(name, str) or not isinstance(value, str) or not name.strip():
            continue
        fields.append({"name": name.strip()[:MAX_FIELD_NAME], "value": value[:MAX_FIELD_VALUE]})
        if len(fields) == MAX_PROFILE_FIELDS:
            break
    return fields


# An RSA-8192 public key is ~1,500 characters of PEM; anything much longer is not a key we can use.
MAX_PUBLIC_KEY_PEM_LENGTH = 16_384


def _check_id_lengths(**ids: str | None) -> None:
    """An actor whose ids we would store and index is refused when one is absurdly long (the other
    links are cut to None or capped by string_or_none). Cheap, and it bounds every actor row."""
    for name, value in ids.items():
        if value is not None and len(value) > MAX_ID_LENGTH:
            raise InvalidActor(f"actor's {name} is longer than {MAX_ID_LENGTH} characters")


def stored_document(doc: dict[str, Any]) -> str:
    """What is kept of a remote actor's document (actors.raw_json): only the terms read back later
    (alsoKnownAs, for Moves), everything else being in its own column already. The whole document
    (up to max_fetch_body_bytes, refetched every actor_refresh_seconds) was kept before; a feature
    that needs another term adds it here, and the next refetch stores it."""
    return json.dumps({"id": doc.get("id"), "alsoKnownAs": also_known_as(doc)}, separators=(",", ":"))


def also_known_as(doc: dict[str, Any]) -> list[str]:
    """The other ids an actor says are also its own (alsoKnownAs): a Move to this actor is only
    believed when the account moving away is listed here."""
    return [uri for uri in ids_of(doc.get("alsoKnownAs")) if len(uri) <= MAX_ID_LENGTH][:100]
