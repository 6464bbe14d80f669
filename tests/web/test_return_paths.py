"""Property: whatever a link puts in `next=` or `back=`, the path we redirect to resolves, the way a
browser resolves a Location (WHATWG URL parsing), to this site. The end-to-end checks with the real
server and Chromium are tests/e2e/test_return_paths.py and tests/browser."""
from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

from hypothesis import example, given
from hypothesis import strategies as st

from fedserver.web.return_paths import return_path

SITE = "https://site.example/posts/1"


def as_a_browser_resolves(location: str) -> str:
    """The host a browser reaches: WHATWG strips leading/trailing C0 controls and spaces, removes
    every tab and newline, and treats a backslash like a slash in special (http/https) URLs."""
    cleaned = re.sub(r"[\t\n\r]", "", location.strip("".join(map(chr, range(0x21)))))
    cleaned = cleaned.replace("\\", "/")
    return urlsplit(urljoin(SITE, cleaned)).netloc


ALPHABET = st.sampled_from(list("/\\:.@%?#&=abcevil") + ["\t", "\n", "\r", " ", "\x00", "\x0b", "\u00a0",
                                                           "\u2028", "%09", "%0a", "%2f", "%5c", "https:", "//"])


@given(st.lists(ALPHABET, max_size=12).map("".join))
@example("/%09/evil.example")
@example("/\t/evil.example")
@example("//evil.example")
@example("/\\evil.example")
@example("https://evil.example")
@example(" //evil.example")
@example("\t//evil.example")
def test_a_return_path_always_resolves_to_this_site(value):
    result = return_path(value, "/home")
    assert result == "/home" or result == value
    assert as_a_browser_resolves(result) == "site.example", (value, result)


def test_paths_on_this_site_are_kept():
    for path in ("/settings", "/@alice", "/@alice/123?x=//y#z", "/admin#reports", "/tags/caf%C3%A9", "/"):
        assert return_path(path, "/home") == path
