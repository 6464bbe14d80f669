"""CLI commands for training consent, researchers and corpus releases (argument parsing and
printing only; each command calls a service)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from fedserver.corpus.defaults import DEFAULT_GZIP_LEVEL, DEFAULT_SHARD_SIZE
from fedserver.corpus.terms import LICENSES

# Services are imported by the commands that use them: `fedserver --help` and the other commands
# start without the exporter and rdflib.
COMMANDS = ("consent", "researcher", "corpus")


def user_errors() -> tuple[type[Exception], ...]:
    """What these commands raise for a reason the person can act on (printed, exit status 1)."""
    from fedserver.corpus.export import ExportError
    from fedserver.corpus.manifest import ReleaseError
    from fedserver.corpus.receipt import ReceiptError
    from fedserver.services.consent import ConsentError
    from fedserver.services.corpus_custody import CustodyError
    from fedserver.services.researchers import ResearcherError

    return (ConsentError, ResearcherError, ExportError, ReleaseError, CustodyError, ReceiptError)


def add_parsers(sub: Any) -> None:
    consent = sub.add_parser("consent", help="training consent of a local account").add_subparsers(
        dest="consent_command", required=True)
    s = consent.add_parser("show", help="current choice and how many posts are in the corpus")
    s.add_argument("user")
    s = consent.add_parser("set", help="set a person's choice on their behalf (logged as the admin's act)")
    s.add_argument("user")
    s.add_argument("--train-ai", required=True, choices=("allow", "deny"))
    s.add_argument("--license", choices=LICENSES)
    s.add_argument("--scope", choices=("future", "all"))
    s.add_argument("--include-unlisted", action="store_true", help="unlisted posts may enter the corpus too")
    s.add_argument("--note", default="", help="why the admin acted (kept in the consent log)")
    s = consent.add_parser("log", help="the person's consent history")
    s.add_argument("user")
    s.add_argument("--verify", action="store_true", help="verify the whole hash chain of the consent log")
    s = consent.add_parser("receipt", help="write a person's signed consent receipt (what they download)")
    s.add_argument("user")
    s.add_argument("--out", required=True, help="file to write")
    s = consent.add_parser("verify-receipt", help="check a consent receipt's signature (fetches nothing)")
    s.add_argument("file")
    s.add_argument("--public-key", metavar="FILE",
                   help="the signer's PEM public key or instance actor document (default: this server's key)")

    corpus = sub.add_parser("corpus", help="offline releases of the research corpus").add_subparsers(
        dest="corpus_command", required=True)
    s = corpus.add_parser("export", help="write a signed release: shards, manifest, dataset card, croissant.json")
    s.add_argument("--out", required=True, help="directory to write (new, empty, or an earlier release)")
    s.add_argument("--format", choices=("jsonl", "parquet"), default="jsonl",
                   help="gzip JSON Lines (default) or Parquet (needs the parquet extra)")
    s.add_argument("--scrub", action="store_true",
                   help="replace e-mail addresses, phone numbers and handles of non-consenting people")
    s.add_argument("--shard-size", type=int, default=DEFAULT_SHARD_SIZE, metavar="N", help="records per shard")
    s.add_argument("--gzip-level", type=int, default=DEFAULT_GZIP_LEVEL, choices=range(1, 10), metavar="1-9",
                   help=f"JSON Lines compression: 1 fastest, 9 smallest (default {DEFAULT_GZIP_LEVEL}); the records"
                        " and the release version do not depend on it")
    s.add_argument("--progress", action="store_true", default=None,
                   help="show a progress bar even when stderr is not a terminal")
    s.add_argument("--for", dest="recipients", action="append", default=[], metavar="RESEARCHER",
                   help="the researcher this release is for (repeatable): recorded as having received its records,"
                        " which each person's consent page shows; refused while they are past a removal deadline")
    s = corpus.add_parser("verify", help="check a release's manifest signature and every file's checksum")
    s.add_argument("dir")
    s.add_argument("--public-key", metavar="PEM_FILE",
                   help="the signer's public key (default: this server's instance actor key)")

    researcher = sub.add_parser("researcher", help="researchers who may pull the corpus").add_subparsers(
        dest="researcher_command", required=True)
    s = researcher.add_parser("add", help="register a researcher (prints their API token, once)")
    s.add_argument("name")
    s.add_argument("--contact", default="", help="how to reach them (shown to the people whose records they receive)")
    s.add_argument("--organisation", default="", help="who they work for (shown to the people whose records they receive)")
    s.add_argument("--purpose", default="", help="what they use the corpus for (shown to the people whose records they"
                                                 " receive)")
    s.add_argument("--scrub", action="store_true", help="their API records come scrubbed, as `corpus export --scrub`")
    researcher.add_parser("list", help="researchers, their terms acceptance, revocation and pulls")
    s = researcher.add_parser("revoke", help="end a researcher's access (their token stops working)")
    s.add_argument("name")
    s = researcher.add_parser("ack-release", help="record that a researcher applied an offline release's removals")
    s.add_argument("name")
    s.add_argument("version")
    s = researcher.add_parser("scrub", help="whether a researcher's API records come scrubbed (they accept the terms"
                                            " again)")
    s.add_argument("name")
    s.add_argument("state", choices=("on", "off"))
    s = researcher.add_parser("rotate-token", help="give a researcher a new token (prints it, once); the old one "
                                                   "stops working, their terms and history stay")
    s.add_argument("name")


async def run(ctx: Any, args: argparse.Namespace) -> int:
    if args.command == "researcher":
        return await _run_researcher(ctx, args)
    if args.command == "corpus":
        return await _run_corpus(ctx, args)
    from fedserver.corpus import sync
    from fedserver.services import accounts, consent
    from fedserver.store import corpus as corpus_store

    if args.command == "consent":
        if args.consent_command == "show":
            actor = await accounts.require_local_actor(ctx, args.user)
            await sync.reconcile(ctx)
            state = await consent.get_state(ctx, actor.id)
            count = await corpus_store.count_present_for_actor(ctx.db.reader, actor.id)
            print(f"train-ai: {state.choice}" + (f" (licence {state.license}, scope {state.scope}"
                                                 f"{', unlisted too' if state.include_unlisted else ''})"
                                                 if state.choice == "allow" else ""))
            print(f"last changed: {state.updated_at or 'never'}")
            print(f"posts in the corpus now: {count}")
        elif args.consent_command == "set":
            if args.train_ai == "allow" and (not args.license or not args.scope):
                raise consent.ConsentError("--train-ai allow needs --license and --scope")
            event = await consent.set_training_consent(
                ctx, args.user, args.train_ai, license=args.license, scope=args.scope,
                include_unlisted=args.include_unlisted, source="admin", note=args.note or "set by an admin")
            print(f"recorded consent event {event.id} ({event.choice}, hash {event.hash[:16]})")
        elif args.consent_command == "log":
            for event in await consent.history(ctx, args.user):
                details = f" licence={event.license} scope={event.scope}" if event.choice == "allow" else ""
                print(f"{event.id}\t{event.created_at}\t{event.choice}{details}\tby {event.source}"
                      f"\tterms {event.terms_version or '-'}\thash {event.hash[:16]}")
            if args.verify:
                result = await consent.verify_log(ctx)
                if result.ok:
                    print(f"consent log verified: {result.events} events, head {result.head}")
                else:
                    print(f"consent log FAILED verification at event {result.first_bad_id}: {result.problem}")
                    return 3
        elif args.consent_command == "receipt":
            from fedserver.services import consent_receipts

            Path(args.out).write_bytes(await consent_receipts.consent_receipt(ctx, args.user))
            print(f"consent receipt of {args.user} written to {args.out}")
        elif args.consent_command == "verify-receipt":
            return await _verify_receipt(ctx, args)
    return 0


async def _verify_receipt(ctx: Any, args: argparse.Namespace) -> int:
    from fedserver.services import consent_receipts

    result = await consent_receipts.verify_receipt_file(
        ctx, Path(args.file), key_file=Path(args.public_key) if args.public_key else None)
    if not result.ok:
        for problem in result.problems:
            print(f"FAILED: {problem}")
        return 3
    receipt = result.receipt or {}
    status = receipt.get("consent_status") or {}
    print(f"receipt verified: signed by {result.key_id}; {receipt.get('pii_principal_id')} "
          f"{status.get('purpose')}={status.get('choice')} as of {receipt.get('receipt_time')}, "
          f"{len(receipt.get('events') or [])} consent event(s)")
    return 0


async def _run_researcher(ctx: Any, args: argparse.Namespace) -> int:
    from fedserver.services import corpus_custody, researchers

    if args.researcher_command == "add":
        researcher, token = await researchers.add_researcher(ctx, args.name, contact=args.contact,
                                                             organisation=args.organisation, purpose=args.purpose,
                                                             scrub=args.scrub)
        print(f"added researcher {researcher.name}")
        print(f"token: {token}")
        print("the token is shown only this once; give it to the researcher over a private channel")
    elif args.researcher_command == "list":
        summaries = await researchers.list_researchers(ctx)
        overdue = {o.researcher.id: f" (OVERDUE: {o.removal['record_id']} due {o.due_at})"
                   for o in await corpus_custody.overdue_researchers(ctx)}
        if not summaries:
            print("no researchers")
        for summary in summaries:
            r = summary.researcher
            if r.terms_accepted_at is None:
                terms = "terms not accepted"
            else:
                current = "" if researchers.has_accepted_current_terms(ctx, r) else ", not the current version"
                terms = f"terms {r.terms_version} accepted {r.terms_accepted_at}{current}"
            access = f"revoked {r.revoked_at}" if r.revoked_at else "active"
            print(f"{r.name}\tcreated {r.created_at}\t{terms}\t{access}\tpulls {summary.pulls}"
                  f"\tremovals confirmed to {r.removals_acked_seq}{overdue.get(r.id, '')}")
    elif args.researcher_command == "revoke":
        researcher, changed = await researchers.revoke_researcher(ctx, args.name)
        print(f"revoked {researcher.name}" if changed else
              f"{researcher.name} was already revoked ({researcher.revoked_at})")
    elif args.researcher_command == "ack-release":
        state = await corpus_custody.acknowledge_release(ctx, args.name, args.version)
        print(f"{args.name} applied release {args.version}: removals confirmed up to feed position {state.cursor}")
        if state.overdue:
            print(f"still overdue: removal {state.overdue['record_id']} (position {state.overdue['seq']},"
                  f" due {state.overdue['due_at']})")
    elif args.researcher_command == "scrub":
        researcher = await corpus_custody.set_scrub(ctx, args.name, args.state == "on")
        print(f"{researcher.name} now receives {'scrubbed' if researcher.scrub else 'unscrubbed'} records;"
              " they must accept the data-use terms again (they say which form they receive)")
    elif args.researcher_command == "rotate-token":
        researcher, token = await researchers.rotate_token(ctx, args.name)
        print(f"new token for researcher {researcher.name}; the old one no longer works")
        print(f"token: {token}")
        print("the token is shown only this once; give it to the researcher over a private channel")
    return 0


async def _run_corpus(ctx: Any, args: argparse.Namespace) -> int:
    from fedserver.corpus import export, manifest
    from fedserver.store import actors as actor_store

    if args.corpus_command == "export":
        result = await export.export_release(ctx, args.out, format=args.format, scrub=args.scrub,
                                             shard_size=args.shard_size, gzip_level=args.gzip_level,
                                             progress=args.progress, recipients=args.recipients)
        state = ("new release" if result.new_release
                 else "unchanged since the last release: same version, same records")
        print(f"corpus release {result.version} ({state}; previous {result.previous_version or 'none'})")
        print(f"{result.records} records in {result.shards} shard(s), {result.removals} removal(s) -> {result.out}")
        print(f"{result.seconds:.1f} s, {result.rate:,.0f} records/s")
        for name in args.recipients:
            print(f"recorded as given to researcher {name}")
        if not result.consent_log_verified:
            print("warning: the consent log does not verify; run `fedserver consent log USER --verify`",
                  file=sys.stderr)
        return 0
    root = Path(args.dir)
    if args.public_key:
        public_key = Path(args.public_key).read_text(encoding="utf-8")
    else:
        instance = await actor_store.get_instance_actor(ctx.db.reader)
        if instance is None or not instance[0].public_key_pem:
            raise manifest.ReleaseError("this server has no instance actor key; pass --public-key")
        public_key = instance[0].public_key_pem
    problems = manifest.check_release(root, public_key)
    if problems:
        for problem in problems:
            print(f"FAILED: {problem}")
        return 3
    info = manifest.signature_info(root)
    files = len(json.loads((root / manifest.MANIFEST).read_text(encoding="utf-8"))["files"])
    print(f"release verified: signature by {info.get('key_id')} and {files} file checksums")
    return 0
