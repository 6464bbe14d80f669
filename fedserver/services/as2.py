"""Our actors, posts and actions as ActivityStreams 2.0 documents, shaped as Mastodon emits them."""
from __future__ import annotations

from typing import Any

from fedserver.activitypub.notes import as2_duration
from fedserver.activitypub.vocab import AS_CONTEXT, PUBLIC, actor_context, note_context
from fedserver.clock import wire_time
from fedserver.store.actors import Actor
from fedserver.store.attachments import Attachment
from fedserver.store.polls import Poll
from fedserver.store.posts import Post
from fedserver.urls import Urls


def actor_document(actor: Actor, urls: Urls, *, extra_context: dict[str, object] | None = None,
                   extra_fields: dict[str, Any] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "@context": actor_context(extra_context),
        "id": actor.uri,
        "type": actor.actor_type,
        "preferredUsername": actor.username,
        "name": actor.display_name,
        "summary": actor.summary_html,
        "url": actor.url,
        "inbox": actor.inbox_url,
        "outbox": actor.outbox_url,
        "followers": actor.followers_url,
        "following": actor.following_url,
        "featured": actor.featured_url,
        "endpoints": {"sharedInbox": urls.shared_inbox},
        "manuallyApprovesFollowers": bool(actor.manually_approves_followers),
        "discoverable": bool(actor.discoverable),
        "indexable": bool(actor.indexable),
        # Mastodon emits midnight of the join date.
        "published": actor.created_at[:10] + "T00:00:00Z",
        "publicKey": {"id": actor.key_id, "owner": actor.uri, "publicKeyPem": actor.public_key_pem},
    }
    if actor.suspended_at:
        doc["suspended"] = True
    if actor.aliases:
        doc["alsoKnownAs"] = actor.aliases
    if actor.moved_to_uri:
        doc["movedTo"] = actor.moved_to_uri
    if actor.icon_url:
        doc["icon"] = {"type": "Image", "mediaType": actor.icon_media_type or "image/png", "url": actor.icon_url}
    if actor.fields:
        # Profile fields as Mastodon federates them: PropertyValues whose value is HTML.
        doc["attachment"] = [{"type": "PropertyValue", "name": f.get("name", ""), "value": f.get("value", "")}
                             for f in actor.fields]
    if actor.image_url:  # the header picture, as Mastodon publishes it
        doc["image"] = {"type": "Image", "mediaType": actor.image_media_type or "image/png", "url": actor.image_url}
    if extra_fields:
        doc.update(extra_fields)
    return {k: v for k, v in doc.items() if v is not None}


def note_document(post: Post, author: Actor, *, mentions: list[Actor], tags: list[str], urls: Urls,
                  extra_context: dict[str, object] | None = None,
                  extra_fields: dict[str, Any] | None = None, with_context: bool = True,
                  attachments: list[Attachment] | None = None, poll: Poll | None = None) -> dict[str, Any]:
    audience = post.audience
    doc: dict[str, Any] = {
        "id": post.uri,
        "type": "Note",
        "attributedTo": author.uri,
        "inReplyTo": post.in_reply_to_uri,
        "published": wire_time(post.published_at),
        "url": post.url,
        "to": audience.get("to", []),
        "cc": audience.get("cc", []),
        "sensitive": bool(post.sensitive),
        "summary": post.summary or None,
        "content": post.content_html,
        "tag": [{"type": "Mention", "href": m.uri, "name": f"@{m.username}@{m.domain}"} for m in mentions]
               + [{"type": "Hashtag", "href": urls.tag(t), "name": f"#{t}"} for t in tags],
    }
    if post.language:
        doc["contentMap"] = {post.language: post.content_html}
    if attachments:
        # As Mastodon sends media: Documents with their type, address, description, size and
        # blurhash (of a video's poster); video and audio with their AS2 duration too.
        doc["attachment"] = [{k: v for k, v in {
            "type": "Document", "mediaType": a.media_type, "url": a.url, "name": a.description,
            "width": a.width, "height": a.height, "blurhash": a.blurhash if a.kind in ("video", "audio") else None,
            "duration": as2_duration(a.duration) if a.duration else None}.items() if v is not None}
            for a in attachments]
    if poll is not None:
        doc.update(question_fields(poll))
    if post.edited_at:
        doc["updated"] = wire_time(post.edited_at)
    if extra_fields:
        doc.update(extra_fields)
    doc = {k: v for k, v in doc.items() if v is not None}
    if with_context:
        doc = {"@context": note_context(extra_context), **doc}
    return doc


def question_fields(poll: Poll) -> dict[str, Any]:
    """A post with a poll is a Question, as Mastodon sends it: the options as Notes whose
    replies.totalItems is the count (oneOf: pick one; anyOf: several), endTime, votersCount and,
    once ended, closed. Hidden totals (hide_totals) read 0 until the poll is closed."""
    hidden = poll.hide_totals and poll.closed_at is None
    options = [{"type": "Note", "name": choice.name,
                "replies": {"type": "Collection", "totalItems": 0 if hidden else choice.votes}}
               for choice in poll.choices]
    fields: dict[str, Any] = {"type": "Question", "anyOf" if poll.multiple else "oneOf": options,
                              "votersCount": 0 if hidden else (poll.voters or 0)}
    if poll.ends_at:
        fields["endTime"] = wire_time(poll.ends_at)
    if poll.closed_at:
        fields["closed"] = wire_time(poll.closed_at)
    return fields


def tombstone_document(uri: str, deleted_at: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"@context": AS_CONTEXT, "id": uri, "type": "Tombstone"}
    if deleted_at:
        doc["deleted"] = wire_time(deleted_at)
    return doc


def wrap_create(note: dict[str, Any], activity_id: str) -> dict[str, Any]:
    inner = {k: v for k, v in note.items() if k != "@context"}
    return {
        "@context": note.get("@context", AS_CONTEXT),
        "id": activity_id,
        "type": "Create",
        "actor": inner["attributedTo"],
        "published": inner["published"],
        "to": inner.get("to", []),
        "cc": inner.get("cc", []),
        "object": inner,
    }


def wrap_update_note(note: dict[str, Any], activity_id: str) -> dict[str, Any]:
    activity = wrap_create(note, activity_id)
    activity["type"] = "Update"
    activity["published"] = note.get("updated", note["published"])
    return activity


def delete_note_activity(post: Post, author: Actor, activity_id: str) -> dict[str, Any]:
    audience = post.audience
    return {
        "@context": AS_CONTEXT,
        "id": activity_id,
        "type": "Delete",
        "actor": author.uri,
        "to": audience.get("to", []) or [PUBLIC],
        "cc": audience.get("cc", []),
        "object": {"id": post.uri, "type": "Tombstone"},
    }


def update_actor_activity(actor_doc: dict[str, Any], activity_id: str) -> dict[str, Any]:
    inner = {k: v for k, v in actor_doc.items() if k != "@context"}
    return {"@context": actor_doc["@context"], "id": activity_id, "type": "Update", "actor": inner["id"],
            "to": [PUBLIC], "object": inner}


def delete_actor_activity(actor: Actor, activity_id: str) -> dict[str, Any]:
    return {"@context": AS_CONTEXT, "id": activity_id, "type": "Delete", "actor": actor.uri,
            "to": [PUBLIC], "object": actor.uri}


def follow_activity(follow_uri: str, follower_uri: str, followee_uri: str) -> dict[str, Any]:
    return {"@context": AS_CONTEXT, "id": follow_uri, "type": "Follow", "actor": follower_uri,
            "object": followee_uri}


def answer_follow_activity(kind: str, activity_id: str, followee_uri: str, follow: dict[str, Any]) -> dict[str, Any]:
    """Accept or Reject embedding the Follow (Mastodon matches by id, else by the embedded actor)."""
    embedded = {k: v for k, v in follow.items() if k != "@context"}
    return {"@context": AS_CONTEXT, "id": activity_id, "type": kind, "actor": followee_uri, "object": embedded}


def vote_activity(note_uri: str, voter_uri: str, question_uri: str, author_uri: str, choice: str) -> dict[str, Any]:
    """One choice of a vote in someone's poll, as Mastodon sends it: a Note named after the choice,
    in reply to the Question, addressed to its author alone."""
    note = {"id": note_uri, "type": "Note", "name": choice, "attributedTo": voter_uri, "inReplyTo": question_uri,
            "to": [author_uri]}
    return {"@context": AS_CONTEXT, "id": f"{note_uri}/activity", "type": "Create", "actor": voter_uri,
            "to": [author_uri], "object": note}


def flag_activity(activity_id: str, instance_actor_uri: str, objects: list[str], comment: str) -> dict[str, Any]:
    """A report to another server, as Mastodon sends one: from the instance actor (so the person who
    reported stays unnamed), naming the account and its posts."""
    return {"@context": AS_CONTEXT, "id": activity_id, "type": "Flag", "actor": instance_actor_uri,
            "content": comment, "object": objects}


def move_activity(activity_id: str, actor: Actor, target_uri: str) -> dict[str, Any]:
    """An account moving to another, as Mastodon sends it to the followers."""
    return {"@context": AS_CONTEXT, "id": activity_id, "type": "Move", "actor": actor.uri, "object": actor.uri,
            "target": target_uri, "to": [actor.followers_url]}


def undo_activity(activity_id: str, actor_uri: str, original: dict[str, Any]) -> dict[str, Any]:
    embedded = {k: v for k, v in original.items() if k != "@context"}
    doc = {"@context": AS_CONTEXT, "id": activity_id, "type": "Undo", "actor": actor_uri, "object": embedded}
    for key in ("to", "cc"):
        if key in embedded:
            doc[key] = embedded[key]
    return doc


def like_activity(like_uri: str, actor_uri: str, object_uri: str) -> dict[str, Any]:
    return {"@context": AS_CONTEXT, "id": like_uri, "type": "Like", "actor": actor_uri, "object": object_uri}


def announce_activity(announce_uri: str, actor: Actor, post_uri: str, post_author_uri: str,
                      published: str) -> dict[str, Any]:
    return {"@context": AS_CONTEXT, "id": announce_uri, "type": "Announce", "actor": actor.uri,
            "published": wire_time(published), "to": [PUBLIC], "cc": [post_author_uri, actor.followers_url],
            "object": post_uri}


def block_activity(block_uri: str, actor_uri: str, target_uri: str) -> dict[str, Any]:
    return {"@context": AS_CONTEXT, "id": block_uri, "type": "Block", "actor": actor_uri, "object": target_uri,
            "to": [target_uri]}


def ordered_collection(collection_id: str, total: int | None, first: str | None) -> dict[str, Any]:
    doc: dict[str, Any] = {"@context": AS_CONTEXT, "id": collection_id, "type": "OrderedCollection"}
    if total is not None:
        doc["totalItems"] = total
    if first:
        doc["first"] = first
    return doc


def ordered_collection_page(page_id: str, part_of: str, items: list[Any], next_page: str | None) -> dict[str, Any]:
    doc: dict[str, Any] = {"@context": AS_CONTEXT, "id": page_id, "type": "OrderedCollectionPage",
                           "partOf": part_of, "orderedItems": items}
    if next_page:
        doc["next"] = next_page
    return doc
