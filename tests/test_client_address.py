"""Which address a request comes from, behind trusted proxies and not: the rules every per-address
limit and log line relies on (the end-to-end check is tests/e2e/test_sign_in_throttling.py)."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fedserver.client_address import resolve, throttle_key

PROXIES = ("127.0.0.1", "10.0.0.0/8")
headers = st.lists(st.text(alphabet="0123456789.:, abcdef[]", max_size=40), max_size=3)


@given(headers)
def test_a_peer_that_is_not_a_trusted_proxy_is_its_own_address_whatever_it_sends(sent):
    assert resolve("198.51.100.9", sent, PROXIES) == "198.51.100.9"
    assert resolve("127.0.0.1", sent, ()) == "127.0.0.1"


@given(headers)
def test_what_the_client_wrote_left_of_the_proxy_hop_cannot_change_the_address(sent):
    # nginx appends the address it received the request from to whatever the client sent.
    forwarded = [*sent, "203.0.113.5"]
    assert resolve("127.0.0.1", forwarded, PROXIES) == "203.0.113.5"


def test_the_right_most_hop_that_is_not_a_trusted_proxy_is_the_client():
    assert resolve("127.0.0.1", ["1.1.1.1, 203.0.113.5, 10.1.2.3"], PROXIES) == "203.0.113.5"
    assert resolve("127.0.0.1", ["1.1.1.1", "203.0.113.5"], PROXIES) == "203.0.113.5"  # repeated headers
    assert resolve("127.0.0.1", [], PROXIES) == "127.0.0.1"
    assert resolve("::ffff:127.0.0.1", ["[2001:db8::7]:4433"], PROXIES) == "2001:db8::7"
    # A hop a trusted proxy wrote that is not an address: the last vouched-for address stands.
    assert resolve("127.0.0.1", ["203.0.113.5, junk, 10.1.2.3"], PROXIES) == "10.1.2.3"


def test_ipv6_clients_are_limited_by_their_64_network():
    assert throttle_key("2001:db8:1:2:aaaa::1") == throttle_key("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert throttle_key("203.0.113.5") == "203.0.113.5"
