"""CLI commands for training consent, researchers and corpus releases (argument parsing and
printing only; each command calls a service)."""
from __future__ import annotations

import argparse
from typing import Any

from fedserver.corpus.terms import LICENSES
from fedserver.services.consent import ConsentError

COMMANDS = ("consent",)
USER_ERRORS: tuple[type[Exception], ...] = (ConsentError,)


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


async def run(ctx: Any, args: argparse.Namespace) -> int:
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
                raise ConsentError("--train-ai allow needs --license and --scope")
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
    return 0
