"""RFC 9421 HTTP Message Signatures: round trips, Mastodon's inbound rules, and
interoperability with the independent `http-message-signatures` library and RFC vectors."""

from __future__ import annotations

import base64
import time

import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding
from http_message_signatures import (
    HTTPMessageSigner,
    HTTPMessageVerifier,
    MappingKeyResolver,
    algorithms,
)

from fedserver.activitypub.httpsig import PendingSignature, SignatureError, extract_signature
from fedserver.activitypub.keys import (
    generate_rsa_private_key_pem,
    load_private_key,
    load_public_key,
    public_pem_from_private,
)
from fedserver.activitypub.rfc9421 import content_digest_header, sign_request_rfc9421

NOW = 1_790_000_000.0
KEY_ID = "https://remote.example/users/alice#main-key"
BODY = b'{"type":"Create","actor":"https://remote.example/users/alice"}'
INBOX = "https://local.example/users/bob/inbox"
PATH = "/users/bob/inbox"
PARAMS = f';created={int(NOW)};keyid="{KEY_ID}"'
DIGEST = content_digest_header(BODY)


@pytest.fixture(scope="module")
def private_pem() -> str:
    return generate_rsa_private_key_pem()


@pytest.fixture(scope="module")
def public_pem(private_pem: str) -> str:
    return public_pem_from_private(private_pem)


@pytest.fixture(scope="module")
def ed_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


def _pem(key: ed25519.Ed25519PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _sign(private_pem: str, method="POST", url=INBOX, body=BODY, now=NOW) -> dict[str, str]:
    return sign_request_rfc9421(
        method, url, body=body, key_id=KEY_ID, private_key_pem=private_pem, now=now
    )


def _extract(headers, body=BODY, method="POST", path=PATH, **kw) -> PendingSignature:
    return extract_signature(method, path, headers, body, **{"now": NOW, **kw})


def _hand_signed(private_pem, components, params, method="POST", **headers) -> dict[str, str]:
    """Build an RFC 9421 signature by hand (independently of the module) for odd inputs.

    The request goes to https://local.example/users/bob/inbox; `headers` use `_` for `-`.
    """
    headers = {"Host": "local.example", **{k.replace("_", "-"): v for k, v in headers.items()}}
    values = {
        "@method": method,
        "@path": PATH,
        "@authority": "local.example",
        "@target-uri": INBOX,
        **{name.lower(): value for name, value in headers.items()},
    }
    inner = "(" + " ".join(f'"{c}"' for c in components) + ")" + params
    lines = [f'"{c}": {values[c]}' for c in components] + [f'"@signature-params": {inner}']
    key = load_private_key(private_pem)
    signature = key.sign("\n".join(lines).encode(), padding.PKCS1v15(), hashes.SHA256())
    encoded = base64.b64encode(signature).decode()
    return {**headers, "Signature-Input": f"sig1={inner}", "Signature": f"sig1=:{encoded}:"}


# --- our signer, our verifier ------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "GET"])
@pytest.mark.parametrize(
    "url", [INBOX, INBOX + "?page=true", "https://local.example:8443/users/a%20b/inbox?q=%C3%A9"]
)
def test_signed_request_verifies_with_the_senders_key(private_pem, public_pem, method, url):
    body = BODY if method == "POST" else None
    headers = _sign(private_pem, method, url, body)
    pending = _extract(headers, body, method, url.split(headers["Host"], 1)[1])
    assert (pending.scheme, pending.key_id, pending.algorithm, pending.created) == (
        "rfc9421",
        KEY_ID,
        "rsa-v1_5-sha256",
        float(int(NOW)),
    )
    pending.verify(public_pem)


def test_signature_headers_follow_fedify_defaults(private_pem):
    headers = _sign(private_pem)
    assert headers["Signature-Input"] == (
        'sig1=("@method" "@target-uri" "@authority" "host" "date" "content-type" "content-digest")'
        f'{PARAMS};alg="rsa-v1_5-sha256"'
    )
    assert headers["Content-Digest"] == DIGEST
    assert headers["Signature"].startswith("sig1=:") and headers["Signature"].endswith(":")


def test_rfc9530_content_digest_example():
    # RFC 9530 appendix B.1: {"hello": "world"}\n
    expected = "sha-256=:RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg=:"
    assert content_digest_header(b'{"hello": "world"}\n') == expected


def test_ed25519_key_round_trips(ed_key):
    pending = _extract(_sign(_pem(ed_key)))
    assert pending.algorithm == "ed25519"
    pending.verify(ed_key.public_key())
    with pytest.raises(SignatureError, match="mismatch"):
        pending.verify(ed25519.Ed25519PrivateKey.generate().public_key())


def test_hand_built_signature_without_alg_verifies(private_pem, public_pem):
    # Proves the hand signer used by the rejection tests below is itself right.
    components = ["@method", "@target-uri", "content-digest"]
    pending = _extract(_hand_signed(private_pem, components, PARAMS, Content_Digest=DIGEST))
    assert pending.algorithm is None
    pending.verify(public_pem)


def test_rfc9421_appendix_b26_ed25519_vector():
    """RFC 9421 B.2.6 (ed25519 over date @method @path @authority content-type content-length)."""
    public_pem = (
        "-----BEGIN PUBLIC KEY-----\n"
        "MCowBQYDK2VwAyEAJrQLj5P/89iXES9+vFgrIy29clF9CC/oPPsw3c5D0bs=\n"
        "-----END PUBLIC KEY-----\n"
    )
    headers = {
        "Host": "example.com",
        "Date": "Tue, 20 Apr 2021 02:07:55 GMT",
        "Content-Type": "application/json",
        "Content-Length": "18",
        "Signature-Input": 'sig-b26=("date" "@method" "@path" "@authority" "content-type" '
        '"content-length");created=1618884473;keyid="test-key-ed25519"',
        "Signature": "sig-b26=:wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4"
        "A0w6vuQv5lIp5WPpBKRCw==:",
    }
    vector = dict(
        body=b'{"hello": "world"}', path="/foo?param=Value&Pet=dog", now=1618884473
    )
    pending = _extract(headers, **vector, require_digest=False)
    assert pending.key_id == "test-key-ed25519"
    pending.verify(public_pem)
    tampered = _extract({**headers, "Content-Length": "19"}, **vector, require_digest=False)
    with pytest.raises(SignatureError, match="mismatch"):
        tampered.verify(public_pem)


# --- interoperability with http-message-signatures ---------------------------------------


def _their_algorithm(key):
    eddsa = isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey))
    return algorithms.ED25519 if eddsa else algorithms.RSA_V1_5_SHA256


def _their_signer(key, algorithm=None) -> HTTPMessageSigner:
    resolver = MappingKeyResolver(public_keys={}, private_keys={KEY_ID: key})
    return HTTPMessageSigner(
        signature_algorithm=algorithm or _their_algorithm(key), key_resolver=resolver
    )


def _their_verifier(public_key) -> HTTPMessageVerifier:
    resolver = MappingKeyResolver(public_keys={KEY_ID: public_key}, private_keys={})
    return HTTPMessageVerifier(
        signature_algorithm=_their_algorithm(public_key), key_resolver=resolver
    )


CROSS_CASES = [("POST", INBOX + "?x=1"), ("GET", "https://local.example:8443/users/a%20b?page=1")]


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
@pytest.mark.parametrize(("method", "url"), CROSS_CASES)
def test_request_signed_by_http_message_signatures_verifies(private_pem, ed_key, kind, method, url):
    key = load_private_key(private_pem) if kind == "rsa" else ed_key
    body = BODY if method == "POST" else None
    headers = {"Host": url.split("/")[2], "Content-Type": "application/activity+json"}
    request = requests.Request(method, url, data=body, headers=headers).prepare()
    covered = ("@method", "@target-uri", "@authority", "host")
    _their_signer(key).sign(
        request, key_id=KEY_ID, label="sig1", body=body, covered_component_ids=covered
    )
    pending = extract_signature(method, request.path_url, request.headers, body)
    pending.verify(key.public_key())
    if method == "POST":
        assert "content-digest" in pending.covered


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
@pytest.mark.parametrize(("method", "url"), CROSS_CASES)
def test_request_signed_by_us_verifies_with_http_message_signatures(
    private_pem, ed_key, kind, method, url
):
    pem = private_pem if kind == "rsa" else _pem(ed_key)
    body = BODY if method == "POST" else None
    headers = _sign(pem, method, url, body, now=time.time())
    request = requests.Request(method, url, data=body, headers=headers).prepare()
    public_key = load_private_key(pem).public_key()
    required = ("@method", "@target-uri", "@authority")
    results = _their_verifier(public_key).verify(request, body=body, require_components=required)
    assert [r.parameters["keyid"] for r in results] == [KEY_ID]
    # ...and their verifier notices tampering, so the check above is meaningful.
    if body is not None:
        with pytest.raises(Exception, match="Content-Digest"):
            _their_verifier(public_key).verify(request, body=body + b" ")


# --- rejections --------------------------------------------------------------------------


def test_signature_without_created_is_rejected(private_pem):
    params = f';keyid="{KEY_ID}";alg="rsa-v1_5-sha256"'
    components = ["@method", "@target-uri", "content-digest"]
    headers = _hand_signed(private_pem, components, params, Content_Digest=DIGEST)
    with pytest.raises(SignatureError, match="no created parameter"):
        _extract(headers)


def test_signature_without_keyid_is_rejected(private_pem):
    headers = _hand_signed(private_pem, ["@method", "@target-uri"], f";created={int(NOW)}", "GET")
    with pytest.raises(SignatureError, match="no keyid"):
        _extract(headers, None, "GET")


def test_two_signatures_are_rejected(private_pem):
    request = requests.Request("POST", INBOX, data=BODY, headers={"Host": "local.example"})
    request = request.prepare()
    signer = _their_signer(load_private_key(private_pem))
    signer.sign(request, key_id=KEY_ID, label="sig1", body=BODY)
    signer.sign(
        request,
        key_id=KEY_ID,
        label="sig2",
        append_if_signature_exists=True,
        use_existing_digest=True,
        covered_component_ids=("@method", "@target-uri", "content-digest"),
    )
    with pytest.raises(SignatureError, match="exactly one signature, got 2"):
        _extract(request.headers, now=time.time())


def test_post_without_content_digest_is_rejected(private_pem):
    headers = _hand_signed(private_pem, ["@method", "@target-uri"], PARAMS)
    with pytest.raises(SignatureError, match="Content-Digest header missing"):
        _extract(headers)
    headers["Content-Digest"] = DIGEST
    with pytest.raises(SignatureError, match="content-digest is not covered"):
        _extract(headers)


def test_body_tampered_after_signing_fails_the_content_digest(private_pem):
    with pytest.raises(SignatureError, match="Content-Digest does not match"):
        _extract(_sign(private_pem), BODY + b" ")


@pytest.mark.parametrize(
    ("components", "reason"),
    [
        (["@target-uri", "content-digest"], "@method is not covered"),
        (["@method", "@path", "content-digest"], "@target-uri .* is not covered"),
    ],
)
def test_missing_required_components_are_rejected(private_pem, components, reason):
    headers = _hand_signed(private_pem, components, PARAMS, Content_Digest=DIGEST)
    with pytest.raises(SignatureError, match=reason):
        _extract(headers)


def test_authority_and_path_are_enough_coverage(private_pem, public_pem):
    components = ["@method", "@authority", "@path", "content-digest"]
    headers = _hand_signed(private_pem, components, PARAMS, Content_Digest=DIGEST)
    _extract(headers).verify(public_pem)


@pytest.mark.parametrize(("offset", "reason"), [(-66 * 60, "too old"), (66 * 60, "future")])
def test_created_outside_the_window_is_rejected(private_pem, offset, reason):
    with pytest.raises(SignatureError, match=reason):
        _extract(_sign(private_pem, now=NOW + offset))


def test_expired_signature_is_rejected(private_pem):
    params = f';created={int(NOW) - 600};expires={int(NOW) - 3700};keyid="{KEY_ID}"'
    headers = _hand_signed(private_pem, ["@method", "@target-uri"], params, "GET")
    with pytest.raises(SignatureError, match="expired"):
        _extract(headers, None, "GET")


def test_signature_by_another_key_is_a_mismatch(private_pem):
    pending = _extract(_sign(private_pem))
    with pytest.raises(SignatureError, match="signature mismatch"):
        pending.verify(public_pem_from_private(generate_rsa_private_key_pem()))


@pytest.mark.parametrize(("path", "scheme"), [("/users/carol/inbox", "https"), (PATH, "http")])
def test_other_target_uri_is_a_mismatch(private_pem, public_pem, path, scheme):
    pending = _extract(_sign(private_pem), path=path, scheme=scheme)
    with pytest.raises(SignatureError, match="signature mismatch"):
        pending.verify(public_pem)


def test_rsa_signature_cannot_be_checked_with_an_ed25519_key(private_pem, ed_key):
    with pytest.raises(SignatureError, match="cannot be used"):
        _extract(_sign(private_pem)).verify(ed_key.public_key())


def test_unsupported_algorithm_is_rejected(private_pem):
    request = requests.Request("GET", INBOX, headers={"Host": "local.example"}).prepare()
    signer = _their_signer(load_private_key(private_pem), algorithms.RSA_PSS_SHA512)
    signer.sign(request, key_id=KEY_ID, label="sig1")
    with pytest.raises(SignatureError, match="unsupported signature algorithm 'rsa-pss-sha512'"):
        _extract(request.headers, None, "GET", now=time.time())


_BASIC = 'sig1=("@method" "@target-uri");created=1;keyid="k"'


@pytest.mark.parametrize(
    ("signature_input", "signature", "reason"),
    [
        ('sig1=("@method"', "sig1=:AAAA:", "malformed Signature-Input"),
        (_BASIC, "sig1=AAAA", "not a byte sequence"),
        (_BASIC, "sig2=:AAAA:", "labels differ"),
        (_BASIC + ', sig1=("@method")', "sig1=:AAAA:", "duplicate label"),
        ('sig1="@method"', "sig1=:AAAA:", "not an inner list"),
        (_BASIC.replace(")", ' "@method")'), "sig1=:AAAA:", "covered twice"),
        (_BASIC.replace(")", ' "content-digest";sf)'), "sig1=:AAAA:", "unsupported parameters"),
        (_BASIC.replace("=1", '="1"'), "sig1=:AAAA:", "must be integers"),
    ],
)
def test_malformed_signature_fields_are_rejected(signature_input, signature, reason):
    headers = {"Host": "local.example", "Signature-Input": signature_input, "Signature": signature}
    with pytest.raises(SignatureError, match=reason):
        _extract(headers, None, "GET", "/", now=1)


def test_signature_input_without_signature_is_rejected():
    with pytest.raises(SignatureError, match="Signature header missing"):
        _extract({"Host": "h", "Signature-Input": _BASIC}, None, "GET", "/", now=1)


def test_missing_host_header_is_rejected(private_pem):
    headers = _sign(private_pem, "GET", INBOX, None)
    del headers["Host"]
    with pytest.raises(SignatureError, match="Host header missing"):
        _extract(headers, None, "GET")


def test_key_loading_is_cached(public_pem):
    assert load_public_key(public_pem) is load_public_key(public_pem)
