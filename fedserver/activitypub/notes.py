"""Reading remote Note-like objects into post fields, and Mastodon's addressing rules both ways."""
from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from fedserver.activitypub.normalize import (as_list, content_of, first_type, host_of, id_of, ids_of,
                                             language_of, string_or_none)
from fedserver.activitypub.sanitize import html_to_text, sanitize_html
from fedserver.activitypub.vocab import PUBLIC, PUBLIC_FORMS, POST_TYPES

MAX_TAGS = 100  # bound work on hostile payloads (cf. CVE-2026-23962's unbounded poll options)
# Mastodon attaches up to 4, Misskey up to 16; more are dropped, as Mastodon drops past its limit.
MAX_ATTACHMENTS = 16
# Custom emoji of one post kept (Mastodon's tags of type Emoji), and the shortcodes taken.
MAX_EMOJIS = 50
EMOJI_SHORTCODE = re.compile(r"^[A-Za-z0-9_]{1,64}$")
ATTACHMENT_TYPES = ("Document", "Image", "Video", "Audio")
# Mastodon allows 4 poll options by default, instances up to about 10; Misskey 10.
MAX_POLL_OPTIONS = 20


class InvalidNote(ValueError):
    """The object cannot be shown as a post."""


@dataclass(frozen=True)
class MediaAttachment:
    """A Document/Image/Video/Audio attached to a post: where the media is and what it shows."""
    url: str
    media_type: str
    description: str | None
    width: int | None
    height: int | None
    # Seconds a video or audio plays (AS2 `duration`, xsd:duration like "PT12.5S"), when sent.
    duration: float | None = None


@dataclass(frozen=True)
class PollOption:
    name: str
    votes: int


@dataclass(frozen=True)
class ParsedPoll:
    """A Question's choices as its author's server last reported them."""
    multiple: bool
    options: list[PollOption]
    ends_at: str | None
    closed_at: str | None
    voters: int | None


@dataclass
class ParsedNote:
    uri: str
    object_type: str
    attributed_to: str
    content_html: str
    content_text: str
    summary: str | None
    sensitive: bool
    language: str | None
    in_reply_to: str | None
    url: str | None
    to: list[str]
    cc: list[str]
    published: str | None
    updated: str | None
    mention_hrefs: list[str] = field(default_factory=list)
    hashtags: list[str] = field(default_factory=list)
    attachments: list[MediaAttachment] = field(default_factory=list)
    poll: ParsedPoll | None = None
    # Custom emoji: (shortcode without colons, picture URL), each shortcode once.
    emojis: list[tuple[str, str]] = field(default_factory=list)


def addressing(visibility: str, followers_url: str, mention_uris: list[str]) -> dict[str, list[str]]:
    """to/cc exactly as Mastodon forms them for each visibility (TagManager)."""
    if visibility == "public":
        return {"to": [PUBLIC], "cc": [followers_url, *mention_uris]}
    if visibility == "unlisted":
        return {"to": [followers_url], "cc": [PUBLIC, *mention_uris]}
    if visibility == "followers":
        return {"to": [followers_url], "cc": list(mention_uris)}
    if visibility == "direct":
        return {"to": list(mention_uris), "cc": []}
    raise ValueError(f"unknown visibility {visibility!r}")


def visibility_of(to: list[str], cc: list[str], followers_url: str | None) -> str:
    """How Mastodon's StatusParser reads an audience."""
    if any(a in PUBLIC_FORMS for a in to):
        return "public"
    if any(a in PUBLIC_FORMS for a in cc):
        return "unlisted"
    if followers_url and (followers_url in to or followers_url in cc):
        return "followers"
    return "direct"


@dataclass(frozen=True)
class NoteHead:
    """What deciding whether anyone here cares about a post needs: read without touching its
    content, so that a post nobody here wants costs no HTML parsing."""
    uri: str
    object_type: str
    attributed_to: str
    to: list[str]
    cc: list[str]
    in_reply_to: str | None
    mention_hrefs: list[str]


def read_note_head(obj: Any) -> NoteHead:
    """The id, author, audience, mentions and parent of a Note/Question/Article/Page; raises
    InvalidNote when it cannot be shown as a post."""
    if not isinstance(obj, dict):
        raise InvalidNote("object is not embedded")
    object_type = first_type(obj)
    if object_type not in POST_TYPES:
        raise InvalidNote(f"object type {object_type!r} is not shown as a post")
    uri = obj.get("id")
    if not isinstance(uri, str) or host_of(uri) is None:
        raise InvalidNote("object has no http(s) id")
    author = id_of(obj.get("attributedTo"))
    if not author:
        raise InvalidNote("object has no attributedTo")
    mentions = [tag["href"] for tag in as_list(obj.get("tag"))[:MAX_TAGS]
                if isinstance(tag, dict) and first_type(tag) == "Mention" and isinstance(tag.get("href"), str)]
    return NoteHead(uri=uri, object_type=object_type, attributed_to=author, to=ids_of(obj.get("to")),
                    cc=ids_of(obj.get("cc")), in_reply_to=id_of(obj.get("inReplyTo")), mention_hrefs=mentions)


def parse_note(obj: Any, *, followers_url: str | None = None,
               clean: Callable[[str], str] = sanitize_html) -> tuple[ParsedNote, str]:
    """Parse a Note/Question/Article/Page; returns the fields and the derived visibility. `clean`
    turns remote HTML (content, summary) into its sanitized form; it takes up to tens of ms on
    hostile input (sanitize.bound_html), so callers on the event loop use
    sanitizing.parse_note_off_loop."""
    head = read_note_head(obj)
    raw_html = content_of(obj)
    if head.object_type in ("Article", "Page"):
        # Mastodon shows these as a title and a link; we keep title + content.
        name = string_or_none(obj.get("name"), 500)
        if name:
            raw_html = f"<p><strong>{html.escape(name)}</strong></p>{raw_html}"
    content_html = clean(raw_html)  # cut to sanitize.MAX_HTML_CHARS there
    hashtags = []
    for tag in as_list(obj.get("tag"))[:MAX_TAGS]:
        if isinstance(tag, dict) and first_type(tag) == "Hashtag" and isinstance(tag.get("name"), str):
            hashtags.append(tag["name"].lstrip("#").lower()[:100])
    url = obj.get("url")
    url = id_of(url) if not isinstance(url, dict) else string_or_none(url.get("href"))
    url = url if host_of(url) is not None else None  # http(s) only: it becomes a link in pages
    summary = string_or_none(obj.get("summary"), 5000)
    # The content warning is stored as text, but arrives as HTML: cleaned first, because
    # html_to_text's parser is quadratic on some malformed input and raises on some.
    summary_text = html_to_text(clean(summary)) if summary else None
    parsed = ParsedNote(
        uri=head.uri, object_type=head.object_type, attributed_to=head.attributed_to, content_html=content_html,
        content_text=html_to_text(content_html), summary=summary_text,
        sensitive=obj.get("sensitive") is True or bool(summary), language=language_of(obj),
        in_reply_to=head.in_reply_to, url=url if isinstance(url, str) else None,
        to=head.to, cc=head.cc, published=string_or_none(obj.get("published"), 64),
        updated=string_or_none(obj.get("updated"), 64), mention_hrefs=head.mention_hrefs,
        hashtags=sorted(set(hashtags)), attachments=attachments_of(obj), poll=poll_of(obj), emojis=emojis_of(obj))
    return parsed, visibility_of(head.to, head.cc, followers_url)


def emojis_of(obj: dict[str, Any]) -> list[tuple[str, str]]:
    """Custom emoji tags ({"type": "Emoji", "name": ":blobcat:", "icon": {"url": ...}}): shortcodes
    of letters, digits and underscores only (they are matched in the post's text), http(s) icons."""
    found: dict[str, str] = {}
    for tag in as_list(obj.get("tag"))[:MAX_TAGS]:
        if not isinstance(tag, dict) or first_type(tag) != "Emoji" or not isinstance(tag.get("name"), str):
            continue
        shortcode = tag["name"].strip(":")
        icon = tag.get("icon")
        url, _ = _media_link(icon.get("url") if isinstance(icon, dict) else icon)
        if EMOJI_SHORTCODE.match(shortcode) and url is not None and shortcode not in found:
            found[shortcode] = url
        if len(found) == MAX_EMOJIS:
            break
    return list(found.items())


def poll_of(obj: dict[str, Any]) -> ParsedPoll | None:
    """The poll of a Question (oneOf: pick one; anyOf: pick any), or None for anything else."""
    if first_type(obj) != "Question":
        return None
    multiple = "anyOf" in obj and "oneOf" not in obj
    options = []
    for choice in as_list(obj.get("anyOf" if multiple else "oneOf"))[:MAX_POLL_OPTIONS]:
        if not isinstance(choice, dict) or not isinstance(choice.get("name"), str):
            continue
        replies = choice.get("replies")
        votes = replies.get("totalItems") if isinstance(replies, dict) else None
        options.append(PollOption(name=choice["name"][:200], votes=_count(votes) or 0))
    if not options:
        return None
    closed = obj.get("closed")
    return ParsedPoll(multiple=multiple, options=options, ends_at=string_or_none(obj.get("endTime"), 64),
                      closed_at=closed if isinstance(closed, str) else None, voters=_count(obj.get("votersCount")))


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**12 else None


def attachments_of(obj: dict[str, Any]) -> list[MediaAttachment]:
    """The object's media attachments in order: http(s) URLs only (each becomes a link in pages),
    at most MAX_ATTACHMENTS; anything else in `attachment` (Mastodon profile fields are
    PropertyValues there) is skipped."""
    found: list[MediaAttachment] = []
    for item in as_list(obj.get("attachment"))[:MAX_TAGS]:
        if not isinstance(item, dict) or first_type(item) not in ATTACHMENT_TYPES:
            continue
        url, link_type = _media_link(item.get("url"))
        if url is None:
            continue
        found.append(MediaAttachment(
            url=url, media_type=string_or_none(item.get("mediaType"), 100) or link_type or "",
            description=string_or_none(item.get("name"), 1500) or string_or_none(item.get("summary"), 1500),
            width=_dimension(item.get("width")), height=_dimension(item.get("height")),
            duration=duration_seconds(item.get("duration"))))
        if len(found) == MAX_ATTACHMENTS:
            break
    return found


_DURATION = re.compile(r"^P(?:(\d{1,4})D)?(?:T(?:(\d{1,6})H)?(?:(\d{1,8})M)?(?:(\d{1,9}(?:\.\d{1,6})?)S)?)?$")


def duration_seconds(value: Any) -> float | None:
    """An attachment's duration in seconds: an xsd:duration ("PT1M2.5S", as AS2 defines it) or a
    plain number of seconds (some servers send that); None when absent or out of range."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and len(value) <= 40 and (match := _DURATION.match(value)) and value not in ("P", "PT"):
        days, hours, minutes, secs = (float(part) if part else 0.0 for part in match.groups())
        seconds = ((days * 24 + hours) * 60 + minutes) * 60 + secs
    else:
        return None
    return round(seconds, 3) if 0 < seconds < 10**7 else None


def as2_duration(seconds: float) -> str:
    """Seconds as an xsd:duration for AS2's `duration`."""
    return f"PT{seconds:.3f}".rstrip("0").rstrip(".") + "S"


def _media_link(value: Any) -> tuple[str | None, str | None]:
    """(URL, media type) from an attachment's url: a string, a Link (href, mediaType) or a list of
    them (the first usable one, as Mastodon takes it)."""
    for candidate in as_list(value)[:MAX_TAGS]:
        if isinstance(candidate, str):
            href, media_type = candidate, None
        elif isinstance(candidate, dict):
            href, media_type = candidate.get("href"), string_or_none(candidate.get("mediaType"), 100)
        else:
            continue
        if isinstance(href, str) and len(href) <= 2048 and host_of(href) is not None:
            return href, media_type
    return None, None


def _dimension(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 100_000 else None

