"""Consent receipts over real HTTP from a real `fedserver serve`: alice chooses on her consent page,
downloads her receipt, and anyone verifies it with the public key of the instance actor document,
with `fedserver consent verify-receipt` or with nothing but a JWS recipe (docs/consent-receipts.md).
A receipt with any one byte changed does not verify."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import aiohttp
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from fedserver.corpus import receipt as receipts
from tests.e2e.processes import ProcessGroup, ServerProcess
from tests.e2e.serve_support import serve_with_people, signed_in


@pytest.fixture
async def alice_receipt(fedserver_processes: ProcessGroup, tmp_path: Path) -> tuple[ServerProcess, bytes, dict]:
    """alice says yes, then no, then yes again on her consent page and downloads her receipt."""
    server = await serve_with_people(fedserver_processes, tmp_path, "alice", "bob")
    browser = await signed_in(server, "alice")
    try:
        page = await browser.get("/settings/consent")
        terms_version = page.text.split('name="terms_version" value="')[1].split('"')[0]
        yes = {"train_ai": "allow", "license": "CC-BY-4.0", "scope": "future", "terms_version": terms_version}
        for data in (yes, {"train_ai": "deny"}, {**yes, "license": "CC0-1.0", "scope": "all"}):
            answer = await browser.submit("/settings/consent", "/settings/consent", data)
            assert answer.status == 200, answer.text[:300]
        bob = await signed_in(server, "bob")
        await bob.submit("/settings/consent", "/settings/consent", {"train_ai": "deny"})
        await bob.close()
        page = await browser.get("/settings/consent")
        assert "/settings/consent/receipt" in page.links()
        async with browser.http.get(server.base + "/settings/consent/receipt") as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("application/json")
            assert resp.headers["Content-Disposition"].startswith('attachment; filename="consent-receipt-alice-')
            body = await resp.read()
    finally:
        await browser.close()
    async with aiohttp.ClientSession() as http:
        async with http.get(server.base + "/actor", headers={"Accept": "application/activity+json"}) as resp:
            assert resp.status == 200
            actor = json.loads(await resp.read())
    return server, body, actor


def verify_cli(server: ServerProcess, receipt: Path, key: Path | None = None):
    return server.run("consent", "verify-receipt", str(receipt), *(("--public-key", str(key)) if key else ()))


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


async def test_a_downloaded_receipt_holds_the_choice_and_its_history_and_verifies(alice_receipt, tmp_path: Path):
    server, body, actor = alice_receipt
    document = json.loads(body)
    receipt = document["receipt"]
    assert receipt["pii_principal_id"] == server.actor_uri("alice")
    assert receipt["consent_status"]["choice"] == "allow" and receipt["consent_status"]["license"] == "CC0-1.0"
    assert [e["event_state"] for e in receipt["events"]] == ["given", "withdrawn", "given"]
    assert [e["consent_log_entry"]["hash"] for e in receipt["events"]] == [
        row[0] for row in server.query("SELECT hash FROM consent_events e JOIN actors a ON a.id = e.actor_id"
                                       " WHERE a.uri = ? ORDER BY e.id", (server.actor_uri("alice"),))]
    # Nothing about bob.
    assert server.actor_uri("bob") not in body.decode()
    # ISO/IEC TS 27560's mandatory header, processing, party and event fields are there.
    for name in ("schema_version", "receipt_id", "record_id", "pii_principal_id", "language", "privacy_notice",
                 "purposes", "parties", "events"):
        assert receipt[name], name
    for name in ("purpose", "lawful_basis", "pii_information", "pii_controllers", "storage_locations",
                 "retention_period", "recipient_third_parties", "withdrawal_method"):
        assert receipt["purposes"][0][name], name
    assert receipt["issuer"]["key_id"] == actor["publicKey"]["id"]

    path = tmp_path / "receipt.json"
    path.write_bytes(body)
    actor_file = tmp_path / "actor.json"
    actor_file.write_text(json.dumps(actor), encoding="utf-8")
    pem_file = tmp_path / "instance.pem"
    pem_file.write_text(actor["publicKey"]["publicKeyPem"], encoding="utf-8")
    for key in (None, actor_file, pem_file):
        result = verify_cli(server, path, key)
        assert result.returncode == 0, (key, result.stdout, result.stderr)
        assert "receipt verified" in result.stdout and "train-ai=allow" in result.stdout


async def test_anyone_verifies_a_receipt_with_the_actor_key_and_a_jws_recipe(alice_receipt):
    """The documented recipe, with nothing of fedserver: RFC 8785 JSON of the receipt as the
    detached payload of an RS256 JWS, checked with the key from the instance actor document."""
    _, body, actor = alice_receipt
    document = json.loads(body)
    header_b64, empty, signature_b64 = document["signature"]["jws"].split(".")
    assert empty == "" and json.loads(b64url_decode(header_b64)) == {"alg": "RS256", "kid": actor["publicKey"]["id"]}
    payload = json.dumps(document["receipt"], sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    payload_b64 = base64.urlsafe_b64encode(payload).rstrip(b"=")
    key = serialization.load_pem_public_key(actor["publicKey"]["publicKeyPem"].encode())
    key.verify(b64url_decode(signature_b64), header_b64.encode() + b"." + payload_b64, padding.PKCS1v15(),
               hashes.SHA256())


async def test_a_receipt_with_any_one_byte_changed_does_not_verify(alice_receipt, tmp_path: Path):
    server, body, actor = alice_receipt
    pem = actor["publicKey"]["publicKeyPem"]
    assert receipts.verify(body, pem).ok
    for position in range(len(body)):
        for new in {body[position] ^ 0x01, body[position] ^ 0x20}:
            changed = body[:position] + bytes([new]) + body[position + 1:]
            assert not receipts.verify(changed, pem).ok, (position, body[max(0, position - 20):position + 20])
    # And through the command, with one byte of the choice changed ("allow" -> "allox").
    tampered = body.replace(b'"choice": "allow"', b'"choice": "allox"', 1)
    assert tampered != body
    path = tmp_path / "tampered.json"
    path.write_bytes(tampered)
    result = verify_cli(server, path)
    assert result.returncode == 3, (result.stdout, result.stderr)
    assert "FAILED" in result.stdout


async def test_a_receipt_signed_by_another_key_does_not_verify_with_this_instances_key(alice_receipt, tmp_path):
    server, body, _ = alice_receipt
    other = ServerProcess(tmp_path / "other")
    other.init()
    (tmp_path / "r.json").write_bytes(body)
    result = other.run("consent", "verify-receipt", str(tmp_path / "r.json"))
    assert result.returncode == 3
    assert "does not verify" in result.stdout or "not with" in result.stdout


def test_verify_receipt_of_a_file_that_is_no_receipt_exits_3_with_a_reason(fedserver_processes, tmp_path: Path):
    server = fedserver_processes("a")
    path = tmp_path / "x.json"
    path.write_text('{"hello": 1}', encoding="utf-8")
    result = server.run("consent", "verify-receipt", str(path))
    assert result.returncode == 3 and "not a consent receipt" in result.stdout
    missing = server.run("consent", "verify-receipt", str(tmp_path / "missing.json"))
    assert missing.returncode == 1 and "cannot read" in (missing.stdout + missing.stderr)
