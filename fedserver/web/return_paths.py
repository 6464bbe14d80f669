"""The one check for every place a page sends people back to after a form (`next=`, `back=`): only a
path on this site, else a default. An open redirect would let a link on another site send people
anywhere after signing in, with this site's name on the way."""
from __future__ import annotations

import unicodedata
from urllib.parse import unquote, urlsplit

MAX_LENGTH = 2048


def return_path(value: object, default: str = "/home") -> str:
    """value when it is a path on this origin, otherwise default.

    Browsers parse a Location by the WHATWG URL standard, which is more forgiving than it looks:
    it drops tabs and newlines anywhere (`/\\t/evil.example` becomes `//evil.example`, another
    host), strips leading and trailing C0 controls and spaces, and reads `\\` as `/` (`/\\evil.example`).
    So anything with a control character, whitespace or a backslash is refused outright rather than
    cleaned, and what remains must parse as a bare path: no scheme, no host, one leading slash.
    """
    if not isinstance(value, str) or not value or len(value) > MAX_LENGTH:
        return default
    if _unsafe(value) or not value.startswith("/") or value.startswith("//"):
        return default
    try:
        parts = urlsplit(value)
    except ValueError:
        return default
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or parts.path.startswith("//"):
        return default
    # The same once more on the percent-decoded path: a proxy or a later redirect that decodes it
    # must not find `//host` or a backslash there either (`/%2F%2Fevil.example`, `/%5Cevil.example`).
    decoded = unquote(parts.path)
    if _unsafe(decoded) or decoded.startswith("//"):
        return default
    return value


def _unsafe(text: str) -> bool:
    return any(char.isspace() or unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp") or char == "\\"
               for char in text)
