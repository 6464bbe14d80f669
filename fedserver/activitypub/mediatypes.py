"""ActivityStreams media types, Accept negotiation and the public collection.

Peers send a surprising variety of ``Accept`` headers (Mastodon alone has shipped at
least three, see federation.md §2.1), and ad-hoc substring matching has broken real
servers (p3k issue cited there).  This module therefore parses media ranges per
RFC 9110 §12.5.1: comma-separated ranges, ``;``-separated parameters, quoted-string
values (which may themselves contain ``,`` and ``;``) and ``q`` weights.

Parsing is deliberately lenient about malformed input (peers are sloppy) but never
*guesses* in favour of ActivityPub: unparseable ranges are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "AS2_ACCEPT",
    "AS2_CONTENT_TYPE",
    "AS_CONTEXT",
    "AS_PUBLIC",
    "LD_JSON",
    "MediaRange",
    "is_activitypub_content_type",
    "is_public_address",
    "parse_accept",
    "parse_media_type",
    "wants_activitypub",
]

AS2_CONTENT_TYPE = "application/activity+json"
LD_JSON = "application/ld+json"
AS_CONTEXT = "https://www.w3.org/ns/activitystreams"
AS2_ACCEPT = (
    'application/ld+json; profile="https://www.w3.org/ns/activitystreams", '
    "application/activity+json"
)
AS_PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
# Mastodon's TagManager treats all three spellings as the public collection (§4.0).
_PUBLIC_FORMS = frozenset({AS_PUBLIC, "as:Public", "Public"})

_AP_TYPES = frozenset({AS2_CONTENT_TYPE, LD_JSON})


@dataclass(frozen=True)
class MediaRange:
    """One parsed media range.  ``type``/``subtype`` and parameter names are lowercased;
    parameter values keep their case (profile IRIs are case-sensitive)."""

    type: str
    subtype: str
    params: dict[str, str] = field(default_factory=dict)
    q: float = 1.0
    index: int = 0  # position in the header, used to break q ties

    @property
    def essence(self) -> str:
        return f"{self.type}/{self.subtype}"

    def specificity(self) -> int:
        """2 for ``type/sub``, 1 for ``type/*``, 0 for ``*/*``."""
        if self.type == "*":
            return 0
        if self.subtype == "*":
            return 1
        return 2


def _split_outside_quotes(s: str, sep: str) -> list[str]:
    """Split on ``sep`` except inside quoted-strings (honouring backslash escapes)."""
    parts: list[str] = []
    buf: list[str] = []
    in_quotes = False
    escaped = False
    for ch in s:
        if in_quotes:
            buf.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_quotes = False
        elif ch == '"':
            in_quotes = True
            buf.append(ch)
        elif ch == sep:
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    parts.append("".join(buf))
    return parts


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        out: list[str] = []
        escaped = False
        for ch in value[1:-1]:
            if escaped:
                out.append(ch)
                escaped = False
            elif ch == "\\":
                escaped = True
            else:
                out.append(ch)
        return "".join(out)
    return value


def _parse_q(raw: str) -> float | None:
    try:
        q = float(raw)
    except ValueError:
        return None
    if q != q:  # NaN
        return None
    return min(max(q, 0.0), 1.0)


def _parse_one(raw: str, index: int) -> MediaRange | None:
    pieces = _split_outside_quotes(raw, ";")
    essence = pieces[0].strip().lower()
    if essence.count("/") != 1:
        return None
    mtype, subtype = (p.strip() for p in essence.split("/"))
    if not mtype or not subtype or (mtype == "*" and subtype != "*"):
        return None
    params: dict[str, str] = {}
    q = 1.0
    for piece in pieces[1:]:
        if "=" not in piece:
            continue
        name, _, value = piece.partition("=")
        name = name.strip().lower()
        if not name:
            continue
        if name == "q":
            parsed = _parse_q(_unquote(value))
            if parsed is not None:
                q = parsed
            # RFC 9110: parameters after q are accept-ext, not media-type params.
            break
        params[name] = _unquote(value)
    return MediaRange(mtype, subtype, params, q, index)


def parse_accept(header: str | None) -> list[MediaRange]:
    """Parse an ``Accept`` header into media ranges (in header order)."""
    if not header:
        return []
    ranges: list[MediaRange] = []
    for raw in _split_outside_quotes(header, ","):
        if not raw.strip():
            continue
        parsed = _parse_one(raw, len(ranges))
        if parsed is not None:
            ranges.append(parsed)
    return ranges


def parse_media_type(content_type: str | None) -> MediaRange | None:
    """Parse a single ``Content-Type`` value; None when absent, malformed or a list."""
    ranges = parse_accept(content_type)
    if len(ranges) != 1:
        return None
    mr = ranges[0]
    if mr.type == "*" or mr.subtype == "*":
        return None
    return mr


def _profiles(mr: MediaRange) -> list[str]:
    # The profile parameter is a space-separated list of IRIs (JSON-LD 1.1 §9.1).
    return mr.params.get("profile", "").split()


def is_activitypub_content_type(content_type: str | None) -> bool:
    """True for ``application/activity+json`` or ``application/ld+json`` whose profile list
    contains the AS2 IRI -- the only two Mastodon accepts since 4.2.5 (CVE-2024-23832 fix,
    federation.md §0 rule 1).  Extra parameters such as ``charset`` are ignored."""
    mr = parse_media_type(content_type)
    if mr is None:
        return False
    if mr.essence == AS2_CONTENT_TYPE:
        return True
    return mr.essence == LD_JSON and AS_CONTEXT in _profiles(mr)


def _html_q(ranges: list[MediaRange]) -> tuple[float, MediaRange | None]:
    """q that ``text/html`` receives: taken from the most specific matching range."""
    best: MediaRange | None = None
    for mr in ranges:
        if mr.type == "*" or (mr.type == "text" and mr.subtype in ("*", "html")):
            if best is None or mr.specificity() > best.specificity():
                best = mr
    return (best.q, best) if best is not None else (0.0, None)


def wants_activitypub(accept_header: str | None) -> bool:
    """Should a content-negotiated URL answer with AS2 JSON rather than HTML?

    True when ``application/activity+json`` or ``application/ld+json`` (any profile, or
    none -- §2.1) is acceptable (q > 0) and is preferred over ``text/html``:

    * higher q wins;
    * on equal q an explicit AP type beats html that only matched ``*/*`` / ``text/*``;
    * on equal q between explicit types the one listed first wins (Rails, which
      Mastodon uses, resolves ties by order as well).

    Wildcards alone never select ActivityPub: ``*/*`` is what browsers and curl send.
    """
    ranges = parse_accept(accept_header)
    ap = [mr for mr in ranges if mr.essence in _AP_TYPES and mr.q > 0]
    if not ap:
        return False
    best_ap = max(ap, key=lambda mr: (mr.q, -mr.index))
    html_q, html_mr = _html_q(ranges)
    if html_mr is None or html_q <= 0:
        return True
    if best_ap.q != html_q:
        return best_ap.q > html_q
    if html_mr.specificity() < 2:
        return True
    return best_ap.index < html_mr.index


def is_public_address(s: object) -> bool:
    """Is ``s`` one of the spellings of the public collection (§4.0)?"""
    return isinstance(s, str) and s in _PUBLIC_FORMS
