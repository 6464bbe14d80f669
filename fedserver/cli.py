"""The `fedserver` command: argument parsing and printing only; every command calls a service."""
from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import sys
from pathlib import Path
from typing import Any, Awaitable, Callable

from fedserver import cli_corpus
from fedserver.config import (MAX_PROCESSES, ConfigError, Settings, load_settings, port_mismatch,
                              render_default_config)

log = logging.getLogger("fedserver")


class CommandError(Exception):
    """A command failed for a reason the person can act on (printed, exit status 1)."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fedserver", description="A self-hostable ActivityPub server.")
    p.add_argument("--config", default="fedserver.toml", help="config file (default: ./fedserver.toml)")
    p.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("serve", help="run the server (creates config and database on first run)")
    s.add_argument("--host", help="override [server] host")
    s.add_argument("--port", type=int, help="override [server] port")
    s.add_argument("--processes", type=int, help="override [server] processes (processes serving HTTP)")
    s.add_argument("--no-workers", action="store_true",
                   help="serve HTTP only: background work is left to `fedserver worker` processes")
    # Internal: how the primary starts an acceptor process (fedserver/serving.py).
    s.add_argument("--acceptor-parent-fd", type=int, help=argparse.SUPPRESS)

    s = sub.add_parser("worker", help="run background work (inbox, deliveries...) without HTTP; several may share"
                                      " the database")
    s.add_argument("--queues", help="comma-separated: inbox,delivery,media,corpus,polls,prune (default: all)")
    s.add_argument("--concurrency", type=int, default=1,
                   help="worker loops per claimed queue (inbox, delivery, media) in this process (default 1)")

    s = sub.add_parser("init", help="write a config file and create the database")
    s.add_argument("--domain", default="localhost:8080", help="host[:port] used in ids (default localhost:8080)")
    s.add_argument("--scheme", choices=("auto", "https", "http"), default="auto",
                   help="auto (default): http on a loopback domain, https otherwise")
    s.add_argument("--port", type=int, default=8080)
    s.add_argument("--allow-private-addresses", action="store_true",
                   help="allow federation with loopback/private addresses (local testing only)")
    s.add_argument("--force", action="store_true", help="overwrite an existing config file")

    sub.add_parser("migrate", help="apply pending database migrations")

    user = sub.add_parser("user", help="manage local accounts").add_subparsers(dest="user_command", required=True)
    s = user.add_parser("create", help="create an account (prints a generated password)")
    s.add_argument("name")
    s.add_argument("--admin", action="store_true")
    s.add_argument("--locked", action="store_true", help="approve followers by hand")
    s.add_argument("--password-file", help="read the password from this file")
    s.add_argument("--allow-reserved", action="store_true",
                   help="allow a reserved name (admin, support, abuse, route names...)")
    user.add_parser("list", help="list local accounts")
    for name, text in (("suspend", "suspend an account (no sign-in, pages gone, posts leave the corpus)"),
                       ("unsuspend", "lift a suspension"),
                       ("delete", "delete an account for good (federates a Delete)"),
                       ("reset-password", "give an account a new generated password (printed) and sign it out"),
                       ("approve", "approve a sign-up waiting for approval"),
                       ("reject", "reject (delete) a sign-up waiting for approval")):
        s = user.add_parser(name, help=text)
        s.add_argument("name")
        if name == "delete":
            s.add_argument("--yes", action="store_true", help="do not ask to type the username to confirm")
    user.add_parser("pending", help="list sign-ups waiting for approval, with their reasons")
    s = user.add_parser("set-admin", help="grant or remove admin rights")
    s.add_argument("name")
    on_off = s.add_mutually_exclusive_group(required=True)
    on_off.add_argument("--on", dest="admin", action="store_true", help="make the account an admin")
    on_off.add_argument("--off", dest="admin", action="store_false", help="remove its admin rights")

    for name, text in (("follow", "follow a remote or local account"), ("unfollow", "stop following")):
        s = sub.add_parser(name, help=text)
        s.add_argument("local")
        s.add_argument("handle", help="@user@host")

    req = sub.add_parser("requests", help="follow requests to a locked account").add_subparsers(
        dest="requests_command", required=True)
    s = req.add_parser("list")
    s.add_argument("local")
    for name in ("approve", "reject"):
        s = req.add_parser(name)
        s.add_argument("local")
        s.add_argument("handle")

    s = sub.add_parser("post", help="publish a post (prints its id URL)")
    s.add_argument("local")
    s.add_argument("text")
    s.add_argument("--visibility", choices=("public", "unlisted", "followers", "direct"), default="public")
    s.add_argument("--cw", help="content warning")
    s.add_argument("--reply-to", help="id URL of the post to reply to")
    s.add_argument("--language", help="ISO 639-1 code, e.g. en")

    s = sub.add_parser("edit", help="change the text of a post")
    s.add_argument("local")
    s.add_argument("post_url")
    s.add_argument("text")
    s.add_argument("--cw")

    s = sub.add_parser("delete", help="delete a post")
    s.add_argument("local")
    s.add_argument("post_url")

    for name in ("like", "unlike", "boost", "unboost"):
        s = sub.add_parser(name, help=f"{name} a post")
        s.add_argument("local")
        s.add_argument("post_url")

    domain = sub.add_parser("domain-block", help="refuse all federation with a domain").add_subparsers(
        dest="domain_command", required=True)
    s = domain.add_parser("add", help="block a domain and its subdomains (example.com, or host:port)")
    s.add_argument("domain")
    s.add_argument("--reason", default="")
    s = domain.add_parser("remove")
    s.add_argument("domain")
    domain.add_parser("list")

    account = sub.add_parser("account", help="moderate a single account on another server").add_subparsers(
        dest="account_command", required=True)
    for name, text in (("suspend", "hide everything of the account, refuse what it sends, end follows both ways"),
                       ("unsuspend", "lift a suspension (ended follows stay ended)"),
                       ("silence", "keep its posts out of public timelines and from people who do not follow it"),
                       ("unsilence", "lift a silence")):
        s = account.add_parser(name, help=text)
        s.add_argument("handle", help="@user@host or the account's id URL")
    account.add_parser("list", help="suspended and silenced remote accounts")

    invite = sub.add_parser("invite", help="invite codes for web sign-up").add_subparsers(
        dest="invite_command", required=True)
    s = invite.add_parser("create", help="create an invite code (prints it)")
    s.add_argument("--uses", type=int, default=1, help="how many sign-ups it allows (default 1)")
    s.add_argument("--days", type=int, default=7, help="days until it expires (0: never)")

    sub.add_parser("status", help="delivery queue depth and failing hosts")
    media = sub.add_parser("media", help="the cache of remote pictures").add_subparsers(dest="media_command",
                                                                                        required=True)
    s = media.add_parser("prune", help="remove cached remote pictures older than [media] remote_retention_days")
    s.add_argument("--older-than-days", type=float, help="instead of remote_retention_days (0: all of them)")
    db = sub.add_parser("db", help="the database itself").add_subparsers(dest="db_command", required=True)
    s = db.add_parser("copy", help="copy this SQLite instance into an empty PostgreSQL database, then verify it")
    s.add_argument("--to", required=True, metavar="URL", help="postgresql://... of the empty database")
    cli_corpus.add_parsers(sub)
    return p


def _ensure_config(path: Path, *, domain: str = "localhost:8080", scheme: str = "auto", port: int = 8080,
                   allow_private: bool = False, force: bool = False) -> bool:
    if path.exists() and not force:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_default_config(domain=domain, scheme=scheme, port=port, allow_private=allow_private),
                    encoding="utf-8")
    return True


async def _with_context(settings: Settings, action: Callable[[Any], Awaitable[int]], *, migrate: bool = False) -> int:
    from fedserver.context import close_context, open_context
    from fedserver.db import SchemaMismatch

    try:
        ctx = await open_context(settings, migrate=migrate)
    except SchemaMismatch as exc:
        raise CommandError(str(exc)) from None
    try:
        return await action(ctx)
    finally:
        await close_context(ctx)


def _database_name(settings: Settings) -> str:
    """The database as a person reads it: the SQLite file, or the PostgreSQL URL without a password."""
    if not settings.database.url:
        return str(settings.database_path)
    from urllib.parse import urlsplit

    parts = urlsplit(settings.database.url)
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0] + "@" if len(netloc) == 2 else ""
    return parts._replace(netloc=user + netloc[-1]).geturl()


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from fedserver import serving

    host = args.host or settings.server.host
    port = args.port or settings.server.port
    processes = settings.server.processes if args.processes is None else args.processes
    if not 1 <= processes <= MAX_PROCESSES:
        raise CommandError(f"--processes must be 1-{MAX_PROCESSES}, got {processes}")
    several = f", {processes} processes" if processes > 1 else ""
    several += ", no background workers" if args.no_workers else ""
    # One URL to open: the one every link and id on the pages uses (where it is served from is
    # said without a scheme, so that nobody opens the bare socket behind a TLS proxy by mistake).
    where = _database_name(settings)
    banner = (f"fedserver is running: open {settings.base_url}/ in a browser (listening on {host}:{port},"
              f" database {where}{several})")
    try:
        # Called once the socket is bound: announce only what really serves.
        serving.serve(settings, config_path=Path(args.config).resolve(), host=host, port=port, processes=processes,
                      on_listening=lambda: print(banner, flush=True), verbose=args.verbose,
                      run_workers=not args.no_workers)
    except serving.CannotServe as exc:
        raise CommandError(str(exc)) from None
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
            raise CommandError(f"cannot listen on {host}:{port}: {os.strerror(exc.errno)}") from None
        raise
    return 0


def _work(settings: Settings, args: argparse.Namespace) -> int:
    from fedserver import background

    try:
        queues = background.parse_queues(args.queues)
    except background.UnknownQueue as exc:
        raise CommandError(str(exc)) from None
    if not 1 <= args.concurrency <= 64:
        raise CommandError(f"--concurrency must be 1-64, got {args.concurrency}")
    asyncio.run(_with_context(settings, _noop))  # create the database and apply migrations first
    banner = (f"fedserver worker is running: {', '.join(queues)} (x{args.concurrency}),"
              f" database {settings.database_path}")
    background.run_worker_process(settings, queues, concurrency=args.concurrency,
                                  on_started=lambda: print(banner, flush=True))
    return 0


async def _run_command(ctx, args: argparse.Namespace) -> int:
    # Each command imports the services it calls: the federation ones bring aiohttp, whose import is a
    # large share of a command's start-up.
    cmd = args.command
    if cmd in cli_corpus.COMMANDS:
        return await cli_corpus.run(ctx, args)
    if cmd == "migrate":
        print("database is up to date")
    elif cmd == "user" and args.user_command == "create":
        from fedserver.services import accounts

        password = None
        if args.password_file:
            try:
                password = Path(args.password_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise CommandError(f"cannot read password file {args.password_file}: {exc.strerror}") from None
        created = await accounts.create_account(ctx, args.name, password=password, admin=args.admin,
                                                locked=args.locked, allow_reserved=args.allow_reserved)
        print(f"created {created.actor.handle} ({created.actor.uri})")
        if created.password is not None:
            print(f"password: {created.password}")
    elif cmd == "user" and args.user_command == "list":
        from fedserver.services import accounts

        for actor, account in await accounts.list_accounts(ctx):
            flags = [f for f, on in (("admin", account.is_admin), ("locked", actor.manually_approves_followers),
                                     ("suspended", actor.suspended_at), ("deleted", actor.deleted_at)) if on]
            print(f"{actor.handle}\t{actor.uri}\t{','.join(flags)}")
    elif cmd == "user" and args.user_command in ("suspend", "unsuspend"):
        from fedserver.services import auth

        await auth.set_suspended(ctx, args.name, args.user_command == "suspend")
        print(f"{args.user_command}ed {args.name}")
    elif cmd == "user" and args.user_command == "delete":
        from fedserver.services import accounts, auth

        await accounts.require_local_actor(ctx, args.name)  # an unknown name fails before any question
        if not args.yes:
            await _confirm_deletion(args.name)
        await auth.delete_account(ctx, args.name, by_admin=True)
        print(f"deleted {args.name}")
    elif cmd == "user" and args.user_command in ("reset-password", "set-admin", "pending", "approve", "reject"):
        await _run_account_admin(ctx, args)
    elif cmd in ("follow", "unfollow", "requests"):
        await _run_follows(ctx, args)
    elif cmd in ("post", "edit", "delete"):
        await _run_posting(ctx, args)
    elif cmd in ("like", "unlike", "boost", "unboost"):
        from fedserver.services import interactions

        await getattr(interactions, cmd)(ctx, args.local, args.post_url)
        print(f"{cmd}d {args.post_url}" if cmd.endswith("e") else f"{cmd}ed {args.post_url}")
    elif cmd == "account":
        await _run_account(ctx, args)
    elif cmd in ("domain-block", "status"):
        await _run_status(ctx, args)
    elif cmd == "db":
        from fedserver.services import db_copy

        try:
            report = await db_copy.copy_to_postgres(ctx, args.to, progress=lambda table, rows: print(
                f"copied {table}: {rows} rows", flush=True))
        except db_copy.copy_store.CopyError as exc:
            raise CommandError(str(exc)) from None
        print(f"copied {sum(report.rows.values())} rows in {len(report.rows)} tables; counts match;"
              f" consent log verified ({report.consent_events} events, head {report.consent_head[:16]})."
              " Set [database] url to use it.")
    elif cmd == "media":
        from fedserver.services import media_cache

        if args.older_than_days is not None and args.older_than_days < 0:
            raise CommandError("--older-than-days must not be negative")
        pruned = await media_cache.prune(ctx, older_than_days=args.older_than_days)
        print(f"pruned {pruned.pictures} cached pictures ({pruned.files_removed} files removed);"
              " they are fetched again when someone looks")
    elif cmd == "invite":
        from fedserver.services import auth

        code = await auth.create_invite(ctx, max_uses=max(1, args.uses), days=args.days or None, created_by="cli")
        print(f"invite code: {code}")
        print(f"sign-up link: {ctx.urls.base}/auth/sign_up?invite={code}")
    return 0


async def _confirm_deletion(name: str) -> None:
    """Deleting an account cannot be undone: ask to type its name, or require --yes."""
    if not sys.stdin.isatty():
        raise CommandError(f"refusing to delete {name} without confirmation: run this in a terminal and type the "
                           "username when asked, or pass --yes")
    print(f"Deleting {name} cannot be undone: its posts are deleted and every server that knows it is told.")
    try:
        typed = await asyncio.to_thread(input, f"Type the username ({name}) to confirm: ")
    except EOFError:
        typed = ""
    if typed.strip().lstrip("@").lower() != name.strip().lstrip("@").lower():
        raise CommandError(f"the typed name does not match; {name} was not deleted")


async def _run_account_admin(ctx, args: argparse.Namespace) -> None:
    from fedserver.services import account_admin, signups

    sub = args.user_command
    if sub == "reset-password":
        password = await account_admin.reset_password(ctx, args.name)
        print(f"new password for {args.name} (its sessions were ended): {password}")
    elif sub == "set-admin":
        await account_admin.set_admin(ctx, args.name, args.admin)
        print(f"{args.name} is {'an admin now' if args.admin else 'no longer an admin'}")
    elif sub == "pending":
        for signup in await signups.list_pending(ctx):
            reason = " ".join(signup.reason.split())  # one line per sign-up
            print(f"{signup.username}\t{signup.created_at}\t{reason}")
    elif sub == "approve":
        actor = await signups.approve(ctx, args.name)
        print(f"approved {actor.handle} ({actor.uri})")
    else:
        await signups.reject(ctx, args.name)
        print(f"rejected the sign-up of {args.name}")


async def _run_account(ctx, args: argparse.Namespace) -> None:
    from fedserver.services import remote_moderation

    action = args.account_command
    if action == "list":
        for actor in await remote_moderation.list_moderated(ctx):
            flags = [f for f, on in (("suspended", actor.suspended_at), ("silenced", actor.silenced_at)) if on]
            print(f"{actor.handle}\t{actor.uri}\t{','.join(flags)}")
        return
    if action in ("suspend", "unsuspend"):
        actor = await getattr(remote_moderation, action)(ctx, args.handle)
    else:
        actor = await remote_moderation.silence(ctx, args.handle, on=action == "silence")
    print(f"{action.removesuffix('e')}ed {actor.handle}")


async def _run_follows(ctx, args: argparse.Namespace) -> None:
    from fedserver.services import follows

    cmd = args.command
    if cmd == "follow":
        record = await follows.follow(ctx, args.local, args.handle)
        print(f"{args.local} follows {args.handle}: {record.state}")
    elif cmd == "unfollow":
        await follows.unfollow(ctx, args.local, args.handle)
        print(f"{args.local} no longer follows {args.handle}")
    elif cmd == "requests":
        if args.requests_command == "list":
            for actor in await follows.list_requests(ctx, args.local):
                print(f"{actor.handle}\t{actor.uri}")
        else:
            await follows.answer_follow_request(ctx, args.local, args.handle,
                                                accept=args.requests_command == "approve")
            print(f"{'approved' if args.requests_command == 'approve' else 'rejected'} {args.handle}")


async def _run_posting(ctx, args: argparse.Namespace) -> None:
    from fedserver.services import posting

    if args.command == "post":
        post = await posting.create_post(ctx, args.local, posting.Draft(
            text=args.text, visibility=args.visibility, content_warning=args.cw, reply_to=args.reply_to,
            language=args.language))
        print(post.uri)
    elif args.command == "edit":
        post = await posting.edit_post(ctx, args.local, args.post_url, posting.Draft(text=args.text,
                                                                                    content_warning=args.cw))
        print(post.uri)
    else:
        await posting.delete_post(ctx, args.local, args.post_url)
        print(f"deleted {args.post_url}")


async def _run_status(ctx, args: argparse.Namespace) -> None:
    from fedserver.services import status

    if args.command == "domain-block":
        if args.domain_command == "list":
            for block in await status.list_domain_blocks(ctx):
                print(f"{block['domain']}\t{block['reason']}")
        try:
            if args.domain_command == "add":
                block = await status.block_domain(ctx, args.domain, args.reason)
                print(f"blocked {block.domain} and its subdomains: {block.follows_ended} follows ended,"
                      f" {block.deliveries_cancelled} pending deliveries cancelled")
            elif args.domain_command == "remove":
                print(f"unblocked {await status.unblock_domain(ctx, args.domain)}")
        except (status.InvalidDomain, status.DomainNotBlocked) as exc:
            raise CommandError(str(exc)) from None
        return
    report = await status.queue_status(ctx)
    print(f"deliveries: {report['deliveries']['pending']} pending, {report['deliveries']['delivered']} delivered,"
          f" {report['deliveries']['failed']} failed")
    print(f"inbox: {report['inbox_pending']} pending")
    if report["failing_hosts"]:
        print("failing hosts:")
        for host in report["failing_hosts"]:
            state = "unavailable" if host["unavailable_since"] else "failing"
            print(f"  {host['host']}\t{state}\tfailure days: {host['failure_days']}\tlast failure:"
                  f" {host['last_failure_at']}")
    else:
        print("failing hosts: none")
    from fedserver.services import media_cache

    media = await media_cache.usage(ctx)
    print(f"media: {media.local_files} local files, {_megabytes(media.local_bytes)};"
          f" {media.cached_files} cached remote pictures, {_megabytes(media.cached_bytes)}")


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else (logging.INFO if args.command == "serve"
                                                                  else logging.WARNING),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "worker":
        logging.getLogger().setLevel(logging.DEBUG if args.verbose else logging.INFO)
    config_path = Path(args.config)
    try:
        if args.command == "init":
            if not _ensure_config(config_path, domain=args.domain, scheme=args.scheme, port=args.port,
                                  allow_private=args.allow_private_addresses, force=args.force):
                raise CommandError(f"{config_path} exists; use --force to overwrite it")
            settings = load_settings(config_path)
            asyncio.run(_with_context(settings, _noop))
            print(f"wrote {config_path} and created {_database_name(settings)}")
            return 0
        # A first `serve --port N` writes a config whose ids name port N, so that later runs agree.
        first_port = getattr(args, "port", None) or 8080
        if args.command == "serve" and _ensure_config(config_path, domain=f"localhost:{first_port}", port=first_port):
            print(f"created {config_path} with default settings: edit [instance] domain before federating")
        settings = load_settings(config_path)
        from fedserver.services.accounts import configure_password_hashing

        configure_password_hashing(settings.server.password_hash_memory_kib)
        if args.command == "serve" and args.acceptor_parent_fd is not None:
            from fedserver import serving

            serving.run_acceptor(settings, host=args.host or settings.server.host,
                                 port=args.port or settings.server.port, parent_fd=args.acceptor_parent_fd)
            return 0
        if args.command == "serve":
            mismatch = port_mismatch(settings, args.port or settings.server.port)
            if mismatch:
                raise CommandError(mismatch)
            asyncio.run(_with_context(settings, _noop))  # create the database and apply migrations first
            return _serve(settings, args)
        if args.command == "worker":
            return _work(settings, args)
        return asyncio.run(_with_context(settings, lambda ctx: _run_command(ctx, args),
                                         migrate=args.command == "migrate"))
    except (ConfigError, CommandError) as exc:
        message = str(exc)
        if isinstance(exc, ConfigError) and str(config_path) not in message:
            message = f"{config_path}: {message}"  # a bad value: say which file to edit
        print(f"error: {message}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 1
    except Exception as exc:  # noqa: BLE001 - turned into a message; -v shows the traceback
        if _is_user_error(exc):
            print(f"error: {exc}", file=sys.stderr)
            return 1
        raise


async def _noop(ctx) -> int:
    return 0


def _is_user_error(exc: Exception) -> bool:
    from fedserver.services.accounts import AccountError
    from fedserver.services.follows import FollowError
    from fedserver.services.interactions import InteractionError
    from fedserver.services.posting import PostingError
    from fedserver.services.remote_actors import ActorNotFound
    from fedserver.services.remote_moderation import ModerationError

    return isinstance(exc, (AccountError, FollowError, InteractionError, PostingError, ActorNotFound, ModerationError,
                            *cli_corpus.user_errors()))
