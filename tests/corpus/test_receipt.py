"""Consent receipts as a format (fedserver.corpus.receipt): what a hostile or broken file gets from
the verifier, which must answer with reasons and never raise."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from fedserver.corpus import receipt as receipts


@pytest.fixture(scope="module")
def keys() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


def event(**changes):
    fields = {"id": 1, "actor_id": 7, "actor_uri": "https://a.example/users/alice", "purpose": "train-ai",
              "choice": "allow", "license": "CC-BY-4.0", "scope": "all", "include_unlisted": 0,
              "terms_version": "v1", "terms_hash": "ab" * 32, "source": "self", "note": "web settings",
              "created_at": "2026-12-01T00:00:00.000000Z", "prev_hash": "0" * 64, **changes}
    fields["hash"] = receipts.log_entry_hash(fields)
    return SimpleNamespace(**fields)


def signed(keys, **receipt_changes) -> bytes:
    receipt = receipts.build_receipt(
        receipt_id="urn:x", issued_at="2026-12-02T00:00:00.000000Z", principal_uri="https://a.example/users/alice",
        controller=receipts.Party("https://a.example/actor", "A", "https://a.example"),
        notice=receipts.Notice("https://a.example/about/consent", "v1", "ab" * 32, "Allow my posts…"),
        purpose=receipts.Purpose("train-ai", "AI training", "records", "researchers", "while consent lasts", "No"),
        current={"choice": "allow"}, events=[event()], log_head="cd" * 32, signer_uri="https://a.example/actor",
        key_id="https://a.example/actor#main-key")
    receipt.update(receipt_changes)
    return receipts.render(receipts.sign(receipt, private_key_pem=keys[0], key_id="https://a.example/actor#main-key"))


def test_a_signed_receipt_verifies_and_names_its_key(keys):
    result = receipts.verify(signed(keys), keys[1], expected_key_id="https://a.example/actor#main-key")
    assert result.ok and result.key_id == "https://a.example/actor#main-key"


@pytest.mark.parametrize("data", [b"", b"\xff\xfe", b"[]", b"{}", b'{"receipt": 1, "signature": {"jws": "x"}}',
                                  b"[" * 100000, b'{"receipt": {}, "signature": {"jws": "a.b.c.d"}}',
                                  b'{"receipt": {}, "signature": []}'])
def test_files_that_are_no_receipt_are_refused_with_a_reason(keys, data):
    result = receipts.verify(data, keys[1])
    assert not result.ok and result.problems


def test_a_receipt_with_nan_injected_is_refused_not_raised(keys):
    document = json.loads(signed(keys))
    document["receipt"]["consent_status"]["choice"] = float("nan")
    data = (json.dumps(document, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()
    result = receipts.verify(data, keys[1])
    assert not result.ok and "numbers" in " ".join(result.problems)


def test_an_altered_log_entry_is_named_even_if_re_signed(keys):
    data = signed(keys)
    document = json.loads(data)
    document["receipt"]["events"][0]["consent_log_entry"]["choice"] = "deny"
    resigned = receipts.render(receipts.sign(document["receipt"], private_key_pem=keys[0],
                                             key_id="https://a.example/actor#main-key"))
    result = receipts.verify(resigned, keys[1])
    assert not result.ok and "consent-log entry 1" in result.problems[0]


def test_another_key_or_key_id_does_not_verify(keys):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    assert not receipts.verify(signed(keys), other).ok
    assert not receipts.verify(signed(keys), keys[1], expected_key_id="https://b.example/actor#main-key").ok


def test_the_public_key_is_read_from_a_pem_or_an_actor_document(keys):
    assert receipts.public_key_from(keys[1]) == (keys[1].strip(), None)
    actor = {"id": "https://a.example/actor", "publicKey": {"id": "https://a.example/actor#main-key",
                                                             "publicKeyPem": keys[1]}}
    assert receipts.public_key_from(json.dumps(actor)) == (keys[1], "https://a.example/actor#main-key")
    with pytest.raises(receipts.ReceiptError):
        receipts.public_key_from('{"publicKey": 5}')
