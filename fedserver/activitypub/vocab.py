"""ActivityStreams vocabulary constants and the JSON-LD contexts we emit (inlined, never fetched)."""
from __future__ import annotations

AS_CONTEXT = "https://www.w3.org/ns/activitystreams"
SECURITY_CONTEXT = "https://w3id.org/security/v1"
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
PUBLIC_FORMS = frozenset({PUBLIC, "as:Public", "Public"})

# Mastodon's extension terms (app/helpers/context_helper.rb): peers do plain-JSON term matching, so
# we inline the same names with the same IRIs.
ACTOR_EXTENSIONS: dict[str, object] = {
    "manuallyApprovesFollowers": "as:manuallyApprovesFollowers",
    "toot": "http://joinmastodon.org/ns#",
    "featured": {"@id": "toot:featured", "@type": "@id"},
    "alsoKnownAs": {"@id": "as:alsoKnownAs", "@type": "@id"},
    "movedTo": {"@id": "as:movedTo", "@type": "@id"},
    "schema": "http://schema.org#",
    "PropertyValue": "schema:PropertyValue",
    "value": "schema:value",
    "discoverable": "toot:discoverable",
    "indexable": "toot:indexable",
    "memorial": "toot:memorial",
    "suspended": "toot:suspended",
}

NOTE_EXTENSIONS: dict[str, object] = {
    "sensitive": "as:sensitive",
    "Hashtag": "as:Hashtag",
    "toot": "http://joinmastodon.org/ns#",
    "blurhash": "toot:blurhash",
}

# Longest id (activity, object, actor, key) we accept from a remote peer. Mastodon's are ~100
# characters; 2 KB leaves room for any real URL while a peer can no longer make us store megabytes
# per id (and index them).
MAX_ID_LENGTH = 2048

ACTOR_TYPES = frozenset({"Person", "Service", "Application", "Group", "Organization"})
# Object types shown as posts; Article/Page/Question are shown as Notes (title + content).
POST_TYPES = frozenset({"Note", "Question", "Article", "Page"})


def actor_context(extra: dict[str, object] | None = None) -> list[object]:
    return [AS_CONTEXT, SECURITY_CONTEXT, {**ACTOR_EXTENSIONS, **(extra or {})}]


def note_context(extra: dict[str, object] | None = None) -> list[object]:
    return [AS_CONTEXT, {**NOTE_EXTENSIONS, **(extra or {})}]


def has_as_context(document: dict) -> bool:
    """Mastodon's supported_context?: the AS context string itself or inside an array."""
    context = document.get("@context")
    if context == AS_CONTEXT:
        return True
    return isinstance(context, list) and AS_CONTEXT in context
