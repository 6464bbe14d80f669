"""WebFinger (RFC 7033) for ActivityPub: handle parsing, client resolution, JRD building.

Client behaviour mirrors Mastodon (federation.md §1.1): query
``{scheme}://{host}/.well-known/webfinger?resource=acct:user@host`` with
``Accept: application/jrd+json, application/json`` and take the single ``self`` link
whose type is an AS2 media type.  Mastodon always uses https; ``scheme`` exists so the
loopback test suite can use plain http.

:func:`verify_round_trip` is the actor-side check Mastodon runs before trusting an
actor's ``preferredUsername`` (§0 rule 3): ``acct:<username>@<actor host>`` must point
back at exactly the actor id, allowing one split-domain hop via ``subject``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from yarl import URL

from .fetch import FetchGone, FetchInvalid, FetchNotFound, RemoteFetcher
from .mediatypes import AS2_CONTENT_TYPE, is_activitypub_content_type

__all__ = [
    "JRD_ACCEPT",
    "JRD_CONTENT_TYPE",
    "build_jrd",
    "parse_handle",
    "resolve_handle",
    "self_link",
    "verify_round_trip",
    "webfinger",
]

JRD_ACCEPT = "application/jrd+json, application/json"
JRD_CONTENT_TYPE = "application/jrd+json"
PROFILE_PAGE_REL = "http://webfinger.net/rel/profile-page"
SUBSCRIBE_REL = "http://ostatus.org/schema/1.0/subscribe"

# Usernames: Mastodon allows [a-z0-9_] plus inner dots/dashes; other servers add a few
# more unreserved characters.  Anything that could alter the query/URL is refused.
_USER_RE = re.compile(r"^[A-Za-z0-9_.~+\-]+$")
# host[:port]; IPv6 literals in brackets.  Ports are needed for loopback tests.
_HOST_RE = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]+\])(?::(?P<port>[0-9]{1,5}))?$"
)


def parse_handle(handle: str) -> tuple[str, str]:
    """Split ``@user@host``, ``user@host`` or ``acct:user@host`` into ``(user, host)``.

    ``host`` is lowercased and may carry a ``:port``; ``user`` keeps its case (servers
    compare case-insensitively, but the query should echo what the user typed).
    Raises ValueError for anything else.
    """
    if not isinstance(handle, str):
        raise ValueError("handle must be a string")
    s = handle.strip()
    if s[:5].lower() == "acct:":
        s = s[5:]
    elif s.startswith("@"):
        s = s[1:]
    user, sep, host = s.partition("@")
    if not sep or "@" in host:
        raise ValueError(f"not a user@host handle: {handle!r}")
    if not _USER_RE.fullmatch(user):
        raise ValueError(f"invalid username in handle: {handle!r}")
    host = host.lower()
    if not host.isascii():
        try:  # internationalised domain -> punycode, the form DNS and Mastodon use
            name, colon, port = host.rpartition(":") if host.count(":") == 1 else (host, "", "")
            host = name.encode("idna").decode("ascii") + colon + port
        except UnicodeError:
            raise ValueError(f"invalid host in handle: {handle!r}") from None
    m = _HOST_RE.fullmatch(host)
    if m is None or (m.group("port") is not None and not 0 < int(m.group("port")) < 65536):
        raise ValueError(f"invalid host in handle: {handle!r}")
    return user, host


def _authority(url: str) -> str:
    """host[:port] of an http(s) URL, default port omitted, IPv6 bracketed."""
    return URL(url).host_port_subcomponent or ""


def self_link(jrd: Mapping[str, Any]) -> str | None:
    """The href of the ``rel=self`` link with an AS2 type, if any."""
    links = jrd.get("links")
    if not isinstance(links, list):
        return None
    for link in links:
        if (
            isinstance(link, dict)
            and link.get("rel") == "self"
            and isinstance(link.get("type"), str)
            and is_activitypub_content_type(link["type"])
            and isinstance(link.get("href"), str)
        ):
            return link["href"]
    return None


async def webfinger(
    fetcher: RemoteFetcher, user: str, host: str, scheme: str = "https"
) -> dict[str, Any]:
    """Fetch the JRD for ``acct:user@host``.  Raises FetchNotFound/FetchGone/FetchError."""
    url = URL.build(
        scheme=scheme,
        authority=host,
        path="/.well-known/webfinger",
        query={"resource": f"acct:{user}@{host}"},
    )
    return await fetcher.get_json(str(url), accept=JRD_ACCEPT)


async def resolve_handle(fetcher: RemoteFetcher, handle: str, scheme: str = "https") -> str:
    """WebFinger ``handle`` and return the ActivityPub actor URL (the ``self`` href).

    Raises ValueError for a malformed handle, FetchNotFound (404), FetchGone (410),
    FetchInvalid when the JRD has no AS2 ``self`` link, or another FetchError.
    (Mastodon's host-meta/LRDD fallback on 404 is not implemented.)
    """
    user, host = parse_handle(handle)
    jrd = await webfinger(fetcher, user, host, scheme)
    href = self_link(jrd)
    if href is None:
        raise FetchInvalid("JRD has no ActivityPub self link", url=f"acct:{user}@{host}")
    if URL(href).scheme not in ("http", "https"):
        raise FetchInvalid("self link is not an http(s) URL", url=f"acct:{user}@{host}")
    return href


def _split_subject(subject: object) -> tuple[str, str] | None:
    if not isinstance(subject, str):
        return None
    try:
        return parse_handle(subject)
    except ValueError:
        return None


async def verify_round_trip(
    fetcher: RemoteFetcher, actor: Mapping[str, Any], scheme: str = "https"
) -> bool:
    """Does WebFinger confirm ``actor``'s handle (Mastodon's ``verified_webfinger?``)?

    The handle is the FEP-2c59 ``webfinger`` property when present (Mastodon >= 4.6),
    else ``preferredUsername`` @ the actor id's host.  If the JRD ``subject`` names the
    same account, its self link must equal the actor id; if it names another account
    (split-domain setups), that account is looked up once more and must both keep its
    subject and point back at the actor id -- a second hop is refused.

    Returns False for definite negatives (mismatch, 404/410, unusable JRD, missing
    username).  Transient errors (timeouts, connection failures, other HTTP statuses)
    propagate as FetchError so callers can retry instead of marking the actor unverified.
    """
    actor_id = actor.get("id")
    if not isinstance(actor_id, str):
        return False
    declared = actor.get("webfinger")
    try:
        if isinstance(declared, str):
            user, host = parse_handle(declared)
        else:
            username = actor.get("preferredUsername")
            if not isinstance(username, str):
                return False
            user, host = parse_handle(f"{username}@{_authority(actor_id)}")
    except ValueError:
        return False

    try:
        jrd = await webfinger(fetcher, user, host, scheme)
        confirmed = _split_subject(jrd.get("subject"))
        if confirmed is None:
            return False
        if confirmed[0].lower() == user.lower() and confirmed[1] == host:
            return self_link(jrd) == actor_id
        # Split domain: one more lookup, which must be stable and point back.
        jrd2 = await webfinger(fetcher, confirmed[0], confirmed[1], scheme)
        again = _split_subject(jrd2.get("subject"))
        if again is None or again[0].lower() != confirmed[0].lower() or again[1] != confirmed[1]:
            return False
        return self_link(jrd2) == actor_id
    except (FetchNotFound, FetchGone, FetchInvalid):
        return False


def build_jrd(
    subject: str,
    actor_id: str,
    profile_url: str | None = None,
    aliases: Iterable[str] = (),
    *,
    subscribe_template: str | None = None,
) -> dict[str, Any]:
    """Our server's JRD, shaped like Mastodon's (§1.1): exactly one ``self`` link.

    ``subject`` gets an ``acct:`` prefix if it is a bare ``user@host``.
    """
    if "@" in subject and ":" not in subject.split("@", 1)[0]:
        subject = f"acct:{subject.lstrip('@')}"
    links: list[dict[str, str]] = []
    if profile_url:
        links.append({"rel": PROFILE_PAGE_REL, "type": "text/html", "href": profile_url})
    links.append({"rel": "self", "type": AS2_CONTENT_TYPE, "href": actor_id})
    if subscribe_template:
        links.append({"rel": SUBSCRIBE_REL, "template": subscribe_template})
    return {"subject": subject, "aliases": list(dict.fromkeys(aliases)), "links": links}
