"""draft-cavage-12 HTTP Signatures: signing, Mastodon's verification rules, peer quirks."""

from __future__ import annotations

import base64
import email.utils
from urllib.parse import urlsplit

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from fedserver.activitypub.httpsig import (
    PendingSignature,
    SignatureError,
    _parse_signature_params,
    body_digest_header,
    extract_signature,
    sign_request,
)
from fedserver.activitypub.keys import (
    generate_rsa_private_key_pem,
    load_private_key,
    load_public_key,
    public_pem_from_private,
)
from fedserver.activitypub.rfc9421 import sign_request_rfc9421

NOW = 1_790_000_000.0
DATE = email.utils.formatdate(NOW, usegmt=True)
KEY_ID = "https://remote.example/users/alice#main-key"
BODY = b'{"type":"Follow","actor":"https://remote.example/users/alice"}'
INBOX = "https://local.example/users/bob/inbox"
PATH = "/users/bob/inbox"
RSA = 'algorithm="rsa-sha256"'


@pytest.fixture(scope="module")
def private_pem() -> str:
    return generate_rsa_private_key_pem()


@pytest.fixture(scope="module")
def public_pem(private_pem: str) -> str:
    return public_pem_from_private(private_pem)


@pytest.fixture(scope="module")
def other_public_pem() -> str:
    return public_pem_from_private(generate_rsa_private_key_pem())


def _path(url: str) -> str:
    """The raw path + query a server sees for `url`."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _sign(private_pem: str, method: str = "POST", url: str = INBOX, body=BODY, now=NOW, **kw):
    return sign_request(
        method, url, body=body, key_id=KEY_ID, private_key_pem=private_pem, now=now, **kw
    )


def _extract(headers, body=BODY, method="POST", path=PATH, **kw) -> PendingSignature:
    return extract_signature(method, path, headers, body, **{"now": NOW, **kw})


def _hand_signed(private_pem: str, lines: list[tuple[str, str]], params: str, **headers) -> dict:
    """Sign hand-built `name: value` lines, written here independently of the module.

    Returns `headers` (keyword names, `_` for `-`) plus the Signature header.
    """
    message = "\n".join(f"{name}: {value}" for name, value in lines).encode()
    sig = load_private_key(private_pem).sign(message, padding.PKCS1v15(), hashes.SHA256())
    signature = f'keyId="{KEY_ID}",{params},signature="{base64.b64encode(sig).decode()}"'
    return {**{k.replace("_", "-"): v for k, v in headers.items()}, "Signature": signature}


# --- round trips -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", [INBOX, INBOX + "?page=true&x=a%20b", "https://local.example:8443/inbox"]
)
@pytest.mark.parametrize("key_id", [KEY_ID, "https://remote.example/users/alice"])
def test_signed_post_verifies_with_the_senders_key(private_pem, public_pem, url, key_id):
    headers = sign_request(
        "POST", url, body=BODY, key_id=key_id, private_key_pem=private_pem, now=NOW
    )
    pending = _extract(headers, path=_path(url))
    pending.verify(public_pem)
    assert (pending.key_id, pending.scheme, pending.algorithm) == (key_id, "cavage", "rsa-sha256")
    assert pending.created == NOW


def test_signed_post_has_the_headers_mastodon_expects(private_pem):
    headers = _sign(private_pem, url="https://local.example:8443/inbox", body=b"{}", now=784111777)
    assert headers["Host"] == "local.example:8443"
    assert headers["Date"] == "Sun, 06 Nov 1994 08:49:37 GMT"
    assert headers["Digest"] == "SHA-256=RBNvo1WzZ4oRRq0W9+hknpT7T8If536DEMBg9hyq/4o="
    assert headers["Content-Type"] == "application/activity+json"
    assert RSA in headers["Signature"]
    assert 'headers="(request-target) host date digest content-type"' in headers["Signature"]


def test_default_https_port_is_left_out_of_host(private_pem):
    assert _sign(private_pem, url="https://local.example:443/inbox")["Host"] == "local.example"


@pytest.mark.parametrize("url", [INBOX[:-5] + "outbox", INBOX[:-5] + "outbox?page=2"])
def test_signed_get_covers_host_and_accept(private_pem, public_pem, url):
    headers = _sign(private_pem, "GET", url, None, accept="application/activity+json")
    assert 'headers="(request-target) host date accept"' in headers["Signature"]
    assert "Digest" not in headers
    _extract(headers, None, "GET", _path(url)).verify(public_pem)


def test_percent_encoded_path_is_signed_raw(private_pem, public_pem):
    url = "https://local.example/users/a%20b/outbox?q=%C3%A9"
    headers = _sign(private_pem, "GET", url, None)
    _extract(headers, None, "GET", "/users/a%20b/outbox?q=%C3%A9").verify(public_pem)
    # The decoded path (aiohttp request.path) is not what was signed.
    pending = _extract(headers, None, "GET", "/users/a b/outbox?q=é")
    with pytest.raises(SignatureError, match="signature mismatch"):
        pending.verify(public_pem)


def test_hs2019_with_rsa_key_verifies(private_pem, public_pem):
    digest = body_digest_header(BODY)
    lines = [("(request-target)", f"post {PATH}"), ("host", "local.example"), ("date", DATE),
             ("digest", digest)]
    params = 'algorithm="hs2019",headers="(request-target) host date digest"'
    headers = _hand_signed(
        private_pem, lines, params, Host="local.example", Date=DATE, Digest=digest
    )
    pending = _extract(headers)
    assert pending.algorithm == "hs2019"
    pending.verify(public_pem)


def test_missing_algorithm_is_treated_as_hs2019(private_pem, public_pem):
    lines = [("(request-target)", "get /users/bob"), ("host", "local.example"), ("date", DATE)]
    params = 'headers="(request-target) host date"'
    headers = _hand_signed(private_pem, lines, params, Host="local.example", Date=DATE)
    pending = _extract(headers, None, "GET", "/users/bob")
    assert pending.algorithm == "hs2019"
    pending.verify(public_pem)


def test_hs2019_created_pseudo_header_replaces_date(private_pem, public_pem):
    created = int(NOW) - 10
    lines = [("(request-target)", "get /users/bob"), ("host", "local.example"),
             ("(created)", str(created))]
    params = f'algorithm="hs2019",created={created},headers="(request-target) host (created)"'
    headers = _hand_signed(private_pem, lines, params, Host="local.example")
    pending = _extract(headers, None, "GET", "/users/bob")
    assert pending.created == created
    pending.verify(public_pem)


def test_ed25519_key_signs_and_verifies_as_hs2019():
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    headers = _sign(pem)
    assert 'algorithm="hs2019"' in headers["Signature"]
    pending = _extract(headers)
    pending.verify(key.public_key())
    with pytest.raises(SignatureError, match="mismatch"):
        pending.verify(ed25519.Ed25519PrivateKey.generate().public_key())


def test_request_target_without_query_is_accepted_like_mastodon(private_pem, public_pem):
    # Senders before Mastodon 4.2.4 signed (request-target) without the query string.
    headers = _sign(private_pem, "GET", INBOX, None)
    _extract(headers, None, "GET", PATH + "?page=1").verify(public_pem)


def test_bovine_lowercase_digest_is_accepted(private_pem, public_pem):
    digest = "sha-256=" + body_digest_header(BODY).split("=", 1)[1]
    ctype = "application/activity+json"
    lines = [("(request-target)", f"post {PATH}"), ("host", "local.example:8080"), ("date", DATE),
             ("digest", digest), ("content-type", ctype)]
    params = f'{RSA},headers="(request-target) host date digest content-type"'
    headers = _hand_signed(private_pem, lines, params,
                           host="local.example:8080", date=DATE, digest=digest, content_type=ctype)
    _extract(headers).verify(public_pem)


def test_digest_with_several_algorithms_uses_sha256(private_pem, public_pem):
    digest = "SHA-512=" + base64.b64encode(b"x" * 64).decode() + "," + body_digest_header(BODY)
    lines = [("(request-target)", f"post {PATH}"), ("host", "local.example"), ("date", DATE),
             ("digest", digest)]
    params = f'{RSA},headers="(request-target) host date digest"'
    headers = _hand_signed(
        private_pem, lines, params, Host="local.example", Date=DATE, Digest=digest
    )
    _extract(headers).verify(public_pem)


def test_aiohttp_headers_are_looked_up_case_insensitively(private_pem, public_pem):
    upper = {name.upper(): value for name, value in _sign(private_pem).items()}
    _extract(CIMultiDictProxy(CIMultiDict(upper))).verify(public_pem)


def test_verify_accepts_a_key_object(private_pem, public_pem):
    _extract(_sign(private_pem)).verify(load_public_key(public_pem))


def test_draft_cavage_appendix_c2_test_vector():
    """draft-cavage-12 C.2 (basic test), with the draft's own 1024-bit test key."""
    public_pem = (
        "-----BEGIN PUBLIC KEY-----\n"
        "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDCFENGw33yGihy92pDjZQhl0C3\n"
        "6rPJj+CvfSC8+q28hxA161QFNUd13wuCTUcq0Qd2qsBe/2hFyc2DCJJg0h1L78+6\n"
        "Z4UMR7EOcpfdUE9Hf3m/hs+FUR45uBJeDK1HSFHD8bHKD6kv8FPGfJTotc+2xjJw\n"
        "oYi+1hqp1fIekaxsyQIDAQAB\n"
        "-----END PUBLIC KEY-----\n"
    )
    headers = {
        "Host": "example.com",
        "Date": "Sun, 05 Jan 2014 21:31:40 GMT",
        "Content-Type": "application/json",
        "Digest": "SHA-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=",
        "Content-Length": "18",
        "Signature": 'keyId="Test",algorithm="rsa-sha256",headers="(request-target) host date",'
        'signature="qdx+H7PHHDZgy4y/Ahn9Tny9V3GP6YgBPyUXMmoxWtLbHpUnXS2mg2+SbrQDMCJypxBLSPQR2aAjn7'
        "ndmw2iicw3HMbe8VfEdKFYRqzic+efkb3nndiv/x1xSHDJWeSWkx3ButlYSuBskLu6kd9Fswtemr3lgdDEmn0"
        '4swr2Os0="',
    }
    vector = dict(body=b'{"hello": "world"}', path="/foo?param=value&pet=dog", now=1388957500)
    _extract(headers, **vector, require_digest=False).verify(public_pem)
    # Mastodon's rule: a POST must sign its digest; this vector does not.
    with pytest.raises(SignatureError, match="digest is not signed"):
        _extract(headers, **vector)


# --- rejections --------------------------------------------------------------------------


def test_unsigned_request_is_rejected():
    with pytest.raises(SignatureError, match="missing Signature header"):
        _extract({"Host": "local.example"})


@pytest.mark.parametrize(
    "value",
    [
        "garbage",
        'keyId="a" algorithm="rsa-sha256"',
        'keyId="a,signature="x"',
        'keyId="a",keyId="b",signature="eA=="',
    ],
)
def test_malformed_signature_header_is_rejected(value):
    with pytest.raises(SignatureError, match="malformed Signature header"):
        _extract({"Host": "h", "Signature": value}, None, "GET", "/")


@pytest.mark.parametrize(
    "value, key_id",
    [
        ('keyId="https://r.example/a\\"b#k",signature="eA=="', 'https://r.example/a"b#k'),
        ('keyId="https://r.example/a\\\\b#k",signature="eA=="', "https://r.example/a\\b#k"),
        ('keyId=https://r.example/a#k, signature="eA=="', "https://r.example/a#k"),
        ('Signature keyId="k",signature="eA=="', "k"),
    ],
)
def test_signature_parameters_are_parsed_and_unescaped(value, key_id):
    """Quoted values lose their \\-escapes (RFC 7230 3.2.6), bare tokens are taken as they are."""
    assert _parse_signature_params(value) == {"keyid": key_id, "signature": "eA=="}


def test_signature_without_key_id_is_rejected():
    with pytest.raises(SignatureError, match="no keyId"):
        _extract({"Signature": 'headers="host",signature="eA=="'}, None, "GET", "/")


def test_unsupported_algorithm_is_rejected(private_pem):
    headers = _sign(private_pem)
    headers["Signature"] = headers["Signature"].replace("rsa-sha256", "rsa-sha512")
    with pytest.raises(SignatureError, match="unsupported signature algorithm"):
        _extract(headers)


def test_body_tampered_after_signing_fails_the_digest(private_pem):
    with pytest.raises(SignatureError, match="Digest does not match"):
        _extract(_sign(private_pem), BODY.replace(b"Follow", b"Delete"))


def test_replaced_digest_header_fails_the_signature(private_pem, public_pem):
    headers = _sign(private_pem)
    tampered = BODY.replace(b"Follow", b"Delete")
    headers["Digest"] = body_digest_header(tampered)
    pending = _extract(headers, tampered)
    with pytest.raises(SignatureError, match="signature mismatch"):
        pending.verify(public_pem)


def _post_without_signed_digest(private_pem: str, **headers) -> dict:
    lines = [("(request-target)", f"post {PATH}"), ("host", "local.example"), ("date", DATE)]
    params = f'{RSA},headers="(request-target) host date"'
    return _hand_signed(private_pem, lines, params, Host="local.example", Date=DATE, **headers)


def test_post_without_digest_header_is_rejected(private_pem):
    headers = _post_without_signed_digest(private_pem)
    with pytest.raises(SignatureError, match="Digest header missing"):
        _extract(headers)
    # The server may relax this for peers that never send a digest.
    _extract(headers, require_digest=False)


def test_post_with_unsigned_digest_is_rejected(private_pem):
    headers = _post_without_signed_digest(private_pem, Digest=body_digest_header(BODY))
    with pytest.raises(SignatureError, match="digest is not signed"):
        _extract(headers)


@pytest.mark.parametrize(
    ("digest", "reason"),
    [
        ("SHA-512=" + base64.b64encode(b"x" * 64).decode(), "only SHA-256"),
        ("SHA-256=***", "not valid base64"),
        ("SHA-256=" + base64.b64encode(b"short").decode(), "not 32 bytes"),
    ],
)
def test_bad_digest_values_are_rejected(private_pem, digest, reason):
    headers = _sign(private_pem)
    headers["Digest"] = digest
    with pytest.raises(SignatureError, match=reason):
        _extract(headers)


@pytest.mark.parametrize(("offset", "reason"), [(-66 * 60, "too old"), (66 * 60, "future")])
def test_date_outside_the_window_is_rejected(private_pem, offset, reason):
    with pytest.raises(SignatureError, match=reason):
        _extract(_sign(private_pem, now=NOW + offset))


@pytest.mark.parametrize("offset", [-64 * 60, 64 * 60])
def test_date_inside_the_window_is_accepted(private_pem, public_pem, offset):
    _extract(_sign(private_pem, now=NOW + offset)).verify(public_pem)


def test_malformed_date_is_rejected(private_pem):
    headers = _sign(private_pem)
    headers["Date"] = "yesterday"
    with pytest.raises(SignatureError, match="malformed Date"):
        _extract(headers)


def test_signature_by_another_key_is_a_mismatch(private_pem, other_public_pem):
    pending = _extract(_sign(private_pem))
    with pytest.raises(SignatureError, match="signature mismatch"):
        pending.verify(other_public_pem)


def test_request_sent_to_another_path_is_a_mismatch(private_pem, public_pem):
    pending = _extract(_sign(private_pem), path="/users/carol/inbox")
    with pytest.raises(SignatureError, match="signature mismatch"):
        pending.verify(public_pem)


def test_get_without_signed_host_is_rejected(private_pem):
    lines = [("(request-target)", "get /users/bob"), ("date", DATE)]
    params = f'{RSA},headers="(request-target) date"'
    headers = _hand_signed(private_pem, lines, params, Host="local.example", Date=DATE)
    with pytest.raises(SignatureError, match="host is not signed"):
        _extract(headers, None, "GET", "/users/bob")


def test_signature_without_date_or_created_is_rejected(private_pem):
    lines = [("(request-target)", "get /users/bob"), ("host", "local.example")]
    params = f'{RSA},headers="(request-target) host"'
    headers = _hand_signed(private_pem, lines, params, Host="local.example")
    with pytest.raises(SignatureError, match=r"neither date nor \(created\)"):
        _extract(headers, None, "GET", "/users/bob")


def test_created_pseudo_header_with_rsa_sha256_is_rejected(private_pem):
    lines = [("(request-target)", "get /"), ("host", "h"), ("(created)", str(int(NOW)))]
    params = f'{RSA},created={int(NOW)},headers="(request-target) host (created)"'
    headers = _hand_signed(private_pem, lines, params, Host="h")
    with pytest.raises(SignatureError, match="only be signed with hs2019"):
        _extract(headers, None, "GET", "/")


def test_signed_header_missing_from_request_is_rejected(private_pem):
    headers = _sign(private_pem, "GET", INBOX, None, accept="application/activity+json")
    del headers["Accept"]
    with pytest.raises(SignatureError, match="signed header accept is missing"):
        _extract(headers, None, "GET")


def test_rsa_sha256_signature_cannot_be_checked_with_an_ed25519_key(private_pem):
    pending = _extract(_sign(private_pem))
    with pytest.raises(SignatureError, match="cannot be used with an Ed25519 key"):
        pending.verify(ed25519.Ed25519PrivateKey.generate().public_key())


def test_pending_signature_repr_hides_the_signing_strings(private_pem):
    assert "digest:" not in repr(_extract(_sign(private_pem)))


# --- properties --------------------------------------------------------------------------

_CHARS = [*"abcXYZ019-._~!$&'()*+,;=:@", "%20", "%2F", "%C3%A9", "%25"]
_segment = st.lists(st.sampled_from(_CHARS), min_size=1, max_size=8).map("".join)
_paths = st.lists(_segment, min_size=1, max_size=4).map(lambda s: "/" + "/".join(s))
_queries = st.one_of(st.just(""), _segment.map(lambda q: "?" + q))
_SIGNERS = {"cavage": sign_request, "rfc9421": sign_request_rfc9421}
_settings = settings(max_examples=40, deadline=None)


@pytest.mark.parametrize("scheme", _SIGNERS)
@_settings
@given(body=st.binary(max_size=2048), path=_paths, query=_queries)
def test_any_signed_post_verifies(private_pem, public_pem, scheme, body, path, query):
    url = "https://local.example" + path + query
    sign = _SIGNERS[scheme]
    headers = sign("POST", url, body=body, key_id=KEY_ID, private_key_pem=private_pem, now=NOW)
    pending = _extract(headers, body, path=path + query)
    assert pending.scheme == scheme
    pending.verify(public_pem)


@pytest.mark.parametrize("scheme", _SIGNERS)
@_settings
@given(
    body=st.binary(min_size=1, max_size=2048),
    where=st.integers(min_value=0),
    flip=st.integers(1, 255),
)
def test_any_flipped_body_byte_is_rejected(private_pem, scheme, body, where, flip):
    sign = _SIGNERS[scheme]
    headers = sign("POST", INBOX, body=body, key_id=KEY_ID, private_key_pem=private_pem, now=NOW)
    tampered = bytearray(body)
    tampered[where % len(body)] ^= flip
    with pytest.raises(SignatureError, match="[Dd]igest does not match"):
        _extract(headers, bytes(tampered))
