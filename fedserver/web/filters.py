"""Template filters: times, handles, and the only ways HTML reaches a page (sanitized when stored, or
built by us)."""
from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache

import jinja2
from markupsafe import Markup, escape

from fedserver.activitypub.normalize import host_of
from fedserver.clock import parse_time, wire_time
from fedserver.text import render_html


def post_html(html: str | None) -> Markup:
    """Post and bio HTML as stored: it is HTML in sanitized form by construction (remote HTML is
    cleaned when it is stored, by activitypub.notes.parse_note and remote_actors.store_document;
    local HTML is built by text.render_html, which escapes what people type). Never cleaned again
    here: cleaning costs up to tens of ms on hostile input, which every page view would pay."""
    return Markup(html or "")


def linkify(text: str | None) -> Markup:
    """Plain text (a local bio, a content warning) with links made clickable and everything else
    escaped."""
    if not text:
        return Markup("")
    return Markup(render_html(text, mentions={}, tag_url=lambda tag: f"/tags/{tag}", local_domain=""))


def datetime_short(iso: str | None) -> str:
    seconds = parse_time(iso)
    if seconds is None:
        return ""
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def relative_time(iso: str | None, now: float) -> str:
    """How long ago, as people read it in a timeline: "now", "5 min", "3 h", "2 d", then the date
    ("Mar 3", with the year when it is not this one). In UTC here; static/app.js redraws it in the
    viewer's own zone."""
    seconds = parse_time(iso)
    return "" if seconds is None else _relative(seconds, now)


def _relative(seconds: float, now: float) -> str:
    ago = now - seconds
    if ago < 60:
        return "now"
    if ago < 3600:
        return f"{int(ago // 60)} min"
    if ago < 86400:
        return f"{int(ago // 3600)} h"
    if ago < 7 * 86400:
        return f"{int(ago // 86400)} d"
    when, today = datetime.fromtimestamp(seconds, tz=timezone.utc), datetime.fromtimestamp(now, tz=timezone.utc)
    day = f"{MONTHS[when.month - 1]} {when.day}"
    return day if when.year == today.year else f"{day}, {when.year}"


def exact_time(iso: str | None) -> str:
    """The full time for a tooltip: "Mar 3, 2026, 14:05 UTC"."""
    seconds = parse_time(iso)
    return "" if seconds is None else _exact(seconds)


def _exact(seconds: float) -> str:
    when = datetime.fromtimestamp(seconds, tz=timezone.utc)
    return f"{MONTHS[when.month - 1]} {when.day}, {when.year}, {when:%H:%M} UTC"


def html_datetime(iso: str | None) -> str:
    """A <time datetime> value: HTML allows at most three fraction digits; seconds are enough."""
    return wire_time(iso) if iso else ""


def time_element(iso: str | None, now: float) -> Markup:
    """<time datetime title>relative</time>: what html_datetime, exact_time and relative_time give,
    with the time parsed once (every card of a timeline shows one)."""
    seconds = parse_time(iso)
    machine = escape(html_datetime(iso))
    if seconds is None:
        return Markup(f'<time datetime="{machine}" title=""></time>')
    return Markup(f'<time datetime="{machine}" title="{escape(_exact(seconds))}">{escape(_relative(seconds, now))}</time>')


def http_url(url: str | None) -> str:
    """An http(s) URL for an href, or "" (stored URLs are checked when parsed; checked again here
    so that no other scheme, javascript: say, can ever become a link)."""
    return url if url and host_of(url) is not None else ""


def url_host(url: str | None) -> str:
    """The host[:port] a link leads to, shown beside it."""
    return host_of(url) or ""


def handle(actor) -> str:
    return f"@{actor.username}@{actor.domain}"


# The pieces every post card shows (social/_macros.html calls these too): filters, not macros, since
# a timeline of 20 cards called ~10 macros a card, ~3 µs each plus an import per card.
def actor_path(actor) -> str:
    return f"/@{actor.username}" if actor.is_local else f"/remote/{actor.id}"


def post_path(post, author) -> str:
    return f"/@{author.username}/{post.id}" if post.is_local else f"/posts/{post.id}"


def display_name(actor) -> str:
    return actor.display_name or actor.username


def avatar(actor, size: str = "") -> Markup:
    from fedserver.web.media_filters import avatar_src

    sized = f" {escape(size)}" if size else ""
    src = avatar_src(actor)
    if src:
        return Markup(f'<img class="avatar{sized}" src="{escape(src)}" alt="" width="48" height="48" loading="lazy">')
    initial = escape((actor.display_name or actor.username)[:1].upper())
    return Markup(f'<span class="avatar placeholder{sized}" aria-hidden="true">{initial}</span>')


@lru_cache(maxsize=128)
def language_options(selected: str) -> Markup:
    """The compose form's language choices, by name, `selected` chosen: the same 54 options on every
    page that has the form (home's side column), built once per selected language, not escaped
    option by option on each page view."""
    from fedserver.services.languages import LANGUAGES

    return Markup("".join(
        f'<option value="{escape(code)}"{" selected" if code == selected else ""}>{escape(name)}</option>'
        for code, name in sorted(LANGUAGES.items(), key=lambda item: item[1].lower())))


VISIBILITY_LABELS = {"public": "Public", "unlisted": "Unlisted", "followers": "Followers only",
                     "direct": "Only people mentioned"}


def visibility_label(value: str) -> str:
    return VISIBILITY_LABELS.get(value, value)


def install(env: jinja2.Environment) -> None:
    from fedserver.web import media_filters, post_actions

    media_filters.install(env)
    post_actions.install(env)
    env.filters["post_html"] = post_html
    env.filters["linkify"] = linkify
    env.filters["datetime_short"] = datetime_short
    env.filters["relative_time"] = relative_time
    env.filters["exact_time"] = exact_time
    env.filters["handle"] = handle
    env.filters["html_datetime"] = html_datetime
    env.filters["time_element"] = time_element
    env.filters["http_url"] = http_url
    env.filters["url_host"] = url_host
    env.filters["actor_path"] = actor_path
    env.filters["post_path"] = post_path
    env.filters["display_name"] = display_name
    env.filters["avatar"] = avatar
    env.filters["visibility_label"] = visibility_label
    env.filters["language_options"] = language_options
