"""A person's consent receipt (fedserver.corpus.receipt): gathered from their consent events and
current choice, signed with the instance actor's key; and checking a receipt against a key."""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from fedserver.context import Context
from fedserver.corpus import receipt as receipts
from fedserver.corpus.terms import CONSENT_TERMS, RESEARCHER_TERMS, TRAIN_AI
from fedserver.services.accounts import require_local_actor
from fedserver.services.consent import get_state
from fedserver.store import actors as actor_store
from fedserver.store import consent as consent_store

log = logging.getLogger(__name__)

ABOUT_CONSENT_PATH = "/about/consent"
SETTINGS_PATH = "/settings/consent"


async def consent_receipt(ctx: Context, username: str) -> bytes:
    """The signed receipt file of a local person's training consent, as of now."""
    actor = await require_local_actor(ctx, username)
    instance = await actor_store.get_instance_actor(ctx.db.reader)
    if instance is None:
        raise receipts.ReceiptError("this server has no instance actor to sign the receipt with")
    signer, signer_account = instance
    key_id = signer.key_id or f"{signer.uri}#main-key"
    events = await consent_store.list_events_of_actor(ctx.db.reader, actor.id)
    state = await get_state(ctx, actor.id, TRAIN_AI)
    head = await consent_store.head_hash(ctx.db.reader)
    issued_at = ctx.clock.now_iso()
    base = ctx.settings.base_url
    receipt_id = "urn:fedserver:consent-receipt:" + hashlib.sha256(
        f"{actor.uri}\n{events[-1].hash if events else '-'}\n{issued_at}".encode()).hexdigest()[:32]
    document = receipts.sign(receipts.build_receipt(
        receipt_id=receipt_id, issued_at=issued_at, principal_uri=actor.uri,
        controller=receipts.Party(party_id=signer.uri, party_name=ctx.settings.instance.name, party_url=base),
        notice=receipts.Notice(url=base + ABOUT_CONSENT_PATH, version=CONSENT_TERMS.version,
                               sha256=CONSENT_TERMS.sha256, text=CONSENT_TERMS.text),
        purpose=receipts.Purpose(
            purpose_id=TRAIN_AI,
            purpose="Use of the person's public posts to train AI models, including generative models",
            processing_method="Pseudonymised records of the covered posts are given to registered researchers "
                              "through the researcher API and signed offline releases; withdrawn, deleted and "
                              "excluded posts leave the corpus and are listed as removals",
            recipients=f"Researchers registered with the administrator who accepted the data-use agreement "
                       f"{RESEARCHER_TERMS.version} (SHA-256 {RESEARCHER_TERMS.sha256})",
            retention_period="While consent lasts; after a withdrawal researchers must delete the records within "
                             "the period the data-use agreement sets",
            withdrawal_method=f"Choose No at {base}{SETTINGS_PATH}: it takes effect at once for new pulls"),
        current={"purpose": TRAIN_AI, "choice": state.choice, "license": state.license, "scope": state.scope,
                 "include_unlisted": state.include_unlisted, "effective_from": state.effective_from,
                 "updated_at": state.updated_at, "event_id": state.event_id},
        events=events, log_head=head, signer_uri=signer.uri, key_id=key_id),
        private_key_pem=signer_account.private_key_pem, key_id=key_id)
    log.info("consent receipt %s issued to %s (%d events)", receipt_id, actor.username, len(events))
    return receipts.render(document)


async def verify_receipt_file(ctx: Context, path: Path, *, key_file: Path | None = None) -> receipts.Verification:
    """Check a receipt with the key in key_file (a PEM, or an actor document), or else with this
    server's instance actor key. Nothing is fetched."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise receipts.ReceiptError(f"cannot read {path}: {exc}") from None
    if key_file is not None:
        try:
            pem, key_id = receipts.public_key_from(key_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise receipts.ReceiptError(f"cannot read {key_file}: {exc}") from None
    else:
        instance = await actor_store.get_instance_actor(ctx.db.reader)
        if instance is None or not instance[0].public_key_pem:
            raise receipts.ReceiptError("this server has no instance actor key; pass --public-key")
        pem, key_id = instance[0].public_key_pem, instance[0].key_id
    return receipts.verify(data, pem, expected_key_id=key_id)
