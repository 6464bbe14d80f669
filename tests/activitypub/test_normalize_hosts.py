"""host_of cuts plain http(s) URLs itself (it runs several times per inbound activity); it must
answer exactly as the urlsplit-based reading for every input, odd ones included."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedserver.activitypub.normalize import _host_of_slow, host_of


def reference_host_of(uri: object) -> str | None:
    """The urlsplit reading, which host_of falls back to for anything unusual."""
    return _host_of_slow(uri) if uri and isinstance(uri, str) else None


@pytest.mark.parametrize("uri, host", [
    ("https://Social.Example/users/a", "social.example"),
    ("http://127.0.0.1:8080/inbox?x=1#f", "127.0.0.1:8080"),
    ("https://user@host.example/", "user@host.example"),
    ("HTTPS://HOST.example/x", "host.example"),
    ("https://[::1]:8443/x", "[::1]:8443"),
    ("https://[::1/x", None),
    (" https://host.example/x", "host.example"),
    ("https://ho\tst.example/x", "host.example"),
    ("ftp://host.example/x", None),
    ("https:///x", None),
    ("https://", None),
    ("", None),
    (None, None),
    (42, None),
])
def test_host_of_known_cases(uri, host):
    assert host_of(uri) == host == reference_host_of(uri)


_CHARS = st.sampled_from(list("ab.:/?#@[]% \t\n\x00\x7fHTPSXhtps1-é"))


@settings(max_examples=3000)
@given(st.one_of(
    st.text(_CHARS, max_size=25),
    st.builds(lambda prefix, tail: prefix + tail,
              st.sampled_from(["http://", "https://", "HTTP://", " http://", "http:/", "https://[", "http://a"]),
              st.text(_CHARS, max_size=20))))
def test_host_of_matches_urlsplit(uri):
    assert host_of(uri) == reference_host_of(uri)
