"""Template filters that turn stored media into addresses on this server: pages show remote
pictures and avatars from the media cache only (services/media_cache.py), never from their origin."""
from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import jinja2
from markupsafe import Markup, escape

from fedserver.activitypub.normalize import host_of
from fedserver.services.media_cache import cached_path, remote_picture_path

# Remote pictures before their first fetch are sized from the sender's claimed dimensions, scaled
# into the thumbnail box (the cache's thumbnails are at most this wide and high by default).
THUMB_BOX = 400
# The media cache's video and audio files, by extension (fedserver/av_media.py OUTPUTS).
PLAYABLE_KINDS = {"mp4": "video", "webm": "video", "m4a": "audio", "weba": "audio", "ogg": "audio", "mp3": "audio",
                  "flac": "audio"}


@dataclass(frozen=True)
class ShownPicture:
    src: str  # what the card shows (a thumbnail for remote pictures)
    full: str  # the original, one click away
    width: int | None
    height: int | None
    blur: str | None  # the blurhash picture, for sensitive media


def _box(width: object, height: object, side: int = THUMB_BOX) -> tuple[int | None, int | None]:
    if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
        return None, None
    scale = min(1.0, side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def picture(item, is_local: bool) -> ShownPicture | None:
    """How a card shows an attachment, or None when it shows a link instead (not a picture, or a
    remote one the cache does not know)."""
    if item.kind != "image" or host_of(item.url) is None:
        return None
    if is_local:
        path = urlsplit(item.url).path  # our own upload: served by this server (web/settings.py media)
        if item.thumb_url:
            width, height = _box(item.thumb_width, item.thumb_height, 10_000)
            return ShownPicture(urlsplit(item.thumb_url).path, path, width, height,
                                urlsplit(item.blur_url).path if item.blur_url else None)
        width, height = _box(item.width, item.height)  # posted before thumbnails were made
        return ShownPicture(path, path, width, height, None)
    cached = item.cached
    if cached is None:
        return None
    if cached.thumb_name and cached.file_name:
        # Cached, or pruned since: the content-addressed names fetch it again when asked for.
        width, height = _box(cached.thumb_width, cached.thumb_height, 10_000)
        return ShownPicture(cached_path(cached.thumb_name), cached_path(cached.file_name), width, height,
                            cached_path(cached.blur_name) if cached.blur_name else None)
    width, height = _box(item.width, item.height)
    return ShownPicture(remote_picture_path(item.url, "small"), remote_picture_path(item.url), width, height,
                        remote_picture_path(item.url, "blur"))


@dataclass(frozen=True)
class ShownPlayable:
    kind: str  # video | audio: which element plays it
    src: str
    poster: str | None  # a video's preview frame
    width: int | None
    height: int | None
    blur: str | None = None  # the preview frame's blurhash picture, for a sensitive video


def playable(item, is_local: bool) -> ShownPlayable | None:
    """How a card plays a video or audio attachment from this server (the browser's own controls),
    or None when it shows a link instead (a remote file the cache has not taken, or not video/audio)."""
    if host_of(item.url) is None:
        return None
    if is_local:
        if item.kind not in ("video", "audio"):
            return None
        width, height = _box(item.width, item.height)
        return ShownPlayable(item.kind, urlsplit(item.url).path,
                             urlsplit(item.thumb_url).path if item.thumb_url else None, width, height,
                             urlsplit(item.blur_url).path if item.blur_url else None)
    cached = item.cached
    # Until the cache has taken the file (the worker fetches it when the post arrives), the card
    # keeps its link: a player pointing at a file that may yet be refused would only show an error.
    # Once taken, a pruned file comes back when the player asks (web/media.py cached_file).
    if cached is None or not cached.file_name or item.kind not in ("video", "audio"):
        return None
    # The cached file's type is what ffprobe found, whatever the sender called it.
    kind = PLAYABLE_KINDS.get(cached.file_name.rpartition(".")[2])
    if kind is None:
        return None
    width, height = _box(cached.width, cached.height)
    return ShownPlayable(kind, cached_path(cached.file_name),
                         cached_path(cached.thumb_name) if cached.thumb_name else None, width, height,
                         cached_path(cached.blur_name) if cached.blur_name else None)


def _size(width: int | None, height: int | None) -> str:
    return f' width="{width}" height="{height}"' if width else ""


_KIND_WORDS = {"image": "Image", "video": "Video", "audio": "Audio"}


def media_list(attachments, is_local: bool) -> Markup:
    """A card's attachments as a list: pictures (thumbnail, the original one click away, the
    description as alt text), video and audio with the browser's own controls, and a link for what
    this server does not show. Built here, not by a template macro: a timeline renders it for every
    card, and a macro call with its filters cost ~0.1 ms a card (bench/RESULTS.md, sixth session).
    Every value is escaped; only this markup is added."""
    from fedserver.web.filters import http_url, url_host

    items = []
    for item in attachments:
        description = escape(item.description or "")
        shown = picture(item, is_local)
        if shown:
            items.append(f'<li class="picture"><a href="{escape(shown.full)}" title="Open the original"><img'
                         f' src="{escape(shown.src)}" alt="{description}"{_size(shown.width, shown.height)}'
                         ' loading="lazy"></a></li>')
            continue
        played = playable(item, is_local)
        if played:
            label = f' aria-label="{description}"' if description else ""
            if played.kind == "video":
                poster = f' poster="{escape(played.poster)}"' if played.poster else ""
                player = (f'<video controls preload="metadata" src="{escape(played.src)}"{poster}'
                          f'{_size(played.width, played.height)}{label}></video>')
            else:
                player = f'<audio controls preload="metadata" src="{escape(played.src)}"{label}></audio>'
            said = f'<span class="description">{description}</span>' if description else ""
            items.append(f'<li class="{played.kind}">{player}{said}</li>')
            continue
        said = (f': <span class="description">{description}</span>' if description
                else ' <span class="muted">(no description)</span>')
        items.append(f'<li><a href="{escape(http_url(item.url))}" rel="noopener noreferrer nofollow ugc">'
                     f'{_KIND_WORDS.get(item.kind, "File")}</a>\n    <span class="muted">on'
                     f' {escape(url_host(item.url))}</span>{said}</li>')
    return Markup('<ul class="attachments" aria-label="Attached media">\n  ' + "\n  ".join(items) + "\n</ul>")


def media_blur(attachments, is_local: bool) -> Markup:
    """Sensitive pictures and videos: their blurhash (colours only; a video's from its preview frame)
    until the reader opens them; no script needed. The players sit inside the closed <details>, so a
    video's controls and poster appear only once opened; audio has no picture and waits behind the
    words."""
    blurs = []
    for item in attachments:
        shown = picture(item, is_local) or playable(item, is_local)
        if shown and shown.blur:
            blurs.append(f'<img class="blur" src="{escape(shown.blur)}" alt=""{_size(shown.width, shown.height)}>')
    return Markup("".join(blurs))


def avatar_src(actor) -> str:
    """The avatar's address on this server, or "" for none."""
    url = actor.icon_url
    if not url or host_of(url) is None:
        return ""
    if actor.is_local:
        return urlsplit(url).path
    return remote_picture_path(url, "small")


# A tag of stored (serialized, sanitized) HTML: attribute values are always double-quoted there, and
# may contain ">" but never '"'. What lies between two tags is text.
_TAG = re.compile(r'(<[^<>"]*(?:"[^"]*"[^<>"]*)*>)')
_SHORTCODE = re.compile(r":([A-Za-z0-9_]{1,64}):")


def with_emojis(html: Markup, emojis: dict[str, str]) -> Markup:
    """Post HTML with each known :shortcode: in its text (never inside a tag) shown as the emoji's
    picture from this server; HTML comes in already safe (post_html) and stays so: only our own
    markup, with escaped values, is added."""
    if not emojis:
        return html
    def picture_of(match: re.Match) -> str:
        src = emojis.get(match.group(1))
        if src is None:
            return match.group(0)
        code = escape(match.group(0))
        return f'<img class="emoji" src="{escape(src)}" alt="{code}" title="{code}" width="20" height="20">'
    parts = _TAG.split(str(html))
    return Markup("".join(part if index % 2 else _SHORTCODE.sub(picture_of, part) for index, part in enumerate(parts)))


def header_src(actor) -> str:
    """The profile header picture's address on this server, or "" for none (remote: the cached
    picture itself, not the thumbnail: a header is shown wide)."""
    url = actor.image_url
    if not url or host_of(url) is None:
        return ""
    return urlsplit(url).path if actor.is_local else remote_picture_path(url)


def install(env: jinja2.Environment) -> None:
    env.filters["header_src"] = header_src
    env.filters["picture"] = picture
    env.filters["playable"] = playable
    env.filters["avatar_src"] = avatar_src
    env.filters["media_list"] = media_list
    env.filters["media_blur"] = media_blur
    env.filters["with_emojis"] = with_emojis
