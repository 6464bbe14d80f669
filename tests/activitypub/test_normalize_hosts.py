"""host_of is the one reading of a URL's host: canonical (lower-case, IDNA, no trailing dot, no
default port), None with user info. It cuts plain http(s) URLs itself (it runs several times per
inbound activity) and must answer exactly as the yarl-based reading, which is how the fetcher
reads the URL it connects to, for every input, odd ones included."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedserver.activitypub.domains import (InvalidDomain, _authority_parsed, block_keys, covered_by, parse_domain,
                                           stored_authority)
from fedserver.activitypub.normalize import host_of, same_origin


def reference_host_of(uri: object) -> str | None:
    """The yarl reading, which host_of falls back to for anything unusual."""
    return _authority_parsed(uri) if uri and isinstance(uri, str) else None


@pytest.mark.parametrize("uri, host", [
    ("https://Social.Example/users/a", "social.example"),
    ("http://127.0.0.1:8080/inbox?x=1#f", "127.0.0.1:8080"),
    ("https://user@host.example/", None),
    ("http://x@blocked.example/users/eve", None),
    ("http://:@blocked.example/users/eve", None),
    ("http://x:y@blocked.example/users/eve", None),
    ("HTTPS://HOST.example/x", "host.example"),
    ("https://host.example./x", "host.example"),
    ("https://host.example.:443/x", "host.example"),
    ("https://host.example:443/x", "host.example"),
    ("http://host.example:80/x", "host.example"),
    ("http://host.example:080/x", "host.example"),
    ("http://host.example:443/x", "host.example:443"),
    ("https://bücher.example/x", "xn--bcher-kva.example"),
    ("https://BÜCHER.example/x", "xn--bcher-kva.example"),
    ("https://[::1]:8443/x", "[::1]:8443"),
    ("https://[0:0::1]/x", "[::1]"),
    ("https://[::1/x", None),
    (" https://host.example/x", "host.example"),
    ("https://ho\tst.example/x", "host.example"),
    ("https://exa mple.com/x", None),
    ("https://a..example/x", None),
    ("https://%65xample.com/x", None),
    ("https://host.example:0/x", None),
    ("https://host.example:99999/x", None),
    ("ftp://host.example/x", None),
    ("https:///x", None),
    ("https://", None),
    ("", None),
    (None, None),
    (42, None),
])
def test_host_of_known_cases(uri, host):
    assert host_of(uri) == host == reference_host_of(uri)


def test_same_origin_compares_canonical_hosts():
    assert same_origin("https://Example.com./a", "https://example.com:443/b")
    assert not same_origin("https://x@example.com/a", "https://example.com/b")
    assert not same_origin("https://example.com/a", "http://example.com:8080/b")


_CHARS = st.sampled_from(list("ab.:/?#@[]% \t\n\x00\x7fHTPSXhtps10-é_"))


@settings(max_examples=3000)
@given(st.one_of(
    st.text(_CHARS, max_size=25),
    st.builds(lambda prefix, tail: prefix + tail,
              st.sampled_from(["http://", "https://", "HTTP://", " http://", "http:/", "https://[", "http://a",
                               "https://a.b:", "http://x@"]),
              st.text(_CHARS, max_size=20))))
def test_host_of_matches_the_fetchers_parser(uri):
    assert host_of(uri) == reference_host_of(uri)


@pytest.mark.parametrize("text, domain", [
    ("Spam.Example", "spam.example"),
    ("  spam.example.  ", "spam.example"),
    ("Bücher.Example", "xn--bcher-kva.example"),
    ("spam.example:443", "spam.example"),
    ("spam.example:80", "spam.example"),
    ("127.0.0.1:8080", "127.0.0.1:8080"),
    ("[::1]:8080", "[::1]:8080"),
    ("localhost", "localhost"),
])
def test_parse_domain_gives_the_canonical_form(text, domain):
    assert parse_domain(text) == domain


@pytest.mark.parametrize("text, reason", [
    ("https://example.com/", "is a URL"),
    ("example.com/path", "is a URL"),
    ("exa mple.com", "spaces"),
    ("x@example.com", "user info"),
    ("example..com", "empty label"),
    (".example.com", "empty label"),
    ("", "give a domain"),
    ("   ", "give a domain"),
    ("exa%6dple.com", "not a valid domain"),
    ("example.com:99999", "not a valid domain"),
    ("exa*mple.com", "not a valid domain"),
])
def test_parse_domain_refuses_what_is_not_a_domain(text, reason):
    with pytest.raises(InvalidDomain, match=reason):
        parse_domain(text)


def test_a_block_covers_every_subdomain_and_nothing_else():
    assert covered_by("example.com", "example.com")
    assert covered_by("a.example.com", "example.com")
    assert covered_by("a.b.example.com:8443", "example.com")
    assert covered_by("a.example.com:8443", "example.com:8443")
    assert not covered_by("a.example.com:8080", "example.com:8443")
    assert not covered_by("notexample.com", "example.com")
    assert not covered_by("example.com.evil", "example.com")
    assert not covered_by("example.com", "a.example.com")
    assert block_keys("127.0.0.1:8080") == ["127.0.0.1:8080", "127.0.0.1"]
    assert not covered_by("127.0.0.1:8080", "0.0.1")


def test_stored_hosts_from_before_normalising_are_read_leniently():
    assert stored_authority("x@blocked.example") == "blocked.example"
    assert stored_authority("blocked.example:80") == "blocked.example"
    assert stored_authority("Blocked.Example.") == "blocked.example"
